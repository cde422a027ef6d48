/** Builds valid outgoing messages for tests from sample values of the real schemas. */
import type { Codec } from "../../schemas/codec.js";
import type { OutgoingMessage } from "../../producers/writer.js";
import { sampleValue } from "./samples.js";

export function sampleMessage(
  codec: Codec,
  type: string,
  tenantId: string,
  overrides: Record<string, unknown> = {},
): OutgoingMessage {
  const { envelope: _envelope, ...payload } = sampleValue(codec.typeOf(type)) as Record<string, unknown>;
  // Built from sample values at run time (sometimes deliberately invalid): the writer's runtime
  // validation is what the tests exercise, so the static payload type is bypassed here.
  return {
    type,
    context: {
      tenantId,
      correlationId: `goal-${tenantId}`,
      actor: { id: "test-user", tier: "USER" },
      aggregate: { type: "GOAL", id: `goal-${tenantId}`, version: 1 },
    },
    payload: { ...payload, ...overrides },
  } as unknown as OutgoingMessage;
}
