import { GraphQLScalarType, Kind } from "graphql";

export const typeDefs = /* GraphQL */ `
  "An ISO-8601 date-time (UTC)."
  scalar DateTime
  "A decimal with four places, as a string, so amounts stay exact (e.g. \\"12.5000\\")."
  scalar Decimal
  "Any JSON value."
  scalar JSON

  type Entry {
    key: String!
    value: String!
  }
  input EntryInput {
    key: String!
    value: String!
  }

  type PageInfo {
    endCursor: String
    hasNextPage: Boolean!
  }

  """
  The gateway's answer to a mutation: the command it wrote to the log and whether it accepted it.
  Accepted means valid and durably in the log; the hierarchy may still refuse it later, which a
  waitForProjection request shows in 'outcome'.
  """
  type CommandReceipt {
    commandId: ID!
    commandType: String!
    accepted: Boolean!
    "The aggregate the command is about (goal id, agent id, policy id)."
    aggregateId: ID!
    "True when waitForProjection was asked and the effect reached the read model in time."
    projected: Boolean!
    "What the read model shows after the command, when waited for (e.g. REJECTED: reason)."
    outcome: String
  }

  type Query {
    "The caller as the gateway sees them."
    me: Me!
  }
  type Mutation
  type Subscription

  type Me {
    subject: String!
    role: String!
    tenantId: String!
    agentId: String
  }
`;

function literalString(ast: { kind: string; value?: string }): string {
  if (ast.kind !== Kind.STRING) throw new TypeError("expected a string literal");
  return ast.value!;
}

export const resolvers = {
  DateTime: new GraphQLScalarType({
    name: "DateTime",
    serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(v as string).toISOString()),
    parseValue: (v) => new Date(v as string),
    parseLiteral: (ast) => new Date(literalString(ast as { kind: string; value?: string })),
  }),
  Decimal: new GraphQLScalarType({
    name: "Decimal",
    serialize: (v) => String(v),
    parseValue: (v) => String(v),
    parseLiteral: (ast) => literalString(ast as { kind: string; value?: string }),
  }),
  JSON: new GraphQLScalarType({
    name: "JSON",
    serialize: (v) => v,
    parseValue: (v) => v,
  }),
  Query: {
    me: (_: unknown, __: unknown, ctx: import("./context.js").GatewayContext) => {
      const p = caller(ctx, "read");
      return { subject: p.subject, role: p.role, tenantId: p.tenantId, agentId: p.agentId };
    },
  },
};

import { caller } from "./context.js";

/** A string map from the read model ({ name, value } list) or the log (object) as GraphQL entries. */
export function entries(v: { name: string; value: string }[] | Record<string, string> | null | undefined) {
  if (!v) return [];
  if (Array.isArray(v)) return v.map((e) => ({ key: e.name, value: e.value }));
  return Object.entries(v).map(([key, value]) => ({ key, value }));
}
