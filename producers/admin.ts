/**
 * The idempotent admin step: creates every topic of the catalog with its partitions and retention,
 * and registers every message schema under its TopicRecordNameStrategy subject with its
 * compatibility level. Running it twice changes nothing.
 */
import kafkajs, { type Kafka } from "kafkajs";
import { TOPICS, physicalTopic, topicFor, type TopicSpec } from "../schemas/catalog.js";
import type { Codec } from "../schemas/codec.js";
import type { Compatibility } from "../schemas/registry-client.js";

/**
 * Consumers replay the whole log, so a new schema must read every older version, not just the
 * last: BACKWARD_TRANSITIVE for every subject.
 */
export const COMPATIBILITY: Compatibility = "BACKWARD_TRANSITIVE";

/**
 * Creates the catalog's missing topics (with the prefix) and returns their names. Tried again when
 * the broker answers UNKNOWN_TOPIC_OR_PARTITION while topics are being created next to ours (kafkajs's
 * createTopics waits out only LEADER_NOT_AVAILABLE): a retry finds what already exists and goes on.
 */
export async function ensureTopics(kafka: Kafka, prefix = ""): Promise<string[]> {
  const created: string[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      created.push(...(await createMissingTopics(kafka, prefix)));
      return created;
    } catch (e) {
      const transient = /UNKNOWN_TOPIC_OR_PARTITION|does not host this topic-partition|LEADER_NOT_AVAILABLE/i.test(
        `${(e as { type?: string }).type ?? ""} ${(e as Error).message}`,
      );
      if (!transient || attempt >= 10) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** The topic configuration the catalog asks for. */
function topicConfig(t: TopicSpec): { name: string; value: string }[] {
  return [
    { name: "cleanup.policy", value: t.cleanupPolicy },
    { name: "retention.ms", value: String(t.retentionMs) },
    ...(t.maxMessageBytes ? [{ name: "max.message.bytes", value: String(t.maxMessageBytes) }] : []),
  ];
}

async function createMissingTopics(kafka: Kafka, prefix: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const all: TopicSpec[] = TOPICS.map((t) => ({ ...t, name: physicalTopic(t.name, prefix) }));
    const missing = all.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({ topic: t.name, numPartitions: t.partitions, configEntries: topicConfig(t) })),
      });
    }
    // Topics made before a setting joined the catalog get it now (setting a value again changes nothing).
    const older = all.filter((t) => existing.has(t.name) && t.maxMessageBytes);
    if (older.length > 0) {
      await admin.alterConfigs({
        validateOnly: false,
        resources: older.map((t) => ({
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: t.name,
          configEntries: topicConfig(t),
        })),
      });
    }
    return missing.map((t) => t.name);
  } finally {
    await admin.disconnect();
  }
}

export async function registerSchemas(codec: Codec): Promise<{ subject: string; id: number }[]> {
  const out: { subject: string; id: number }[] = [];
  for (const type of codec.schemas.messages.keys()) {
    topicFor(type); // a schema with no topic is a catalog mistake: fail loudly
    const subject = codec.subjectOf(type);
    const id = await codec.schemaId(type);
    if ((await codec.registry.compatibility(subject)) !== COMPATIBILITY) {
      await codec.registry.setCompatibility(subject, COMPATIBILITY);
    }
    out.push({ subject, id });
  }
  return out;
}
