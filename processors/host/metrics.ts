/**
 * The processors' Prometheus metrics, computed at scrape time from the hierarchies running in this
 * process (infra/prometheus/alerts.yml and infra/grafana/polity-overview.json use them):
 *
 * - liveness: `polity_processor_up` and `polity_processor_live_partitions` per processor (tier
 *   host), and `polity_agent_up` per agent a host of this process acts for;
 * - `polity_processor_consumer_lag_events` per processor, input topic and partition;
 * - `polity_agent_heartbeat_age_seconds` and `polity_agent_load` per agent, from the heartbeats the
 *   process's agent directory has read (every agent that heartbeats, wherever it runs);
 * - counters of what each processor did since this process started (inputs, decisions, messages
 *   written by type, transactions, restores, dead letters);
 * - the DGM seed metrics `agent_cpu_usage_percent` and `agent_memory_usage_percent`, per hosted
 *   agent: in-process agents share this process, so each reports the process's figures.
 *
 * Several processes may run the same tier (scaling out): group-wide figures (consumer lag, heartbeat
 * age) are then reported by each, so the rules take the max over instances.
 */
import { Counter, Gauge } from "prom-client";
import { guarded, processUsage, registry } from "../../lib/metrics.js";
import type { AgentDirectory } from "../domain/directory.js";
import type { ExactlyOnceHost as TierHost } from "../engine/host.js";

interface Watched {
  hosts: readonly TierHost[];
  directory: AgentDirectory;
}

const watched = new Set<Watched>();

/** Reports a running hierarchy's hosts until the returned function is called (when it stops). */
export function watchHierarchy(hierarchy: Watched): () => void {
  const entry = { hosts: hierarchy.hosts, directory: hierarchy.directory };
  watched.add(entry);
  return () => watched.delete(entry);
}

/** One scrape's view of the agents the hosts of this process act for, shared by the gauges below. */
interface HostedAgent {
  agentId: string;
  tier: string;
  topology: string;
  up: boolean;
}

function hostedAgents(): HostedAgent[] {
  const out = new Map<string, HostedAgent>();
  for (const { hosts, directory } of watched) {
    for (const agent of directory.all()) {
      if (agent.status === "TERMINATED") continue;
      const actors = hosts.filter((h) => h.actsFor(agent.agentId));
      if (actors.length === 0) continue;
      const up = agent.status !== "FAILED" && actors.some((h) => h.up && h.livePartitions > 0);
      const known = out.get(agent.agentId);
      out.set(agent.agentId, {
        agentId: agent.agentId,
        tier: agent.tier,
        topology: agent.topology,
        up: up || (known?.up ?? false),
      });
    }
  }
  return [...out.values()];
}

function eachHost(visit: (host: TierHost) => void): void {
  for (const { hosts } of watched) for (const host of hosts) visit(host);
}

new Gauge({
  name: "polity_processor_up",
  help: "1 while a processor (tier host: president, governor, mayor, worker, policy, health, resources, scaler) runs in this process, 0 once its consumer crashed or it stopped",
  labelNames: ["processor"],
  registers: [registry],
  collect() {
    this.reset();
    const up = new Map<string, number>();
    eachHost((h) => up.set(h.role, Math.max(up.get(h.role) ?? 0, h.up ? 1 : 0)));
    for (const [processor, value] of up) this.set({ processor }, value);
  },
});

new Gauge({
  name: "polity_processor_live_partitions",
  help: "Partitions a processor of this process has restored from the log and decides on live",
  labelNames: ["processor"],
  registers: [registry],
  collect() {
    this.reset();
    const live = new Map<string, number>();
    eachHost((h) => live.set(h.role, (live.get(h.role) ?? 0) + h.livePartitions));
    for (const [processor, value] of live) this.set({ processor }, value);
  },
});

new Gauge({
  name: "polity_processor_consumer_lag_events",
  help: "Records in a processor's input partition after its consumer group's committed offset (the whole group's lag in offsets, transaction markers included, asked of the broker at scrape time)",
  labelNames: ["processor", "group", "topic", "partition"],
  registers: [registry],
  async collect() {
    this.reset();
    const hosts: TierHost[] = [];
    eachHost((h) => hosts.push(h));
    await Promise.all(
      hosts.map((h) =>
        guarded("polity_processor_consumer_lag_events", async () => {
          for (const r of await h.lag())
            this.set({ processor: h.role, group: r.group, topic: r.topic, partition: String(r.partition) }, r.lag);
        }),
      ),
    );
  },
});

/** Counters read from each host's own tallies (since this process started; a restart resets them). */
function hostCounter(name: string, help: string, read: (h: TierHost) => number): void {
  new Counter({
    name,
    help,
    labelNames: ["processor"],
    registers: [registry],
    collect() {
      this.reset();
      const sums = new Map<string, number>();
      eachHost((h) => sums.set(h.role, (sums.get(h.role) ?? 0) + read(h)));
      for (const [processor, n] of sums) this.inc({ processor }, n);
    },
  });
}

hostCounter("polity_processor_inputs_total", "Inputs a processor decided on in this process", (h) => h.stats.inputs);
hostCounter(
  "polity_processor_decisions_total",
  "Messages a processor of this process decided and wrote (committed transactions only)",
  (h) => h.stats.decisions,
);
hostCounter(
  "polity_processor_transactions_total",
  "Kafka transactions a processor of this process committed",
  (h) => h.stats.transactions,
);
hostCounter(
  "polity_processor_restores_total",
  "Partitions a processor of this process restored from the log (at assignment, or after a failed transaction)",
  (h) => h.stats.restores,
);
hostCounter(
  "polity_processor_dead_letters_total",
  "Messages a processor of this process could not read and wrote to polity.deadletters",
  (h) => h.stats.deadLetters,
);

new Counter({
  name: "polity_processor_messages_written_total",
  help: "Messages a processor of this process wrote, by message type (TaskCompleted, GoalCompleted, ...)",
  labelNames: ["processor", "type"],
  registers: [registry],
  collect() {
    this.reset();
    eachHost((h) => {
      for (const [type, n] of h.written) this.inc({ processor: h.role, type }, n);
    });
  },
});

new Gauge({
  name: "polity_agent_up",
  help: "1 while an agent is hosted by a running processor of this process with live partitions and is not declared failed, else 0; agents hosted elsewhere are reported by their own process",
  labelNames: ["agent_id", "tier", "topology"],
  registers: [registry],
  collect() {
    this.reset();
    for (const a of hostedAgents()) this.set({ agent_id: a.agentId, tier: a.tier, topology: a.topology }, a.up ? 1 : 0);
  },
});

new Gauge({
  name: "polity_agent_heartbeat_age_seconds",
  help: "Seconds since an agent's latest AgentHeartbeat (its occurredAt) as this process's agent directory read it; every heartbeating agent that is not terminated, wherever it runs",
  labelNames: ["agent_id", "tier", "topology"],
  registers: [registry],
  collect() {
    this.reset();
    const now = Date.now();
    for (const { directory } of watched)
      for (const agent of directory.all()) {
        const beat = directory.reportedLoad(agent.agentId);
        if (!beat || agent.status === "TERMINATED") continue;
        this.set(
          { agent_id: agent.agentId, tier: agent.tier, topology: agent.topology },
          Math.max(0, (now - beat.at.getTime()) / 1000),
        );
      }
  },
});

new Gauge({
  name: "polity_agent_load",
  help: "Tasks an agent held at its latest heartbeat divided by its capacity (1 = full)",
  labelNames: ["agent_id", "tier", "topology"],
  registers: [registry],
  collect() {
    this.reset();
    for (const { directory } of watched)
      for (const agent of directory.all()) {
        const beat = directory.reportedLoad(agent.agentId);
        if (!beat || agent.status === "TERMINATED" || agent.capacity <= 0) continue;
        this.set({ agent_id: agent.agentId, tier: agent.tier, topology: agent.topology }, beat.held / agent.capacity);
      }
  },
});

/** A figure of the hosting process, reported for each agent it hosts (they share the process). */
function processGauge(name: string, help: string, pick: (u: ReturnType<typeof processUsage>) => number): void {
  new Gauge({
    name,
    help,
    labelNames: ["agent_id", "tier"],
    registers: [registry],
    collect() {
      this.reset();
      const agents = hostedAgents();
      if (agents.length === 0) return;
      const value = pick(processUsage());
      for (const a of agents) this.set({ agent_id: a.agentId, tier: a.tier }, value);
    },
  });
}

processGauge(
  "agent_cpu_usage_percent",
  "CPU of the process hosting the agent, in percent of one core (as top shows it); agents hosted in one process share it, so each reports the process's figure",
  (u) => u.cpuPercent,
);
processGauge(
  "agent_memory_usage_percent",
  "Resident memory of the process hosting the agent, in percent of its cgroup limit or else the machine's memory; agents hosted in one process share it, so each reports the process's figure",
  (u) => u.memoryPercent,
);
