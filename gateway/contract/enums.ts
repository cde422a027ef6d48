/**
 * The enumerations the API shares with the event log. The Avro schemas (schemas/avro) are their
 * source: each list here must name every symbol of its Avro enum (the generated union type) and
 * nothing else, or this file does not compile; test/contract/api-contract.test.ts compares them
 * with the .avsc files too. The zod request schemas, the OpenAPI document and the GraphQL enums
 * (`graphqlEnum`) are built from these lists, so none of them keeps a copy.
 */
import { z } from "zod";
import type {
  AgentStatus,
  ExecutorKind,
  GoalKind,
  GoalStatus,
  Phase,
  PolicyCategory,
  TaskStatus,
  Tier,
  Topology,
} from "../../schemas/generated/types.js";

/** `list` when it names every member of U; otherwise a type naming the ones it misses. */
type Exhaustive<U, L extends readonly U[]> = [U] extends [L[number]] ? L : { missing: Exclude<U, L[number]> };
const every =
  <U extends string>() =>
  <const L extends readonly [U, ...U[]]>(list: L & Exhaustive<U, L>): L =>
    list;

export const GOAL_KINDS = every<GoalKind>()(["GOAL", "PROJECT"]);
export const GOAL_STATUSES = every<GoalStatus>()([
  "SUBMITTED",
  "VALIDATED",
  "REJECTED",
  "DECOMPOSED",
  "RUNNING",
  "COMPLETED",
  "FAILED",
  "STOPPED",
]);
export const TASK_STATUSES = every<TaskStatus>()([
  "PENDING",
  "READY",
  "ASSIGNED",
  "ACCEPTED",
  "RUNNING",
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMED_OUT",
]);
export const PHASES = every<Phase>()([
  "INITIATION",
  "FEASIBILITY",
  "REQUIREMENTS",
  "DESIGN",
  "DEVELOPMENT",
  "QA",
  "DEPLOYMENT",
  "LAUNCH",
]);
export const TOPOLOGIES = every<Topology>()(["aamas", "dgm"]);
/** ExecutorKind: a worker registered with `model` runs its group's configured model (topology 'models'). */
export const EXECUTORS = every<ExecutorKind>()(["simulated", "shell", "external", "model"]);
export const POLICY_CATEGORIES = every<PolicyCategory>()([
  "RESOURCE_ALLOCATION",
  "PERFORMANCE",
  "SECURITY",
  "ESCALATION",
  "COMMUNICATION",
  "CONSTITUTIONAL",
]);
export const AGENT_STATUSES = every<AgentStatus>()([
  "STARTING",
  "IDLE",
  "BUSY",
  "OVERLOADED",
  "DRAINING",
  "FAILED",
  "TERMINATED",
]);

/**
 * Avro's Tier also names SYSTEM (the platform) and USER (a person or program outside the hierarchy):
 * actors of the log, never an agent's tier. The API's tiers are the others.
 */
export const NON_AGENT_TIERS = ["SYSTEM", "USER"] as const satisfies readonly Tier[];
export type AgentTier = Exclude<Tier, (typeof NON_AGENT_TIERS)[number]>;
export const TIERS = every<AgentTier>()(["PRESIDENT", "GOVERNOR", "MAYOR", "MASTER", "SUB_MASTER", "WORKER"]);

/** Statuses an agent may report in a heartbeat; FAILED and TERMINATED are the platform's to say. */
export const HEARTBEAT_STATUSES = [
  "STARTING",
  "IDLE",
  "BUSY",
  "OVERLOADED",
  "DRAINING",
] as const satisfies readonly AgentStatus[];

/** The enums of the request schemas, by their Avro name (what the contract test compares). */
export const zodEnums = {
  GoalKind: z.enum(GOAL_KINDS),
  Phase: z.enum(PHASES),
  Topology: z.enum(TOPOLOGIES),
  ExecutorKind: z.enum(EXECUTORS),
  PolicyCategory: z.enum(POLICY_CATEGORIES),
  Tier: z.enum(TIERS),
};

/** The GraphQL enums generated from these lists, by name (the GraphQL name is the Avro name). */
export const GRAPHQL_ENUMS = {
  GoalKind: GOAL_KINDS,
  GoalStatus: GOAL_STATUSES,
  Phase: PHASES,
  Topology: TOPOLOGIES,
  Tier: TIERS,
  PolicyCategory: POLICY_CATEGORIES,
  TaskStatus: TASK_STATUSES,
} as const;

/** The SDL of one of GRAPHQL_ENUMS, for a module's typeDefs. */
export function graphqlEnum(name: keyof typeof GRAPHQL_ENUMS): string {
  return `enum ${name} {\n${GRAPHQL_ENUMS[name].map((v) => `    ${v}`).join("\n")}\n  }`;
}
