/**
 * The envelope and Kafka headers of every message, filled in here and nowhere else.
 */
import { randomFillSync, randomUUID } from "node:crypto";
import type { IHeaders } from "kafkajs";
import type { TopicSpec } from "../schemas/catalog.js";
import type { Actor, AggregateRef, Envelope } from "../schemas/generated/types.js";

export type { Envelope };

export interface MessageContext {
  tenantId: string;
  /** The goal or request the message belongs to. */
  correlationId: string;
  /** eventId of the message that caused this one; omitted when the message starts a flow. */
  causationId?: string | null;
  actor: Actor;
  aggregate: AggregateRef;
  /** Defaults to now. */
  occurredAt?: Date;
  /** W3C trace context of the caller; a new trace is started when absent. */
  traceparent?: string;
}

export function buildEnvelope(type: string, context: MessageContext): Envelope {
  return {
    eventId: randomUUID(),
    type,
    occurredAt: context.occurredAt ?? new Date(),
    tenantId: context.tenantId,
    correlationId: context.correlationId,
    causationId: context.causationId ?? null,
    actor: context.actor,
    aggregate: context.aggregate,
  };
}

export const HEADER = {
  eventId: "polity-event-id",
  type: "polity-type",
  tenantId: "polity-tenant-id",
  correlationId: "polity-correlation-id",
  causationId: "polity-causation-id",
  traceparent: "traceparent",
} as const;

/**
 * Random bytes for trace ids, filled 4 KiB at a time: two randomBytes calls per message were a tenth
 * of the writer's CPU time (`npm run bench:codec`), most of it allocating and filling tiny buffers.
 */
const TRACE_POOL = Buffer.alloc(4_096);
let tracePoolAt = TRACE_POOL.length;

function newTraceparent(): string {
  if (tracePoolAt + 24 > TRACE_POOL.length) {
    randomFillSync(TRACE_POOL);
    tracePoolAt = 0;
  }
  const at = tracePoolAt;
  tracePoolAt += 24;
  return `00-${TRACE_POOL.toString("hex", at, at + 16)}-${TRACE_POOL.toString("hex", at + 16, at + 24)}-01`;
}

export function buildHeaders(envelope: Envelope, traceparent?: string): IHeaders {
  const headers: IHeaders = {
    [HEADER.eventId]: envelope.eventId,
    [HEADER.type]: envelope.type,
    [HEADER.tenantId]: envelope.tenantId,
    [HEADER.correlationId]: envelope.correlationId,
    [HEADER.traceparent]: traceparent ?? newTraceparent(),
  };
  if (envelope.causationId) headers[HEADER.causationId] = envelope.causationId;
  return headers;
}

/** The Kafka key of a message, as the topic catalog says: the id that needs ordering. */
export function keyFor(topic: TopicSpec, envelope: Envelope, payload: Record<string, unknown>): string {
  const fromPayload = (field: string) => (typeof payload[field] === "string" ? (payload[field] as string) : undefined);
  let key: string | undefined;
  switch (topic.key) {
    case "goalId":
      key = fromPayload("goalId") ?? envelope.correlationId;
      break;
    case "agentId":
      key = fromPayload("agentId") ?? envelope.aggregate.id;
      break;
    case "policyId":
      key = fromPayload("policyId") ?? envelope.aggregate.id;
      break;
    case "tenantId":
      key = envelope.tenantId;
      break;
    case "originalKey":
      key = envelope.aggregate.id;
      break;
  }
  if (!key) throw new Error(`${envelope.type}: no ${topic.key} to key ${topic.name} by`);
  return key;
}
