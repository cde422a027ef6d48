/**
 * The idempotent admin step: creates every topic of the catalog with its partitions and retention,
 * and registers every message schema under its TopicRecordNameStrategy subject with its
 * compatibility level. Running it twice changes nothing.
 */
import kafkajs, { type Admin, type Kafka } from "kafkajs";
import { ConfigError, loadConfig } from "../lib/config.js";
import { TOPICS, physicalTopic, topicFor, type TopicSpec } from "../schemas/catalog.js";
import type { Codec } from "../schemas/codec.js";
import type { Compatibility } from "../schemas/registry-client.js";

/**
 * Consumers replay the whole log, so a new schema must read every older version, not just the
 * last: BACKWARD_TRANSITIVE for every subject.
 */
export const COMPATIBILITY: Compatibility = "BACKWARD_TRANSITIVE";

/** How topics are replicated; null leaves it to the broker's default. */
export interface TopicReplication {
  replicationFactor: number | null;
  minInsyncReplicas: number | null;
}

/** POLITY_TOPIC_REPLICATION_FACTOR and POLITY_TOPIC_MIN_ISR as lib/config.ts resolves them. */
export function topicReplication(config = loadConfig()): TopicReplication {
  return { replicationFactor: config.topicReplicationFactor, minInsyncReplicas: config.topicMinInsyncReplicas };
}

/**
 * Creates the catalog's missing topics (with the prefix) and returns their names. Tried again when
 * the broker answers UNKNOWN_TOPIC_OR_PARTITION while topics are being created next to ours (kafkajs's
 * createTopics waits out only LEADER_NOT_AVAILABLE): a retry finds what already exists and goes on.
 * Topics get the configured replication factor and min.insync.replicas, checked first against the
 * brokers the cluster reports; topics that exist keep their replication factor.
 */
export async function ensureTopics(
  kafka: Kafka,
  prefix = "",
  replication: TopicReplication = topicReplication(),
): Promise<string[]> {
  const created: string[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      created.push(...(await createMissingTopics(kafka, prefix, replication)));
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

/** The topic configuration the catalog (and min.insync.replicas, when set) asks for. */
function topicConfig(t: TopicSpec, replication: TopicReplication): { name: string; value: string }[] {
  return [
    { name: "cleanup.policy", value: t.cleanupPolicy },
    { name: "retention.ms", value: String(t.retentionMs) },
    ...(t.maxMessageBytes ? [{ name: "max.message.bytes", value: String(t.maxMessageBytes) }] : []),
    ...(replication.minInsyncReplicas !== null
      ? [{ name: "min.insync.replicas", value: String(replication.minInsyncReplicas) }]
      : []),
  ];
}

/** How long a cluster that lists too few brokers is given for the others to register. */
const REGISTER_WAIT_MS = 30_000;

/**
 * Refuses a replication factor (or min.insync.replicas) above the brokers the cluster reports,
 * naming both numbers, before Kafka answers a bare INVALID_REPLICATION_FACTOR. A cluster started a
 * moment ago lists its brokers as they register (its nodes answer before they all have: seen in
 * the cluster fault file's set-up), so too few are asked for again every half second for `waitMs`.
 */
export async function checkReplication(
  admin: Admin,
  replication: TopicReplication,
  waitMs = REGISTER_WAIT_MS,
): Promise<void> {
  const { replicationFactor: rf, minInsyncReplicas: isr } = replication;
  if (rf === null && isr === null) return;
  const needed = Math.max(rf ?? 0, isr ?? 0);
  const deadline = Date.now() + waitMs;
  let { brokers } = await admin.describeCluster();
  while (brokers.length < needed && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    ({ brokers } = await admin.describeCluster());
  }
  const listed = brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`).join(", ");
  const waited = waitMs > 0 ? `, after ${Math.round(waitMs / 1000)} s for more to register` : "";
  const fix = `lower it or add brokers (the cluster lists only brokers that are up${waited})`;
  if (rf !== null && rf > brokers.length)
    throw new ConfigError(
      `POLITY_TOPIC_REPLICATION_FACTOR=${rf} is more than the ${brokers.length} broker(s) of the cluster (${listed}); ${fix}.`,
    );
  if (isr !== null && isr > brokers.length)
    throw new ConfigError(
      `POLITY_TOPIC_MIN_ISR=${isr} is more than the ${brokers.length} broker(s) of the cluster (${listed}): no write could be acknowledged; ${fix}.`,
    );
}

async function createMissingTopics(kafka: Kafka, prefix: string, replication: TopicReplication): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const all: TopicSpec[] = TOPICS.map((t) => ({ ...t, name: physicalTopic(t.name, prefix) }));
    const missing = all.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      await checkReplication(admin, replication);
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.name,
          numPartitions: t.partitions,
          ...(replication.replicationFactor !== null ? { replicationFactor: replication.replicationFactor } : {}),
          configEntries: topicConfig(t, replication),
        })),
      });
    }
    // Topics made before a setting joined the catalog get it now (setting a value again changes nothing).
    const older = all.filter(
      (t) => existing.has(t.name) && (t.maxMessageBytes || replication.minInsyncReplicas !== null),
    );
    if (older.length > 0) {
      await admin.alterConfigs({
        validateOnly: false,
        resources: older.map((t) => ({
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: t.name,
          configEntries: topicConfig(t, replication),
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
