/**
 * Runs tiers of the hierarchy in this process: every tier (what `npm start` does) or some of them
 * (to scale a tier out: start more processes with the same tiers; they share its partitions).
 */
import path from "node:path";
import type { Kafka } from "kafkajs";
import { repoRoot } from "../lib/config.js";
import { ensureTopics, registerSchemas } from "../producers/admin.js";
import type { Codec } from "../schemas/codec.js";
import type { Role } from "./domain/directory.js";
import type { TierDecider } from "./domain/decider.js";
import { governor } from "./domain/governor.js";
import { health, healthDecider, type HealthOptions } from "./domain/health.js";
import { mayor } from "./domain/mayor.js";
import { templatePlanner } from "./domain/planner.js";
import { policy } from "./domain/policy.js";
import { president } from "./domain/president.js";
import { worker } from "./domain/worker.js";
import { shellExecutor, simulatedExecutor, type Executor } from "./executors.js";
import { DirectoryFeed } from "./host/directory-feed.js";
import { PolicyFeed } from "./host/policy-feed.js";
import { TierHost, type TierTopics } from "./host/tier-host.js";
import { agentsOf, retryLimitsOf, type TopologyConfig } from "./topology.js";

export const ROLES: readonly Role[] = ["president", "governor", "mayor", "worker", "policy", "health"];

const DECIDERS: Record<Role, TierDecider> = { president, governor, mayor, worker, policy, health };

/** Topics per tier: the top reads commands and both event topics; the others only need tasks. */
export const TIER_TOPICS: Record<Role, TierTopics> = {
  president: {
    inputs: ["polity.goals.commands", "polity.goals.events", "polity.tasks.events"],
    state: ["polity.goals.events", "polity.tasks.events"],
  },
  governor: { inputs: ["polity.tasks.events"], state: ["polity.tasks.events"] },
  mayor: { inputs: ["polity.tasks.events"], state: ["polity.tasks.events"] },
  worker: { inputs: ["polity.tasks.events"], state: ["polity.tasks.events"] },
  // The policy engine answers policy commands from the versions it wrote (its refusals go to
  // polity.governance.events); every host reads all versions through its process's PolicyFeed.
  policy: { inputs: ["polity.policies.commands", "polity.policies.events"], state: ["polity.policies.events"] },
  // The health monitor folds agent heartbeats and failures, partition by partition (keyed by agent).
  health: { inputs: ["polity.agents.events"], state: ["polity.agents.events"] },
};

const ROLE_TIERS: Record<Role, string[]> = {
  president: ["PRESIDENT", "MASTER"],
  governor: ["GOVERNOR", "SUB_MASTER"],
  mayor: ["MAYOR"],
  worker: ["WORKER"],
  policy: ["SYSTEM"],
  health: ["SYSTEM"],
};

/**
 * How often the health monitor ticks: as often as agents heartbeat (5 s unless the topology says
 * otherwise). Every tick is an event on each agents partition the monitor owns, kept for ever and
 * projected, so it is not ticked more often than that.
 */
const TICK_MS = 5_000;

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

  const simulated = simulatedExecutor(topology.simulated);
  const workRoot = options.workRoot ?? path.join(repoRoot, ".polity", "work");
  const executors = new Map<string, Executor>();
  for (const a of agents) {
    if (a.tier !== "WORKER") continue;
    if (a.executor === "shell" && a.shell) executors.set(a.agentId, shellExecutor(a.shell, workRoot));
    else if (a.executor !== "external") executors.set(a.agentId, simulated);
  }

  const hosts: TierHost[] = [];
  try {
    for (const role of roles) {
      const host = new TierHost({
        kafka,
        codec,
        decider: role === "health" && options.health ? healthDecider(options.health) : DECIDERS[role],
        topics: TIER_TOPICS[role],
        directory: feed.directory,
        policies: policies.book,
        planner: templatePlanner,
        // A host acts for every agent of its tiers, except external workers, which act for themselves.
        hosts: (agentId) => {
          const a = feed.directory.get(agentId);
          if (!a || !ROLE_TIERS[role].includes(a.tier)) return false;
          return role !== "worker" || executors.has(agentId);
        },
        ...(role === "worker" ? { executorFor: (id: string) => executors.get(id) ?? null, heartbeats } : {}),
        ...(role === "health"
          ? { ticks: { intervalMs: Math.min(TICK_MS, topology.heartbeatIntervalMs ?? TICK_MS) } }
          : { agentEvents: feed }),
        retryLimits: (t) => retryLimitsOf(topology, t),
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
    throw e;
  }
  log(`hierarchy running: ${roles.join(", ")} (${agents.length} agents configured)`);
  return {
    hosts,
    feed,
    policies,
    async stop() {
      await Promise.all(hosts.map((h) => h.stop()));
      await feed.stop();
      await policies.stop();
    },
  };
}
