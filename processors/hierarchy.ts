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
import type { HealthOptions } from "./domain/health.js";
import { templatePlanner } from "./domain/planner.js";
import type { ExactlyOnceHost } from "./engine/host.js";
import { DirectoryFeed } from "./host/directory-feed.js";
import { watchHierarchy } from "./host/metrics.js";
import { PolicyFeed } from "./host/policy-feed.js";
import { ROLE_DEFINITIONS, ROLES } from "./roles/index.js";
import type { RoleEnv } from "./roles/role.js";
import { SilencedAgents } from "./roles/silenced.js";
import { roleHost } from "./roles/start.js";
import { agentsOf, planningConfigOf, retryLimitsOf, timeLimitsOf, type TopologyConfig } from "./topology.js";
import { ModelRegistry } from "./ai/models.js";

export { ROLES, TIER_TOPICS } from "./roles/index.js";

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
  hosts: ExactlyOnceHost[];
  feed: DirectoryFeed;
  /** Every policy version, as the hosts of this process consult it. */
  policies: PolicyFeed;
  /**
   * Makes a hosted agent hang, as a test's stand-in for a stuck process: it stops heartbeating, and
   * its attempts are neither started nor reported until `unsilence`.
   */
  silence(agentId: string): void;
  unsilence(agentId: string): void;
  stop(): Promise<void>;
}

export async function startHierarchy(options: HierarchyOptions): Promise<RunningHierarchy> {
  const { kafka, codec, topology } = options;
  const prefix = options.topicPrefix ?? "";
  const log = options.log ?? (() => undefined);
  const heartbeats = options.heartbeats ?? true;
  const roles = (options.roles ?? ROLES).filter((r) => ROLE_DEFINITIONS[r].runs?.({ heartbeats }) ?? true);
  await ensureTopics(kafka, prefix);
  await registerSchemas(codec);

  const feed = new DirectoryFeed(kafka, codec, prefix, log);
  await feed.start();
  const agents = agentsOf(topology);
  await feed.register(agents, log);
  const policies = new PolicyFeed(kafka, codec, prefix, log);
  await policies.start();
  const models = new ModelRegistry(topology.models ?? {}, repoRoot);
  const silenced = new SilencedAgents();
  const env: RoleEnv = {
    topology,
    feed,
    policies: policies.book,
    model: (name) => models.get(name),
    workRoot: options.workRoot ?? path.join(repoRoot, ".polity", "work"),
    silenced,
    heartbeats,
    ...(options.health ? { health: options.health } : {}),
  };
  const settings = {
    kafka,
    codec,
    context: {
      planner: templatePlanner,
      planning: (t: Parameters<typeof planningConfigOf>[1]) => planningConfigOf(topology, t),
      retryLimits: (t: Parameters<typeof retryLimitsOf>[1]) => retryLimitsOf(topology, t),
      timeLimits: (t: Parameters<typeof timeLimitsOf>[1]) => timeLimitsOf(topology, t),
    },
    topicPrefix: prefix,
    log,
  };

  const hosts: ExactlyOnceHost[] = [];
  try {
    for (const role of roles) {
      const host = roleHost(ROLE_DEFINITIONS[role], env, settings);
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
    silence: (agentId) => silenced.silence(agentId),
    unsilence: (agentId) => silenced.unsilence(agentId),
    async stop() {
      unwatch();
      await Promise.all(hosts.map((h) => h.stop()));
      await feed.stop();
      await policies.stop();
      await models.close();
    },
  };
}
