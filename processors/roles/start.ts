/** A role made an exactly-once host: its declaration (role.ts) and the process's shared services (RoleEnv). */
import type { Codec } from "../../schemas/codec.js";
import type { Kafka } from "kafkajs";
import type { DecisionContext } from "../domain/decider.js";
import { ExactlyOnceHost } from "../engine/host.js";
import type { RoleDefinition, RoleEnv } from "./role.js";

export interface HostSettings {
  kafka: Kafka;
  codec: Codec;
  /** What every role's decisions are given beside the directory, the policies and the agents acted for. */
  context: Pick<DecisionContext, "planner" | "planning" | "retryLimits" | "timeLimits">;
  topicPrefix: string;
  log: (line: string) => void;
}

export function roleHost(definition: RoleDefinition, env: RoleEnv, settings: HostSettings): ExactlyOnceHost {
  const ofTiers = (agentId: string) => {
    const a = env.feed.directory.get(agentId);
    return a !== undefined && definition.tiers.includes(a.tier);
  };
  const runtime = definition.build(env, ofTiers);
  const hosts = runtime.hosts ?? ofTiers;
  return new ExactlyOnceHost({
    kafka: settings.kafka,
    codec: settings.codec,
    decider: runtime.decider,
    topics: { inputs: definition.inputs, state: definition.state },
    group: definition.group,
    context: { ...settings.context, directory: env.feed.directory, policies: env.policies, hosts },
    // A silenced agent (a test's hung process) is reported down.
    actsFor: (agentId) => !env.silenced.has(agentId) && hosts(agentId),
    extensions: runtime.extensions,
    topicPrefix: settings.topicPrefix,
    log: settings.log,
  });
}
