/**
 * The gateway's live feed (GraphQL subscriptions, the dashboard) runs one consumer per instance.
 * kafkajs does not restart a consumer after an error it calls not retriable (in CI after a broker
 * restart: "Failed to find group coordinator"); the subscriptions then stood still for good while
 * the gateway kept answering. The feed now starts a new consumer from the offsets it delivered to:
 * subscribers miss nothing and get nothing twice.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import { LiveFeed, type LiveEvent } from "../../gateway/live.js";
import { ensureTopics, registerSchemas } from "../../producers/admin.js";
import { EventWriter } from "../../producers/writer.js";
import { Codec } from "../../schemas/codec.js";
import { eventually } from "../support/eventually.js";
import { removePrefix } from "../support/hierarchy.js";
import { kafka, urls } from "../support/infra.js";
import { sampleMessage } from "../support/messages.js";

describe("gateway live feed", () => {
  const k = kafka("live-feed-test");
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const prefix = `t-live-${randomUUID().slice(0, 8)}.`;
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    await removePrefix(k, prefix);
  });

  it("carries on with a new consumer when kafkajs gives up on its own, delivering each event once", async () => {
    await ensureTopics(k, prefix);
    await registerSchemas(codec);
    const writer = await EventWriter.connect(k, codec, { topicPrefix: prefix });
    cleanup.push(() => writer.disconnect());
    const tenant = `tenant-${randomUUID().slice(0, 8)}`;
    const tenantOf = (value: unknown) => (value as { envelope: { tenantId: string } }).envelope.tenantId;
    // The feed's codec fails once, for the fifth event of the tenant, with an error kafkajs will not
    // retry (a stand-in for the coordinator error above), from inside the consumer's batch.
    let decoded = 0;
    let thrown = 0;
    const failingOnce = new Proxy(codec, {
      get(target, prop, receiver) {
        if (prop !== "decode") return Reflect.get(target, prop, receiver) as unknown;
        return async (buffer: Buffer) => {
          const d = await target.decode(buffer);
          if (tenantOf(d.value) === tenant && ++decoded === 5 && thrown === 0) {
            thrown++;
            throw Object.assign(new Error("injected: a failure kafkajs will not retry"), { retriable: false });
          }
          return d;
        };
      },
    }) as Codec;
    const lines: string[] = [];
    const feed = new LiveFeed(k, failingOnce, prefix, undefined, (line) => lines.push(line));
    cleanup.push(() => feed.stop());
    await feed.start();
    await feed.ready;

    const ours = (e: LiveEvent) => tenantOf(e.event.value) === tenant;
    const all = feed.subscribe(ours);
    const got: string[] = [];
    void (async () => {
      for await (const e of all) got.push((e.event.value as { envelope: { eventId: string } }).envelope.eventId);
    })();
    // A subscription whose filter throws ends with that error; the others go on.
    const broken = feed.subscribe((e) => {
      if (ours(e)) throw new Error("a filter bug");
      return false;
    });
    const brokenEnd = broken.next().then(
      () => "no error",
      (e: Error) => e.message,
    );

    const sent = await writer.send(Array.from({ length: 12 }, () => sampleMessage(codec, "TaskCompleted", tenant)));
    const ids = sent.map((s) => s.envelope.eventId);
    await eventually(
      "every event written, delivered",
      async () => got.length,
      (n) => n >= ids.length,
    );
    assert.equal(thrown, 1, "the injected failure was thrown");
    assert.equal(await brokenEnd, "subscription ended: its filter failed (a filter bug)");
    assert.ok(
      lines.some((l) => l.includes("kafkajs will not restart it; starting a new one")),
      `the feed said it replaced its consumer:\n${lines.join("\n")}`,
    );
    // Later events come too, and nothing came twice.
    const more = await writer.send([sampleMessage(codec, "TaskCompleted", tenant)]);
    ids.push(more[0]!.envelope.eventId);
    await eventually(
      "the event written after",
      async () => got.length,
      (n) => n >= ids.length,
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual([...got].sort(), [...ids].sort());
  });
});
