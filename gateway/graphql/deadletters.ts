/**
 * Dead letters: messages a consumer could not decode or apply, set aside on polity.deadletters. No
 * read model keeps them; they are read back from the topic (through the audit log reader).
 */
import { forbidden, invalid } from "../errors.js";
import { caller, guarded, type GatewayContext } from "./context.js";
import { audit } from "./goals.js";

export const typeDefs = /* GraphQL */ `
  "A message a consumer could not decode or apply, as set aside on polity.deadletters."
  type DeadLetter {
    "Topic the message was read from (physical name)."
    originalTopic: String!
    originalPartition: Int!
    "Offset it was read at (a string, as Kafka offsets are 64-bit)."
    originalOffset: String!
    "Consumer group that could not handle it."
    consumerGroup: String!
    "UNDECODABLE, UNKNOWN_SCHEMA_ID, UNKNOWN_TYPE, SCHEMA_MISMATCH or HANDLER_ERROR."
    errorKind: String!
    "What went wrong, in words."
    reason: String!
    failedAt: DateTime!
  }

  extend type Query {
    """
    The latest dead letters, newest first, read from polity.deadletters (limit 1 to 1000). Dead
    letters carry no reliable tenant, so they are of every tenant: admin and operator tokens only.
    """
    deadLetters(limit: Int = 50): [DeadLetter!]!
  }
`;

export const resolvers = {
  Query: {
    deadLetters: (_: unknown, { limit }: { limit: number }, ctx: GatewayContext) =>
      guarded(async () => {
        const p = caller(ctx, "read");
        if (p.role !== "platform-admin" && p.role !== "admin" && p.role !== "operator")
          throw forbidden(`role ${p.role} may not read dead letters (of every tenant); ask for an operator token`);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalid("limit", "must be from 1 to 1000");
        const letters = await audit(ctx).deadLetters();
        return [...letters]
          .sort((a, b) => new Date(b.failedAt).getTime() - new Date(a.failedAt).getTime())
          .slice(0, limit)
          .map((l) => ({
            originalTopic: l.originalTopic,
            originalPartition: l.originalPartition,
            originalOffset: l.originalOffset,
            consumerGroup: l.consumerGroup,
            errorKind: l.errorKind,
            reason: l.reason,
            failedAt: l.failedAt,
          }));
      }),
  },
};
