/**
 * The one way Polity processes build a kafkajs client. kafkajs logs answers it retries itself
 * (a coordinator still loading, a transaction still completing) at ERROR; those are dropped here so
 * that what remains in the log is worth reading. Failures still surface as rejected calls.
 */
import { Kafka, logLevel, type Admin, type logCreator } from "kafkajs";
import { assertReadCommittedFilter } from "./kafka-read-committed.js";

const RETRIED_BY_CALLER =
  /CONCURRENT_TRANSACTIONS|concurrent operation on the same transaction|coordinator is loading|COORDINATOR_LOAD_IN_PROGRESS|The group is rebalancing|REBALANCE_IN_PROGRESS|NOT_COORDINATOR|This is not the correct coordinator/i;

/** kafkajs log lines, minus the answers it (or its caller) retries; for clients built elsewhere (benchmarks). */
export const quietLog: logCreator =
  () =>
  ({ label, log }) => {
    const error = (log as { error?: unknown }).error;
    const text = `${log.message ?? ""}${error ? `: ${String(error)}` : ""}`;
    if (!RETRIED_BY_CALLER.test(text)) console.error(`[kafkajs ${label}] ${text}`);
  };

export function kafkaClient(brokers: string[], clientId: string, quiet = false): Kafka {
  assertReadCommittedFilter();
  return new Kafka({ clientId, brokers, logLevel: quiet ? logLevel.NOTHING : logLevel.ERROR, logCreator: quietLog });
}

/**
 * A topic's offsets per partition, asked again while the broker answers with a retriable error:
 * right after a topic is created (or a broker restarts) ListOffsets can answer
 * NOT_LEADER_FOR_PARTITION until the leader's metadata has spread, and kafkajs's admin does not
 * retry that itself (seen in CI as a feed failing to start on a topic made a moment before).
 */
export async function topicOffsets(
  admin: Admin,
  topic: string,
  tries = 10,
): Promise<{ partition: number; offset: string; high: string; low: string }[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (e) {
      if (!(e as { retriable?: boolean }).retriable || attempt >= tries) throw e;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}
