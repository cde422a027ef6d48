/** Policies (with their versions) and escalations. */
import type { PolicyDoc } from "../../projections/mongo/state-store.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { visibleGoal } from "./goals.js";
import { graphqlEnum } from "../contract/enums.js";

export const typeDefs = /* GraphQL */ `
  ${graphqlEnum("PolicyCategory")}

  type PolicyVersion {
    version: Int!
    description: String!
    "The rules, as JSON."
    rules: JSON!
    appliesToTiers: [Tier!]!
    domains: [String!]!
    precedence: Int!
    effectiveFrom: DateTime!
    rationale: String
    at: DateTime!
  }

  type Policy {
    id: ID!
    "The owning tenant; null for a platform-wide policy (defined by the platform admin)."
    tenantId: String
    name: String
    category: PolicyCategory
    status: String!
    currentVersion: Int!
    current: PolicyVersion
    versions: [PolicyVersion!]!
  }

  type EscalationParty {
    agentId: String
    tier: String!
  }

  type Escalation {
    id: ID!
    goalId: ID!
    taskId: ID
    kind: String
    severity: String
    from: EscalationParty
    to: EscalationParty
    reason: String
    "Reasons of the escalations that led here, oldest first."
    reasonChain: [String!]!
    status: String!
    outcome: String
    decision: String
    reassignedTo: String
    raisedAt: DateTime
    resolvedAt: DateTime
  }

  input PolicyInput {
    policyId: ID!
    name: String!
    category: PolicyCategory!
    description: String!
    "A JSON object of rules (object or string)."
    rules: JSON!
    appliesToTiers: [Tier!]
    domains: [String!]
    precedence: Int
    effectiveFrom: String
  }

  input PolicyAmendmentInput {
    policyId: ID!
    "The version being amended; a stale one is refused."
    expectedVersion: Int!
    rules: JSON!
    description: String
    appliesToTiers: [Tier!]
    domains: [String!]
    precedence: Int
    rationale: String!
    effectiveFrom: String
  }

  extend type Query {
    policies(category: PolicyCategory, status: String): [Policy!]!
    policy(id: ID!): Policy
    escalations(goalId: ID, status: String): [Escalation!]!
  }

  extend type Mutation {
    definePolicy(input: PolicyInput!, waitForProjection: Boolean = false): CommandReceipt!
    amendPolicy(input: PolicyAmendmentInput!, waitForProjection: Boolean = false): CommandReceipt!
  }
`;

function parseRules(rules: string): unknown {
  try {
    return JSON.parse(rules);
  } catch {
    return rules;
  }
}

export const resolvers = {
  Query: {
    policies: (_: unknown, args: { category?: string; status?: string }, ctx: GatewayContext) =>
      guarded(async () => {
        caller(ctx, "read");
        // A tenant sees its own policies and the platform-wide ones (visibility.ts).
        return ctx.viewer().policies(args);
      }),
    policy: (_: unknown, { id }: { id: string }, ctx: GatewayContext) =>
      guarded(async () => {
        caller(ctx, "read");
        return ctx.viewer().policy(id);
      }),
    escalations: (_: unknown, args: { goalId?: string; status?: string }, ctx: GatewayContext) =>
      guarded(async () => {
        const p = caller(ctx, "read");
        const all = await ctx.read.escalations(p.tenantId, args);
        if (p.role !== "agent") return all;
        // An agent token sees only the goals its subtree works on, here as in goal(id).
        const visible = await Promise.all(all.map((e) => visibleGoal(ctx, e.goalId)));
        return all.filter((_e, i) => visible[i]);
      }),
  },
  Mutation: {
    definePolicy: (_: unknown, { input, waitForProjection }: Record<string, unknown>, ctx: GatewayContext) =>
      guarded(() => ctx.commands.definePolicy(ctx.principal, input, { waitForProjection: !!waitForProjection })),
    amendPolicy: (_: unknown, { input, waitForProjection }: Record<string, unknown>, ctx: GatewayContext) =>
      guarded(() => ctx.commands.amendPolicy(ctx.principal, input, { waitForProjection: !!waitForProjection })),
  },
  Policy: {
    id: (p: PolicyDoc) => p.policyId,
    current: (p: PolicyDoc) => p.versions.find((v) => v.version === p.currentVersion) ?? null,
  },
  PolicyVersion: {
    rules: (v: { rules: string }) => parseRules(v.rules),
  },
  Escalation: {
    id: (e: { escalationId: string }) => e.escalationId,
    reasonChain: (e: { reasonChain?: string[] }) => e.reasonChain ?? [],
  },
};
