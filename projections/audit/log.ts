/**
 * Reads stretches of the log for audit: given topics (and optionally only some of their
 * partitions), from the start or from a time (offsets-for-times), up to the end each partition had
 * when the read began. It is a plain read_committed consumer in a throw-away group (deleted
 * afterwards), so it takes nothing from the processors' or projections' groups.
 *
 * Records come in batches per partition, in offset order within a partition; partitions interleave.
 */
import { randomUUID } from "node:crypto";
import { Partitioners, type Kafka, type KafkaMessage } from "kafkajs";
import { topicOffsets } from "../../lib/kafka.js";

export interface LogRecord {
  topic: string;
  partition: number;
  offset: string;
  /** The record's log timestamp (producer create time), ms since the epoch. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: KafkaMessage["headers"];
}

export interface ScanProgress {
  read: number;
  /** Records between the start and end offsets of every partition read (markers included). */
  total: number;
}

export interface ScanOptions {
  /** Physical topic names. */
  topics: string[];
  /** Only these partitions of a topic (physical name); every partition of topics not listed. */
  partitions?: Map<string, number[]>;
  /** Start at the first record at or after this time (ListOffsets by timestamp); else at the start. */
  from?: Date;
  /** Called with each batch, in offset order per partition; awaited before the next one. */
  onBatch: (records: LogRecord[]) => void | Promise<void>;
  /** Called about once a second while reading, and once at the end. */
  onProgress?: (progress: ScanProgress) => void;
}

/** The partition the producer's default partitioner (murmur2, as Java's) gives a key. */
export function partitionOfKey(key: string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 0,
    replicas: [0],
    isr: [0],
    offlineReplicas: [],
    partitionErrorCode: 0,
  }));
  return Partitioners.DefaultPartitioner()({ topic: "", partitionMetadata, message: { key, value: null } });
}

/** Records fetched but not yet handed to onBatch, past which fetching waits. */
const MAX_QUEUED = 50_000;

interface Range {
  next: bigint;
  end: bigint;
}

/** Reads the ranges asked for and resolves with the count of records handed over. */
export async function scanLog(kafka: Kafka, options: ScanOptions): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `polity-audit-${randomUUID()}`;
  const ranges = new Map<string, Range>();
  const rangeKey = (topic: string, partition: number) => `${topic}#${partition}`;
  let total = 0n;
  try {
    for (const topic of options.topics) {
      const wanted = options.partitions?.get(topic);
      const ends = await topicOffsets(admin, topic);
      const starts = options.from ? await admin.fetchTopicOffsetsByTimestamp(topic, options.from.getTime()) : null;
      for (const { partition, high, low } of ends) {
        if (wanted && !wanted.includes(partition)) continue;
        const fromTime = starts?.find((s) => s.partition === partition)?.offset;
        // A time after the last record answers -1: nothing to read there.
        const start = fromTime === undefined ? BigInt(low) : fromTime === "-1" ? BigInt(high) : BigInt(fromTime);
        if (start >= BigInt(high)) continue;
        ranges.set(rangeKey(topic, partition), { next: start, end: BigInt(high) });
        total += BigInt(high) - start;
      }
    }
  } catch (e) {
    await admin.disconnect();
    throw e;
  }
  if (ranges.size === 0) {
    await admin.disconnect();
    options.onProgress?.({ read: 0, total: 0 });
    return 0;
  }

  // Everything asked for is already in the log: no long polls, so the end is seen at once.
  const consumer = kafka.consumer({
    groupId,
    readUncommitted: false,
    maxBytes: 16 * 1024 * 1024,
    maxWaitTimeInMs: 100,
  });
  let read = 0;
  let handed = 0;
  const progress = () => options.onProgress?.({ read, total: Number(total) });
  const timer = options.onProgress ? setInterval(progress, 1000) : undefined;
  let finish!: () => void;
  let fail!: (e: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const open = new Set(ranges.keys());
  // Batches are processed in order, one after the other, behind the fetching.
  let pipeline: Promise<void> = Promise.resolve();
  let queued = 0;
  const later = (work: () => void | Promise<void>) => {
    pipeline = pipeline.then(work).catch((e: unknown) => {
      fail(e);
      return new Promise<void>(() => undefined);
    });
  };
  const reached = (topic: string, partition: number, after: bigint) => {
    const r = ranges.get(rangeKey(topic, partition));
    if (!r) return;
    if (after > r.next) {
      read += Number((after < r.end ? after : r.end) - r.next);
      r.next = after;
    }
    if (r.next >= r.end && open.delete(rangeKey(topic, partition)) && open.size === 0) finish();
  };
  try {
    await consumer.connect();
    // Batches made only of transaction markers never reach eachBatch; they are reported here.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize === 0)
        later(() => reached(payload.topic, payload.partition, BigInt(payload.lastOffset) + 1n));
    });
    for (const topic of options.topics) await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        const r = ranges.get(rangeKey(batch.topic, batch.partition));
        if (!r || r.next >= r.end) return;
        const records: LogRecord[] = [];
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < r.next || offset >= r.end) continue;
          records.push({
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            timestamp: Number(m.timestamp),
            key: m.key,
            value: m.value,
            headers: m.headers,
          });
        }
        const after = BigInt(batch.lastOffset()) + 1n;
        queued += records.length;
        later(async () => {
          if (records.length > 0) await options.onBatch(records);
          queued -= records.length;
          handed += records.length;
          reached(batch.topic, batch.partition, after);
        });
        // The batch is handed over in the background so the next fetch overlaps its processing;
        // past MAX_QUEUED records the fetching waits.
        if (queued > MAX_QUEUED) await pipeline;
        await heartbeat();
      },
    });
    for (const key of ranges.keys()) {
      const [topic, partition] = [key.slice(0, key.lastIndexOf("#")), Number(key.slice(key.lastIndexOf("#") + 1))];
      consumer.seek({ topic, partition, offset: ranges.get(key)!.next.toString() });
    }
    // Partitions with nothing to read are not fetched.
    for (const topic of options.topics) {
      const all = (await topicOffsets(admin, topic)).map((o) => o.partition);
      const others = all.filter((p) => !ranges.has(rangeKey(topic, p)));
      if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
    }
    await done;
    progress();
    return handed;
  } finally {
    clearInterval(timer);
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}
