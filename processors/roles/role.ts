/**
 * What a role is, declared in one place per role (roles/<role>/role.ts), after Kafka Streams'
 * topologies: the topics it reads (its sources), the ones it restores its state from, what it
 * writes and where (its sinks), its consumer group and transactional ids, its decider, and the
 * extensions the exactly-once engine runs for it. The hierarchy starts every role the same way
 * (hierarchy.ts), and `polity topology describe` prints these declarations (describe.ts).
 */
import type { TopicName } from "../../schemas/catalog.js";
import type { MessageTypeName, Tier } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { TierDecider } from "../domain/decider.js";
import type { AgentDirectory, Role } from "../domain/directory.js";
import type { HealthOptions } from "../domain/health.js";
import type { PolicyBook } from "../domain/policies/book.js";
import type { Extension } from "../engine/extension.js";
import type { ChatModel } from "../ai/model.js";
import type { TopologyConfig } from "../topology.js";
import type { SilencedAgents } from "./silenced.js";

/** Message types by the topic they go to (the catalog's topic of each; roles.test.ts checks it). */
export type RoleWrites = Partial<Record<TopicName, readonly MessageTypeName[]>>;

export interface RoleDefinition {
  role: Role;
  /** The directory tiers whose agents its host acts for (SYSTEM: none but itself). */
  tiers: readonly Tier[];
  /** Its consumer group before the topic prefix; each partition p writes with transactional id `<group>-p<p>`. */
  group: string;
  /** Catalog names of the topics it consumes. */
  inputs: readonly TopicName[];
  /** Those of the inputs whose events are its state, folded from offset 0 at every restore (commands are not). */
  state: readonly TopicName[];
  /** Everything it writes, decider and extensions together, by topic (dead letters aside: every role may write them). */
  writes: RoleWrites;
  /** Why it reads and writes what it does, in a line (`polity topology describe`). */
  summary: string;
  /** Whether it runs under these settings; always when absent. */
  runs?(settings: { heartbeats: boolean }): boolean;
  /**
   * Its decider and extensions in a process (RoleEnv); building starts nothing. `ofTiers` says
   * whether an agent is of its tiers (as the process's directory knows it).
   */
  build(env: RoleEnv, ofTiers: (agentId: string) => boolean): RoleRuntime;
}

export interface RoleRuntime {
  decider: TierDecider;
  /** The agents it acts for (given to its decider as `hosts`); every agent of its tiers when absent. */
  hosts?: (agentId: string) => boolean;
  extensions: Extension[];
}

/** The agent directory as the process's feed keeps it (host/directory-feed.ts). */
export interface AgentFeed {
  readonly directory: AgentDirectory;
  /** The status facts in force: failures, terminations, recoveries since the last failure (agent-status.ts). */
  statusFacts(): PolityEvent[];
  /** Calls `listener` with each AgentFailed and AgentRecovered read from now on; returns an unsubscribe. */
  onStatusChange(listener: (event: PolityEvent) => void): () => void;
  /** Resolves once the directory has read the log as far as it reached when asked. */
  caughtUp(): Promise<void>;
}

/** What the process shares with every role it runs. */
export interface RoleEnv {
  topology: TopologyConfig;
  feed: AgentFeed;
  /** Every policy version (the process's PolicyFeed). */
  policies: PolicyBook;
  /** A configured language model by name (ModelRegistry), null when there is none. */
  model(name: string): ChatModel | null;
  /** Where shell tasks get their work dirs. */
  workRoot: string;
  /** Hosted agents made to hang (tests). */
  silenced: SilencedAgents;
  /** Whether workers heartbeat (and so whether the health monitor runs). */
  heartbeats: boolean;
  /** Health monitor settings; domain/health.ts's defaults when absent. */
  health?: HealthOptions;
}

export function defineRole(definition: RoleDefinition): RoleDefinition {
  return definition;
}
