/**
 * The typed event reader: a read_committed consumer that decodes every message by the schema id
 * it carries. A message that cannot be read (not the wire format, unknown schema id, a record
 * that is no Polity message, a body that does not decode) goes to the dead-letter topic with its
 * original bytes, where it came from and why, and reading continues with the next message.
 * Dead letters are written at least once: if the consumer restarts before its offsets are
 * committed, a message is read and dead-lettered again; (originalTopic, originalPartition,
 * originalOffset) identifies it. The processors' hosts write theirs inside their transaction.
 */
import type { Consumer, IHeaders, Kafka, Message, Producer } from "kafkajs";
import { DEAD_LETTER_TOPIC, physicalTopic } from "./catalog.js";
import { Codec, DecodeError } from "./codec.js";
import type { DeadLetter, MessageMap, MessageTypeName } from "./generated/types.js";

/** A decoded event; switch on `type` to get its generated payload type. */
export type PolityEvent = { [K in MessageTypeName]: { type: K; value: MessageMap[K] } }[MessageTypeName];

/** Narrows a read event to its generated type. */
export function typed(event: ReadEvent): PolityEvent {
  return { type: event.type, value: event.value } as unknown as PolityEvent;
}

export interface ReadEvent<T = Record<string, unknown>> {
  type: string;
  value: T;
  schemaId: number;
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  headers: IHeaders;
}

export type { DeadLetter };

/**
 * The Kafka message that carries a dead letter, validated: its key is the original key, its
 * headers say what it is and why. Every consumer that dead-letters writes through this.
 */
export async function deadLetterMessage(codec: Codec, letter: DeadLetter): Promise<Message> {
  codec.validate("DeadLetter", letter);
  return {
    key: letter.originalKey,
    value: codec.encodeWithId("DeadLetter", await codec.schemaId("DeadLetter"), letter),
    headers: { "polity-type": "DeadLetter", "polity-dead-letter-reason": letter.errorKind },
  };
}

function headerBuffers(headers: IHeaders | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = Buffer.isBuffer(first) ? first : Buffer.from(String(first));
  }
  return out;
}

/** The dead letter for a message that could not be read: its original bytes, origin and the reason. */
export function deadLetterFor(
  origin: { topic: string; partition: number; consumerGroup: string },
  message: { offset: string; key: Buffer | null; value: Buffer | null; headers?: IHeaders },
  error: { message: string; kind: DeadLetter["errorKind"] },
): DeadLetter {
  return {
    originalTopic: origin.topic,
    originalPartition: origin.partition,
    originalOffset: message.offset,
    originalKey: message.key,
    originalValue: message.value,
    originalHeaders: headerBuffers(message.headers),
    reason: error.message,
    errorKind: error.kind,
    failedAt: new Date(),
    consumerGroup: origin.consumerGroup,
  };
}

export interface ReaderOptions {
  kafka: Kafka;
  codec: Codec;
  groupId: string;
  topics: string[];
  /** The deployment's topic prefix, for the dead-letter topic (`topics` are given in full). */
  topicPrefix?: string;
  fromBeginning?: boolean;
  handle: (event: ReadEvent) => Promise<void>;
  /** Called after a message went to the dead-letter topic (for metrics and tests). */
  onDeadLetter?: (letter: DeadLetter) => void;
}

export class EventReader {
  private constructor(
    private readonly consumer: Consumer,
    private readonly dlq: Producer,
  ) {}

  static async start(options: ReaderOptions): Promise<EventReader> {
    const consumer = options.kafka.consumer({ groupId: options.groupId, readUncommitted: false });
    const dlq = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await Promise.all([consumer.connect(), dlq.connect()]);
    await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? true });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        let decoded;
        try {
          decoded = await options.codec.decode(message.value);
        } catch (e) {
          // Only the message's own faults are dead letters; anything else (registry down) is
          // rethrown, so the offset is not committed and the message is read again later.
          if (!(e instanceof DecodeError)) throw e;
          const letter = deadLetterFor({ topic, partition, consumerGroup: options.groupId }, message, e);
          await dlq.send({
            topic: physicalTopic(DEAD_LETTER_TOPIC, options.topicPrefix),
            messages: [await deadLetterMessage(options.codec, letter)],
          });
          options.onDeadLetter?.(letter);
          return;
        }
        await options.handle({
          type: decoded.type,
          value: decoded.value,
          schemaId: decoded.schemaId,
          topic,
          partition,
          offset: message.offset,
          key: message.key,
          headers: message.headers ?? {},
        });
      },
    });
    return new EventReader(consumer, dlq);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.dlq.disconnect();
  }
}
