import type { GoalDoc, TaskDoc } from "../../projections/mongo/state-store.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { entries } from "./common.js";
import { agentsAt, tasksAt, visibleGoal, type AsOf } from "./goals.js";
import { graphqlEnum } from "../contract/enums.js";

export const typeDefs = /* GraphQL */ `
  ${graphqlEnum("TaskStatus")}

  type TaskAssignees {
    governor: Agent
    mayor: Agent
    worker: Agent
  }
  type TaskFailure {
    agentId: String!
    reason: String!
    kind: String!
    retryable: Boolean!
  }
  type TaskTimings {
    createdAt: DateTime!
    assignedAt: DateTime
    acceptedAt: DateTime
    startedAt: DateTime
    completedAt: DateTime
    durationMs: Float
  }

  "The model calls of one task attempt (its ModelUsage), with how the attempt ended and what it cost."
  type TaskAttemptUsage {
    attempt: Int!
    "COMPLETED or FAILED."
    outcome: String!
    "The attempt's cost (TaskCompleted.cost); null for a failed attempt, whose event records none."
    cost: Decimal
    model: String!
    tokensIn: Float!
    tokensOut: Float!
    calls: Int!
    latencyMs: Float!
    promptDigest: String
    answerDigest: String
  }

  type Task {
    "goalId/taskId"
    id: ID!
    goalId: ID!
    taskId: ID!
    title: String!
    description: String
    domain: String!
    specialization: String
    phase: Phase
    priority: Int!
    status: TaskStatus!
    attempt: Int!
    maxAttempts: Int!
    dependsOn: [ID!]!
    "The tasks this one waits for."
    dependencies: [Task!]!
    assignees: TaskAssignees!
    executor: String
    progress: Float!
    result: String
    outputs: [Entry!]!
    "Sum of the cost of every attempt (for a model worker, the cost of its tokens)."
    cost: Decimal!
    "Model that answered the last attempt that called one; null when none did."
    model: String
    "Tokens read by the model calls of every attempt."
    tokensIn: Float!
    "Tokens written by the model calls of every attempt."
    tokensOut: Float!
    modelCalls: Int!
    modelLatencyMs: Float!
    "The model usage (with prompt and answer digests) of the last attempt that called a model; null when none did."
    usage: TaskAttemptUsage
    "Every attempt that called a model, by attempt."
    attemptUsage: [TaskAttemptUsage!]!
    failures: Int!
    lastFailure: TaskFailure
    timings: TaskTimings!
  }

  input TaskResultInput {
    goalId: ID!
    taskId: ID!
    "The attempt the agent was given (TaskAssigned.attempt)."
    attempt: Int!
    status: TaskResultStatus!
    "Required when COMPLETED."
    result: String
    outputs: [EntryInput!]
    cost: Decimal
    "Required when FAILED."
    reason: String
    retryable: Boolean
    durationMs: Int
  }
  enum TaskResultStatus {
    COMPLETED
    FAILED
  }

  extend type Goal {
    "The goal's tasks (as of the goal's asOf, when it was asked for with one)."
    tasks(status: TaskStatus): [Task!]!
  }

  extend type Query {
    task(goalId: ID!, taskId: ID!): Task
  }

  extend type Mutation {
    "An external agent reports the result of the attempt it holds (agent tokens only)."
    reportTaskResult(input: TaskResultInput!): CommandReceipt!
  }
`;

export const resolvers = {
  Query: {
    task: (_: unknown, { goalId, taskId }: { goalId: string; taskId: string }, ctx: GatewayContext) =>
      guarded(async () => {
        if (!(await visibleGoal(ctx, goalId))) return null;
        const tasks = await ctx.loaders().tasksByGoal.load(goalId);
        return tasks.find((t) => t.taskId === taskId) ?? null;
      }),
  },
  Mutation: {
    reportTaskResult: (_: unknown, { input }: { input: unknown }, ctx: GatewayContext) =>
      guarded(() => ctx.commands.reportTaskResult(ctx.principal, input)),
  },
  Goal: {
    tasks: (g: AsOf<GoalDoc>, { status }: { status?: string }, ctx: GatewayContext) =>
      guarded(async () => {
        caller(ctx, "read");
        const tasks = g._asOf ? tasksAt(g._asOf, g._id) : await ctx.loaders().tasksByGoal.load(g._id);
        return status ? tasks.filter((t) => t.status === status) : tasks;
      }),
  },
  Task: {
    id: (t: TaskDoc) => t._id,
    dependsOn: (t: TaskDoc) => t.dependsOn ?? [],
    dependencies: async (t: AsOf<TaskDoc>, _: unknown, ctx: GatewayContext) => {
      // As of a time, among the tasks as they were then.
      const all = t._asOf ? tasksAt(t._asOf, t.goalId) : await ctx.loaders().tasksByGoal.load(t.goalId);
      return all.filter((x) => (t.dependsOn ?? []).includes(x.taskId));
    },
    assignees: (t: AsOf<TaskDoc>, _: unknown, ctx: GatewayContext) => {
      const a = t.assignees ?? {};
      // As of a time: the agent as it was then when the snapshot holds agents (one of the whole
      // log); a snapshot of one goal holds none, and the agent comes from the read model.
      const then = t._asOf ? agentsAt(t._asOf) : null;
      const load = (id: string | undefined) => (id ? (then?.get(id) ?? ctx.loaders().agent.load(id)) : null);
      return {
        governor: load(a.GOVERNOR ?? a.SUB_MASTER),
        mayor: load(a.MAYOR),
        worker: load(a.WORKER),
      };
    },
    outputs: (t: TaskDoc) => entries(t.outputs),
    // A document written before model usage was projected has none of these fields: no model call.
    model: (t: TaskDoc) => t.model ?? null,
    tokensIn: (t: TaskDoc) => t.tokensIn ?? 0,
    tokensOut: (t: TaskDoc) => t.tokensOut ?? 0,
    modelCalls: (t: TaskDoc) => t.modelCalls ?? 0,
    modelLatencyMs: (t: TaskDoc) => t.modelLatencyMs ?? 0,
    usage: (t: TaskDoc) => t.usage ?? null,
    attemptUsage: (t: TaskDoc) => t.attemptUsage ?? [],
  },
};
