/**
 * The feeds every process keeps whole (agent directory, policy book) follow their topic with a
 * TopicFollower. kafkajs does not restart a consumer after an error it calls not retriable (in CI
 * after a broker restart: "Failed to find group coordinator"); the feed then stood still for good,
 * and a process whose consumers had all given up ended with exit code 0. The follower starts a new
 * consumer where the old one stopped: nothing skipped, nothing folded twice.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Producer } from "kafkajs";
import { TopicFollower } from "../../processors/host/follower.js";
import { eventually } from "../support/eventually.js";
import { createTopic, kafka, unique } from "../support/infra.js";

describe("TopicFollower", () => {
  const k = kafka("follower-test");
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  async function send(producer: Producer, topic: string, values: string[]): Promise<void> {
    await producer.send({
      topic,
      messages: values.map((value, i) => ({ key: `k${i % 3}`, value })),
    });
  }

  it("carries on with a new consumer when kafkajs gives up on its own, folding each record once", async () => {
    const topic = unique("follower");
    await createTopic(k, topic, 3);
    const producer = k.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    cleanup.push(() => producer.disconnect());
    const before = Array.from({ length: 30 }, (_, i) => `before-${i}`);
    await send(producer, topic, before);

    const folded: string[] = [];
    const lines: string[] = [];
    let thrown = 0;
    const follower = new TopicFollower(k, {
      topics: [topic],
      from: "beginning",
      groupId: unique("follower-group"),
      consumer: { maxWaitTimeInMs: 100 },
      log: (line) => lines.push(line),
      onMessage: async (_topic, _partition, message) => {
        const value = message.value!.toString();
        if (value === "before-17" && thrown === 0) {
          thrown++;
          throw Object.assign(new Error("injected: a failure kafkajs will not retry"), { retriable: false });
        }
        folded.push(value);
      },
    });
    cleanup.push(() => follower.stop());
    await follower.start("reading the test topic");

    assert.equal(thrown, 1, "the injected failure was thrown");
    assert.ok(
      lines.some((l) => l.includes("kafkajs will not restart it; starting a new one")),
      `the follower said it replaced its consumer:\n${lines.join("\n")}`,
    );
    assert.deepEqual([...folded].sort(), [...before].sort(), "every record before the start, each once");

    // The new consumer follows the topic live.
    const later = Array.from({ length: 6 }, (_, i) => `later-${i}`);
    await send(producer, topic, later);
    await eventually(
      "the records written after the start",
      async () => folded.length,
      (n) => n >= before.length + later.length,
    );
    assert.deepEqual([...folded].sort(), [...before, ...later].sort());
  });
});
