/**
 * What the hierarchy's processors read, restore, write and run, from the roles' declarations alone
 * (nothing is started), as Kafka Streams' Topology.describe() prints a topology: per role its source
 * topics, state topics, sinks with the message types written to each, consumer group, transactional
 * ids and extensions. `polity topology describe` prints it as text or JSON.
 */
import { DEAD_LETTER_TOPIC, physicalTopic, TOPICS } from "../../schemas/catalog.js";
import type { Role } from "../domain/directory.js";
import { AgentDirectory } from "../domain/directory.js";
import { NO_POLICIES } from "../domain/policies/book.js";
import { transactionalIdFor } from "../engine/host.js";
import type { TopologyConfig } from "../topology.js";
import { ROLE_DEFINITIONS, ROLES } from "./index.js";
import type { RoleDefinition, RoleEnv } from "./role.js";
import { SilencedAgents } from "./silenced.js";

export interface DescribeOptions {
  /** The deployment's topic prefix (POLITY_TOPIC_PREFIX); none when absent. */
  topicPrefix?: string;
  /** Whether workers heartbeat (the health monitor runs only then); true, as `npm start` runs, when absent. */
  heartbeats?: boolean;
}

export interface TopologyDescription {
  topicPrefix: string;
  roles: RoleDescription[];
}

export interface RoleDescription {
  role: Role;
  summary: string;
  /** Whether it runs under the options given (the health monitor needs heartbeats). */
  runs: boolean;
  tiers: string[];
  consumerGroup: string;
  /** The pattern of its transactional ids, one per partition: `<group>-p<partition>`. */
  transactionalIds: string;
  /** Partitions of its inputs (co-partitioned): one slot and one transactional producer each. */
  partitions: number;
  /** Topics it consumes, as named on the broker. */
  inputs: string[];
  /** Those of its inputs folded from offset 0 into its state at every restore. */
  state: string[];
  /** What it writes, by topic: its decider's decisions and its extensions' messages; dead letters last. */
  outputs: { topic: string; types: string[] }[];
  /** Message types its decider reads (the rest of its inputs are skipped unread). */
  reads: string[];
  extensions: { name: string; summary: string; writes: string[] }[];
}

export function describeTopology(topology: TopologyConfig, options: DescribeOptions = {}): TopologyDescription {
  const prefix = options.topicPrefix ?? "";
  const heartbeats = options.heartbeats ?? true;
  const env = inertEnv(topology, heartbeats);
  return { topicPrefix: prefix, roles: ROLES.map((r) => describeRole(ROLE_DEFINITIONS[r], env, prefix)) };
}

function describeRole(definition: RoleDefinition, env: RoleEnv, prefix: string): RoleDescription {
  const runtime = definition.build(env, () => false);
  const group = physicalTopic(definition.group, prefix);
  const partitions = Math.max(...definition.inputs.map((t) => TOPICS.find((s) => s.name === t)!.partitions));
  const outputs = Object.entries(definition.writes).map(([topic, types]) => ({
    topic: physicalTopic(topic, prefix),
    types: [...(types ?? [])],
  }));
  outputs.push({ topic: physicalTopic(DEAD_LETTER_TOPIC, prefix), types: ["DeadLetter"] });
  return {
    role: definition.role,
    summary: definition.summary,
    runs: definition.runs?.({ heartbeats: env.heartbeats }) ?? true,
    tiers: [...definition.tiers],
    consumerGroup: group,
    transactionalIds: transactionalIdFor(group, "<partition>"),
    partitions,
    inputs: definition.inputs.map((t) => physicalTopic(t, prefix)),
    state: definition.state.map((t) => physicalTopic(t, prefix)),
    outputs,
    reads: [...runtime.decider.reads].sort(),
    extensions: runtime.extensions.map((e) => ({ name: e.name, summary: e.summary, writes: [...(e.writes ?? [])] })),
  };
}

/** The description as text, one block per role. */
export function formatTopology(d: TopologyDescription): string {
  const lines = [`Topology (topic prefix: ${d.topicPrefix === "" ? "none" : d.topicPrefix}, ${d.roles.length} roles)`];
  for (const r of d.roles) {
    lines.push("");
    lines.push(`  Role: ${r.role} (tiers ${r.tiers.join(", ")})${r.runs ? "" : " -- not run with these settings"}`);
    lines.push(`    ${r.summary}`);
    lines.push(`    Consumer group: ${r.consumerGroup}`);
    lines.push(`    Transactional ids: ${r.transactionalIds} (partitions 0-${r.partitions - 1})`);
    lines.push(`    Sources: ${r.inputs.join(", ")}`);
    lines.push(`    State (restored from offset 0): ${r.state.length > 0 ? r.state.join(", ") : "none"}`);
    lines.push(`    Decider: reads ${r.reads.length} message types`);
    lines.push(`    Extensions:${r.extensions.length > 0 ? "" : " none"}`);
    for (const e of r.extensions)
      lines.push(`      ${e.name}: ${e.summary}${e.writes.length > 0 ? ` (writes ${e.writes.join(", ")})` : ""}`);
    lines.push("    Sinks:");
    for (const o of r.outputs) lines.push(`      ${o.topic} <- ${o.types.join(", ")}`);
  }
  return lines.join("\n") + "\n";
}

/** Services that answer nothing: building a role to describe it must not start or ask anything. */
function inertEnv(topology: TopologyConfig, heartbeats: boolean): RoleEnv {
  return {
    topology,
    feed: {
      directory: new AgentDirectory(),
      statusFacts: () => [],
      onStatusChange: () => () => undefined,
      caughtUp: () => Promise.resolve(),
    },
    policies: NO_POLICIES,
    model: () => null,
    workRoot: "",
    silenced: new SilencedAgents(),
    heartbeats,
  };
}
