/**
 * Replay: the log read back and decoded through the registry, in log order. The timeline, time
 * travel and the replay benchmark are built on this; verify reads raw records (log.ts) instead.
 */
import type { Kafka } from "kafkajs";
import { physicalTopic, TOPICS, type TopicName } from "../../schemas/catalog.js";
import { DecodeError, type Codec } from "../../schemas/codec.js";
import type { Envelope } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { partitionOfKey, scanLog, type LogRecord, type ScanProgress } from "./log.js";
import { topicOffsets } from "../../lib/kafka.js";

/** The topics keyed by goal id: everything a goal is made of. */
export const GOAL_TOPICS: TopicName[] = TOPICS.filter((t) => t.key === "goalId").map((t) => t.name);

export interface ReplayedEvent {
  topic: string;
  partition: number;
  offset: string;
  timestamp: number;
  event: PolityEvent;
  envelope: Envelope;
}

export interface UnreadableRecord {
  topic: string;
  partition: number;
  offset: string;
  reason: string;
}

export interface ReplayOptions {
  kafka: Kafka;
  codec: Codec;
  topicPrefix?: string;
  /** Catalog topic names to read. */
  topics: TopicName[];
  /** Read only the partition of each topic that holds this key (a goal id on goal-keyed topics). */
  key?: string;
  from?: Date;
  /** Keep only these events (the others are decoded and dropped). */
  filter?: (event: ReplayedEvent) => boolean;
  onProgress?: (p: ScanProgress) => void;
}

export interface Replay {
  /** Kept events, in offset order per partition; partitions interleave as read. */
  events: ReplayedEvent[];
  unreadable: UnreadableRecord[];
  /** Records decoded (kept or not). */
  decoded: number;
}

/** Decodes one record; throws only when the registry cannot be reached. */
export async function decodeRecord(
  codec: Codec,
  record: LogRecord,
): Promise<{ ok: true; event: ReplayedEvent } | { ok: false; reason: string }> {
  try {
    const decoded = await codec.decode(record.value);
    const event = { type: decoded.type, value: decoded.value } as unknown as PolityEvent;
    const envelope = (decoded.value as { envelope?: Envelope }).envelope;
    if (!envelope) return { ok: false, reason: `${decoded.type} has no envelope` };
    return {
      ok: true,
      event: {
        topic: record.topic,
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        event,
        envelope,
      },
    };
  } catch (e) {
    if (e instanceof DecodeError) return { ok: false, reason: e.message };
    throw e;
  }
}

export async function replay(options: ReplayOptions): Promise<Replay> {
  const { kafka, codec } = options;
  const prefix = options.topicPrefix ?? "";
  const physical = options.topics.map((t) => physicalTopic(t, prefix));
  let partitions: Map<string, number[]> | undefined;
  if (options.key !== undefined) {
    partitions = new Map();
    const admin = kafka.admin();
    await admin.connect();
    try {
      for (const topic of physical) {
        const count = (await topicOffsets(admin, topic)).length;
        partitions.set(topic, [partitionOfKey(options.key, count)]);
      }
    } finally {
      await admin.disconnect();
    }
  }
  const out: Replay = { events: [], unreadable: [], decoded: 0 };
  await scanLog(kafka, {
    topics: physical,
    ...(partitions ? { partitions } : {}),
    ...(options.from ? { from: options.from } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    onBatch: async (records) => {
      for (const record of records) {
        const r = await decodeRecord(codec, record);
        if (!r.ok) {
          out.unreadable.push({
            topic: record.topic,
            partition: record.partition,
            offset: record.offset,
            reason: r.reason,
          });
          continue;
        }
        out.decoded++;
        if (!options.filter || options.filter(r.event)) out.events.push(r.event);
      }
    },
  });
  return out;
}

/**
 * Puts events of several partitions in one order: offset order within each partition, partitions
 * merged by time, each event placed at the latest occurredAt up to it in its partition (producers
 * stamp events before they commit, so occurredAt alone is not log order).
 */
export function inLogOrder(events: ReplayedEvent[]): ReplayedEvent[] {
  const byPartition = new Map<string, ReplayedEvent[]>();
  for (const e of events) {
    const k = `${e.topic}#${e.partition}`;
    const list = byPartition.get(k);
    if (list) list.push(e);
    else byPartition.set(k, [e]);
  }
  const placed: { e: ReplayedEvent; at: number }[] = [];
  for (const list of byPartition.values()) {
    list.sort((a, b) => (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1));
    let at = 0;
    for (const e of list) {
      at = Math.max(at, e.envelope.occurredAt.getTime());
      placed.push({ e, at });
    }
  }
  return placed
    .sort(
      (a, b) =>
        a.at - b.at ||
        a.e.topic.localeCompare(b.e.topic) ||
        a.e.partition - b.e.partition ||
        Number(BigInt(a.e.offset) - BigInt(b.e.offset)),
    )
    .map((p) => p.e);
}
