/**
 * Runs tiers of the hierarchy in this process: every tier (what `npm start` does) or some of them
 * (to scale a tier out: start more processes with the same tiers; they share its partitions).
 */
import path from "node:path";
import type { Kafka } from "kafkajs";
import { repoRoot } from "../lib/config.js";
import { ensureTopics, registerSchemas } from "../producers/admin.js";
import type { Codec } from "../schemas/codec.js";
import { groupKey, type AgentInfo, type Role } from "./domain/directory.js";
import type { TierDecider } from "./domain/decider.js";
import { governor } from "./domain/governor.js";
import { health, healthDecider, type HealthOptions } from "./domain/health.js";
import { mayor } from "./domain/mayor.js";
import { templatePlanner } from "./domain/planner.js";
import { watchesTime } from "./domain/time-limits.js";
import { policy } from "./domain/policy.js";
import { president } from "./domain/president.js";
import { resources } from "./domain/resources.js";
import { autoscaleCommands, scaler, scalerDecider } from "./domain/scaler.js";
import { worker } from "./domain/worker.js";
import { shellExecutor, simulatedExecutor, type Executor } from "./executors.js";
import { DirectoryFeed } from "./host/directory-feed.js";
import { watchHierarchy } from "./host/metrics.js";
import { PolicyFeed } from "./host/policy-feed.js";
import { TierHost, type TierTopics } from "./host/tier-host.js";
import {
  agentsOf,
  autoscaleOf,
  autoscales,
  planningConfigOf,
  retryLimitsOf,
  timeLimitsOf,
  type AgentSpec,
  type TopologyConfig,
} from "./topology.js";
import { modelExecutor, type ModelWorkerConfig } from "./ai/model-executor.js";
import { planningEffects } from "./ai/model-planner.js";
import { ModelRegistry } from "./ai/models.js";

export const ROLES: readonly Role[] = [
  "president",
  "governor",
  "mayor",
  "worker",
  "policy",
  "health",
  "resources",
  "scaler",
];

const DECIDERS: Record<Role, TierDecider> = { president, governor, mayor, worker, policy, health, resources, scaler };

/**
 * Topics per tier: the top reads commands and the event topics; the others the tasks topic. Every
 * tier that answers something a policy may refuse (a command, a context request, a query) also
 * folds polity.governance.events, for its own refusals (PolicyEvaluated DENY, state.ts `refused`),
 * so a refused input decided again after a restart is refused no second time. Every one of these
 * topics is keyed by goalId with 6 partitions: co-partitioned, one goal's events in one slot.
 */
export const TIER_TOPICS: Record<Role, TierTopics> = {
  president: {
    inputs: ["polity.goals.commands", "polity.goals.events", "polity.tasks.events", "polity.governance.events"],
    state: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  },
  // A governor also reads the answers to its budget requests (domain/resources.ts), co-partitioned by goal.
  governor: {
    inputs: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
    state: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  },
  mayor: {
    inputs: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
    state: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  },
  worker: {
    inputs: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
    state: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  },
  // The policy engine answers policy commands from the versions it wrote (its refusals go to
  // polity.governance.events); every host reads all versions through its process's PolicyFeed.
  policy: { inputs: ["polity.policies.commands", "polity.policies.events"], state: ["polity.policies.events"] },
  // The health monitor folds agent heartbeats and failures, partition by partition (keyed by agent).
  health: { inputs: ["polity.agents.events"], state: ["polity.agents.events"] },
  // The resource manager answers budget requests and checks performance SLAs, per goal: the goal
  // (its budget), its tasks (their costs, durations) and the requests, all keyed by goal.
  resources: {
    inputs: ["polity.governance.events", "polity.tasks.events", "polity.goals.events"],
    state: ["polity.governance.events", "polity.tasks.events", "polity.goals.events"],
  },
  // The scaler answers agent commands (3 partitions, keyed by agent or worker group). Its state is
  // the process's directory (a global view of polity.agents.events, which has 6 partitions keyed
  // by agent and so cannot be co-partitioned with the commands), so it has no state topic.
  scaler: { inputs: ["polity.agents.commands"], state: [] },
};

const ROLE_TIERS: Record<Role, string[]> = {
  president: ["PRESIDENT", "MASTER"],
  governor: ["GOVERNOR", "SUB_MASTER"],
  mayor: ["MAYOR"],
  worker: ["WORKER"],
  policy: ["SYSTEM"],
  health: ["SYSTEM"],
  resources: ["SYSTEM"],
  scaler: ["SYSTEM"],
};

/**
 * How often the health monitor ticks: as often as agents heartbeat (5 s unless the topology says
 * otherwise). Every tick is an event on each agents partition the monitor owns, kept for ever and
 * projected, so it is not ticked more often than that.
 */
const TICK_MS = 5_000;

/**
 * How often the tiers that watch time (domain/time-limits.ts) are handed the time: the dispatchers
 * (mayor, sub-master) for attempts under a limit, the top for goal deadlines. A limit is enforced
 * within this much of passing; a tick of a partition with nothing to watch costs no work.
 */
const CLOCK_MS = 500;
const CLOCKED: ReadonlySet<Role> = new Set(["president", "governor", "mayor"]);

export interface HierarchyOptions {
  kafka: Kafka;
  codec: Codec;
  topology: TopologyConfig;
  roles?: readonly Role[];
  topicPrefix?: string;
  log?: (line: string) => void;
  /** Where shell tasks get their work dirs. */
  workRoot?: string;
  /** Health monitor settings (timeout factor); the defaults of domain/health.ts when absent. */
  health?: HealthOptions;
  /**
   * Workers' heartbeats (true by default). Without them no agent can be declared failed, so the
   * health monitor is not started either; tests that compare a read model with the log turn them
   * off, since heartbeats never let the log go quiet.
   */
  heartbeats?: boolean;
}

export interface RunningHierarchy {
  hosts: TierHost[];
  feed: DirectoryFeed;
  /** Every policy version, as the hosts of this process consult it. */
  policies: PolicyFeed;
  stop(): Promise<void>;
}

export async function startHierarchy(options: HierarchyOptions): Promise<RunningHierarchy> {
  const { kafka, codec, topology } = options;
  const prefix = options.topicPrefix ?? "";
  const log = options.log ?? (() => undefined);
  const heartbeats = options.heartbeats ?? true;
  const roles = (options.roles ?? ROLES).filter((r) => heartbeats || r !== "health");
  await ensureTopics(kafka, prefix);
  await registerSchemas(codec);

  const feed = new DirectoryFeed(kafka, codec, prefix);
  await feed.start();
  const agents = agentsOf(topology);
  await feed.register(agents, log);
  const policies = new PolicyFeed(kafka, codec, prefix);
  await policies.start();

  const models = new ModelRegistry(topology.models ?? {}, repoRoot);
  const simulated = simulatedExecutor(topology.simulated);
  /** One model executor per configured model worker group, shared by its workers (also those added at run time). */
  const modelOfGroup = new Map<string, Executor>();
  const modelExecutorOf = (a: AgentSpec | AgentInfo, config: ModelWorkerConfig | undefined): Executor | null => {
    const group = groupKey(a.topology, a.domain, a.specialization);
    const known = modelOfGroup.get(group);
    if (known || !config) return known ?? null;
    const model = models.get(config.model);
    if (!model) return null;
    const pricing = topology.models?.[config.model]?.pricing;
    const executor = modelExecutor(model, config, { domain: a.domain, specialization: a.specialization }, pricing);
    modelOfGroup.set(group, executor);
    return executor;
  };
  const workRoot = options.workRoot ?? path.join(repoRoot, ".polity", "work");
  const executors = new Map<string, Executor>();
  /** The shell executor of each configured worker group that has one, for its workers added at run time. */
  const shellOfGroup = new Map<string, Executor>();
  for (const a of agents) {
    if (a.tier !== "WORKER") continue;
    if (a.executor === "model") {
      const executor = modelExecutorOf(a, a.model);
      if (executor) executors.set(a.agentId, executor);
    } else if (a.executor === "shell" && a.shell) {
      const shell = shellExecutor(a.shell, workRoot);
      executors.set(a.agentId, shell);
      const group = groupKey(a.topology, a.domain, a.specialization);
      if (!shellOfGroup.has(group)) shellOfGroup.set(group, shell);
    } else if (a.executor !== "external") executors.set(a.agentId, simulated);
  }
  /**
   * The executor of a worker this process hosts: a configured one's, or for a worker registered at
   * run time (the scaler's), by its executor kind: simulated, or its group's configured shell
   * command; external workers act for themselves. A terminated worker is hosted no more.
   */
  const executorFor = (agentId: string): Executor | null => {
    const a: AgentInfo | undefined = feed.directory.get(agentId);
    if (!a || a.tier !== "WORKER" || a.status === "TERMINATED") return null;
    const configured = executors.get(agentId);
    if (configured) return configured;
    if (a.executor === "shell") return shellOfGroup.get(groupKey(a.topology, a.domain, a.specialization)) ?? null;
    if (a.executor === "model") return modelExecutorOf(a, undefined);
    return a.executor === "external" ? null : simulated;
  };
  const autoscaleConfig = (t: Parameters<typeof autoscaleOf>[1], d: string | null, s: string | null) =>
    autoscaleOf(topology, t, d, s);
  const sampleMs = topology.autoscaleIntervalMs ?? 1_000;
  /** Groups the autoscaler asked to resize, and when: one sample is not repeated while it is decided. */
  const asked = new Map<string, number>();
  const sample = (now: Date) =>
    autoscaleCommands(feed.directory, autoscaleConfig, now).filter((d) => {
      const group = d.aggregate.id;
      if (now.getTime() - (asked.get(group) ?? 0) < 3 * sampleMs) return false;
      asked.set(group, now.getTime());
      return true;
    });

  const hosts: TierHost[] = [];
  try {
    for (const role of roles) {
      const host = new TierHost({
        kafka,
        codec,
        decider:
          role === "health" && options.health
            ? healthDecider(options.health)
            : role === "scaler"
              ? scalerDecider({ autoscale: autoscaleConfig, heartbeatIntervalMs: topology.heartbeatIntervalMs })
              : DECIDERS[role],
        topics: TIER_TOPICS[role],
        directory: feed.directory,
        policies: policies.book,
        planner: templatePlanner,
        planning: (t) => planningConfigOf(topology, t),
        // A host acts for every agent of its tiers, except external workers, which act for themselves.
        hosts: (agentId) => {
          const a = feed.directory.get(agentId);
          if (!a || !ROLE_TIERS[role].includes(a.tier)) return false;
          return role !== "worker" || executorFor(agentId) !== null;
        },
        ...(role === "worker" ? { executorFor, heartbeats } : {}),
        ...(role === "president"
          ? {
              sideEffects: planningEffects(
                (name) => models.get(name),
                (t) => topology.topologies[t]?.planner ?? {},
              ),
            }
          : {}),
        ...(role === "scaler"
          ? {
              beforeLive: () => feed.caughtUp(),
              ...(autoscales(topology) ? { sample: { intervalMs: sampleMs, decide: sample } } : {}),
            }
          : {}),
        ...(role === "health"
          ? { ticks: { intervalMs: Math.min(TICK_MS, topology.heartbeatIntervalMs ?? TICK_MS) } }
          : { agentEvents: feed }),
        ...(CLOCKED.has(role) ? { clock: { intervalMs: CLOCK_MS, due: watchesTime } } : {}),
        retryLimits: (t) => retryLimitsOf(topology, t),
        timeLimits: (t) => timeLimitsOf(topology, t),
        topicPrefix: prefix,
        log,
      });
      await host.start();
      hosts.push(host);
    }
  } catch (e) {
    await Promise.all(hosts.map((h) => h.stop()));
    await feed.stop();
    await policies.stop();
    await models.close();
    throw e;
  }
  log(`hierarchy running: ${roles.join(", ")} (${agents.length} agents configured)`);
  // Metrics: the hosts' liveness, lag and agents are reported at scrape time until stop.
  const unwatch = watchHierarchy({ hosts, directory: feed.directory });
  return {
    hosts,
    feed,
    policies,
    async stop() {
      unwatch();
      await Promise.all(hosts.map((h) => h.stop()));
      await feed.stop();
      await policies.stop();
      await models.close();
    },
  };
}
