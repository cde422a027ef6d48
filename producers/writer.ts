/**
 * The typed event writer: every Polity message goes to Kafka through here. It validates every
 * message against its schema before anything is sent, fills the envelope and headers, keys by the
 * catalog, and sends with an idempotent producer, or inside a Kafka transaction together with the
 * consumer offsets of a consume-transform-produce step.
 */
import type { Kafka, Producer, RecordMetadata, Transaction, TopicOffsets } from "kafkajs";
import { DEAD_LETTER_TOPIC, physicalTopic, topicFor } from "../schemas/catalog.js";
import type { DeadLetter, MessageTypeName, Payload } from "../schemas/generated/types.js";
import { deadLetterMessage } from "../schemas/reader.js";
import type { Codec } from "../schemas/codec.js";
import { aggregateLabel, CHAIN_HEADER, HashChain, recordHash } from "./chain.js";
import { buildEnvelope, buildHeaders, keyFor, type Envelope, type MessageContext } from "./envelope.js";

/** A message to write; with a literal `type`, its payload is checked against the generated type. */
export type OutgoingMessage<K extends MessageTypeName = MessageTypeName> = {
  [T in K]: {
    type: T;
    context: MessageContext;
    /** The message's fields other than the envelope. */
    payload: Payload<T>;
    /** An envelope built beforehand (by a processor that applies its own output at once); else built here. */
    envelope?: Envelope;
  };
}[K];

export interface SentMessage {
  type: string;
  topic: string;
  key: string;
  envelope: Envelope;
}

/** Where a write landed: the first offset of its batch in one topic-partition. */
export interface LogPosition {
  topic: string;
  partition: number;
  offset: bigint;
}

const positionsOf = (metadata: RecordMetadata[]): LogPosition[] =>
  metadata.map((m) => ({ topic: m.topicName, partition: m.partition, offset: BigInt(m.baseOffset ?? "-1") }));

interface Prepared extends SentMessage {
  value: Buffer;
  headers: ReturnType<typeof buildHeaders>;
  /** The message's stream and hash, for the writer's HashChain once it is durably written. */
  aggregate: string;
  hash: string;
}

/** Stream heads of messages prepared but not yet written (a transaction's, until it commits). */
type Links = Map<string, { topic: string; aggregate: string; hash: string; key: string }>;

/**
 * The transactional producers' retry (kafkajs doubles the wait each time). Right after a commit the
 * coordinator is still finishing it (writing the markers) and answers the next transaction's
 * AddPartitionsToTxn with CONCURRENT_TRANSACTIONS for a millisecond or two. kafkajs's default first
 * retry after 300 ms, or the Java client's 20 ms, puts that wait on every hop where a tier commits
 * twice in a row (a worker's TaskStarted, then its TaskCompleted): one 10-task goal alone went from
 * 160-168 ms to 96-99 ms when 20 ms became 2 (bench:flow --goals 10 --one-by-one --warmup 10). 14
 * retries from 2 ms span ~33 s (10 from 20 ms spanned ~20 s), for a broker that is really away.
 */
export const TRANSACTIONAL_RETRY = { initialRetryTime: 2, retries: 14 } as const;

export class EventWriter {
  /** The latest hash of each stream this writer knows (producers/chain.ts); hosts feed it what they read. */
  readonly chain = new HashChain();

  private constructor(
    private readonly producer: Producer,
    private readonly codec: Codec,
    private readonly transactional: boolean,
    private readonly topicPrefix: string,
  ) {}

  /**
   * An idempotent producer; with `transactionalId`, a transactional one (one id per processor
   * instance: the broker fences a zombie that reuses it).
   */
  static async connect(
    kafka: Kafka,
    codec: Codec,
    options: { transactionalId?: string; topicPrefix?: string } = {},
  ): Promise<EventWriter> {
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      ...(options.transactionalId ? { transactionalId: options.transactionalId, retry: TRANSACTIONAL_RETRY } : {}),
    });
    await producer.connect();
    if (options.transactionalId) {
      // kafkajs registers the transactional id (InitProducerId) only when the first transaction
      // begins, not on connect. Doing it here is what fences a previous owner of the id and has the
      // coordinator abort its open transaction before this writer's owner reads the log: a restore
      // that read first would wait for that orphan (up to the transaction timeout, 60 s) or, against a
      // zombie that is still running, read a log it can still commit to. An empty transaction sends
      // no EndTxn.
      const tx = await producer.transaction();
      await tx.abort();
    }
    return new EventWriter(producer, codec, options.transactionalId !== undefined, options.topicPrefix ?? "");
  }

  /** Validates and encodes every message; throws before anything is sent when one is invalid. */
  private async prepare(messages: OutgoingMessage[], links: Links): Promise<Prepared[]> {
    const built = messages.map((m) => {
      const envelope = m.envelope ?? buildEnvelope(m.type, m.context);
      const value = { envelope, ...m.payload };
      this.codec.validate(m.type, value);
      return { m, envelope, value };
    });
    const encoded = await Promise.all(
      built.map(async ({ m, envelope, value }) => {
        const topic = topicFor(m.type);
        const id = await this.codec.schemaId(m.type);
        return {
          type: m.type,
          topic: physicalTopic(topic.name, this.topicPrefix),
          key: keyFor(topic, envelope, m.payload as unknown as Record<string, unknown>),
          envelope,
          value: this.codec.encodeWithId(m.type, id, value),
          headers: buildHeaders(envelope, m.context.traceparent),
        };
      }),
    );
    // Chained in order, so that messages of one stream in one call link to each other.
    return encoded.map((p) => {
      const aggregate = aggregateLabel(p.envelope.aggregate);
      const stream = `${p.topic}|${aggregate}`;
      const prev = links.get(stream)?.hash ?? this.chain.head(p.topic, aggregate) ?? "";
      const hash = recordHash(prev, p.key, p.value);
      links.set(stream, { topic: p.topic, aggregate, hash, key: p.key });
      p.headers[CHAIN_HEADER.aggregate] = aggregate;
      if (prev) p.headers[CHAIN_HEADER.prev] = prev;
      p.headers[CHAIN_HEADER.hash] = hash;
      return { ...p, aggregate, hash };
    });
  }

  /** Makes written messages the heads of their streams. */
  private advance(links: Links): void {
    for (const { topic, aggregate, hash, key } of links.values()) this.chain.advance(topic, aggregate, hash, key);
  }

  private async write(target: Producer | Transaction, prepared: Prepared[]): Promise<LogPosition[]> {
    const byTopic = new Map<string, Prepared[]>();
    for (const p of prepared) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p]);
    const metadata = await target.sendBatch({
      topicMessages: [...byTopic].map(([topic, ps]) => ({
        topic,
        messages: ps.map((p) => ({ key: p.key, value: p.value, headers: p.headers })),
      })),
    });
    return positionsOf(metadata);
  }

  private strip(prepared: Prepared[]): SentMessage[] {
    return prepared.map(({ type, topic, key, envelope }) => ({ type, topic, key, envelope }));
  }

  /** Sends messages with the idempotent producer (no transaction). */
  async send(messages: OutgoingMessage[]): Promise<SentMessage[]> {
    if (this.transactional) throw new Error("this writer is transactional: send inside writer.transaction(...)");
    const links: Links = new Map();
    const prepared = await this.prepare(messages, links);
    await this.write(this.producer, prepared);
    this.advance(links);
    return this.strip(prepared);
  }

  /**
   * Runs `work` in one Kafka transaction: every message it sends and the offsets it records commit
   * together, or none of them is visible to read_committed consumers.
   */
  async transaction<T>(work: (tx: WriterTransaction) => Promise<T>): Promise<T> {
    if (!this.transactional) throw new Error("connect the writer with a transactionalId to use transactions");
    const tx = await this.producer.transaction();
    const links: Links = new Map();
    const written: LogPosition[] = [];
    const wrapped: WriterTransaction = {
      written,
      send: async (messages) => {
        const prepared = await this.prepare(messages, links);
        written.push(...(await this.write(tx, prepared)));
        return this.strip(prepared);
      },
      sendOffsets: (consumerGroupId, topics) => tx.sendOffsets({ consumerGroupId, topics }),
      sendDeadLetters: async (letters) => {
        if (letters.length === 0) return;
        const metadata = await tx.send({
          topic: physicalTopic(DEAD_LETTER_TOPIC, this.topicPrefix),
          messages: await Promise.all(letters.map((letter) => deadLetterMessage(this.codec, letter))),
        });
        written.push(...positionsOf(metadata));
      },
    };
    try {
      const result = await work(wrapped);
      await tx.commit();
      this.advance(links);
      return result;
    } catch (e) {
      await tx.abort().catch(() => undefined);
      throw e;
    }
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
  }
}

export interface WriterTransaction {
  /** Where this transaction's sends landed so far; once it has committed, what it made part of the log. */
  readonly written: readonly LogPosition[];
  send(messages: OutgoingMessage[]): Promise<SentMessage[]>;
  /** Commits these consumer offsets (the next offset to read) with the transaction. */
  sendOffsets(consumerGroupId: string, topics: TopicOffsets[]): Promise<void>;
  /** Writes messages that could not be read to the dead-letter topic, inside the transaction. */
  sendDeadLetters(letters: DeadLetter[]): Promise<void>;
}
