/** What smoke and integration tests share: the resolved URLs and clients for the real servers. */
import { randomUUID } from "node:crypto";
import type { Consumer, EachMessagePayload, Kafka } from "kafkajs";
import { PolityKafka } from "../../lib/kafka.js";
import { requireUrls } from "../../lib/config.js";

export const urls = requireUrls();

export function kafka(clientId = "polity-test"): Kafka {
  // kafkajs logs retriable broker answers ("coordinator loading") at ERROR and retries them;
  // a real failure still rejects the call under test, so its own log is silenced.
  // Security settings (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*) come from the environment.
  return new PolityKafka(urls.kafkaBrokers, clientId, { quiet: true });
}

/** A name no earlier run used, so tests never read each other's data. */
export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export async function createTopic(k: Kafka, topic: string, numPartitions = 1): Promise<void> {
  const admin = k.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Reads `topic` from the beginning until `done` says enough, or fails after `timeoutMs`
 * naming what it had collected.
 */
export async function readUntil(
  consumer: Consumer,
  topic: string,
  done: (seen: EachMessagePayload["message"][]) => boolean,
  timeoutMs = 20_000,
): Promise<EachMessagePayload["message"][]> {
  const seen: EachMessagePayload["message"][] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `read ${seen.length} message(s) from ${topic} in ${timeoutMs} ms without reaching the end condition`,
            ),
          ),
        timeoutMs,
      );
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message);
          if (done(seen)) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}
