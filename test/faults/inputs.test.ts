/**
 * Fault injection, inputs: poison messages in every input topic, and a gateway flooded past its
 * rate limit, each in the middle of a workload. Runs through `npm run test:faults` only.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { Auth } from "../../gateway/auth.js";
import { TIER_TOPICS } from "../../processors/hierarchy.js";
import { PROJECTED_TOPICS } from "../../projections/run.js";
import { physicalTopic } from "../../schemas/catalog.js";
import { DAG, faultRound, Platform, SKIP } from "./support.js";

/** Requests per second per token the gateway under test allows (bursts of twice that). */
const RATE = 20;

/** Every topic a processor or a read model reads. */
const INPUT_TOPICS = [
  ...new Set([...Object.values(TIER_TOPICS).flatMap((t) => t.inputs), ...Object.values(PROJECTED_TOPICS).flat()]),
].sort();

/** Three ways a record can be unreadable: not the wire format, an unknown schema id, a body that does not decode. */
function poisonValues(n: number): Buffer[] {
  const text = Buffer.from(`poison ${n}: not a Polity message`);
  const unknownId = Buffer.concat([Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0]), Buffer.from("xyz")]);
  return [text, unknownId];
}

describe("faults: bad inputs mid-run", { skip: SKIP }, () => {
  let p: Platform;
  before(async () => {
    p = await Platform.start("inputs", { gateway: { perSecond: RATE } });
  });
  after(async () => {
    await p?.stop();
  });

  it("poison messages in every input topic", async () => {
    await faultRound(p, {
      fault: `poison messages (${INPUT_TOPICS.length} input topics)`,
      poisons: true,
      async inject() {
        const producer = p.kafka.producer();
        await producer.connect();
        try {
          let n = 0;
          for (const logical of INPUT_TOPICS) {
            const topic = physicalTopic(logical, p.prefix);
            for (const value of poisonValues(n++)) {
              // Partition 0 holds real events of the workload on every topic; the poison lands among them.
              const [meta] = await producer.send({ topic, messages: [{ key: `poison-${n}`, value, partition: 0 }] });
              p.poisons.push({ topic, partition: meta!.partition, offset: meta!.baseOffset!, value });
            }
          }
        } finally {
          await producer.disconnect();
        }
      },
      extra: () => ({ inputTopics: INPUT_TOPICS }),
    });
  });

  it("a gateway flooded past its rate limit", async () => {
    const gateway = p.procs.get("gateway")!.url!;
    const auth = new Auth(p.jwtSecret);
    const flooder = await auth.mint({ subject: "flooder", role: "operator", tenantId: "acme" });
    const submitter = await auth.mint({ subject: "submitter", role: "operator", tenantId: "acme" });
    const get = (token: string) =>
      fetch(`${gateway}/api/v1/health`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      });
    const statuses = new Map<number, number>();
    let floodMs = 0;
    let servedAgainMs = -1;
    await faultRound(p, {
      fault: `gateway flood (${RATE}/s limit)`,
      // The workload goes through the gateway itself, with a token of its own.
      async submit(i) {
        const res = await fetch(`${gateway}/api/v1/goals`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${submitter}` },
          body: JSON.stringify({
            title: `flood ${i}`,
            tasks: DAG.map((t) => ({
              id: t.id,
              title: t.title,
              domain: t.domain,
              specialization: t.specialization,
              dependsOn: t.dependsOn,
            })),
          }),
        });
        const body = (await res.json()) as { aggregateId?: string };
        assert.equal(res.status, 202, JSON.stringify(body));
        return body.aggregateId!;
      },
      async inject() {
        // 2 000 requests, 50 at a time, from one token: far past RATE per second.
        const t0 = Date.now();
        let next = 0;
        const results: number[] = [];
        // Meanwhile, another caller is still served.
        const other = (async () => {
          const seen: number[] = [];
          while (next < 2_000) {
            seen.push(await get(submitter));
            await sleep(200);
          }
          return seen;
        })();
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            while (next < 2_000) {
              next++;
              results.push(await get(flooder).catch(() => 0));
            }
          }),
        );
        floodMs = Date.now() - t0;
        for (const s of results) statuses.set(s, (statuses.get(s) ?? 0) + 1);
        const otherStatuses = await other;
        // Correctness of the limit, not speed: what the bucket allows in that time, plus its burst.
        const allowed = 2 * RATE + Math.ceil((floodMs / 1000) * RATE) + 1;
        assert.ok((statuses.get(429) ?? 0) > 0, `the flood was refused: ${JSON.stringify([...statuses])}`);
        assert.ok(
          (statuses.get(200) ?? 0) <= allowed,
          `at most ${allowed} flood requests served in ${floodMs} ms: ${JSON.stringify([...statuses])}`,
        );
        assert.deepEqual([...new Set([...statuses.keys()])].sort(), [200, 429], "only 200 and 429 answers");
        assert.ok(
          otherStatuses.length > 0 && otherStatuses.every((s) => s === 200),
          `another token is served: ${otherStatuses.join(",")}`,
        );
        // The flooder is served again once its bucket refills.
        const end = Date.now();
        while ((await get(flooder)) !== 200) {
          assert.ok(Date.now() - end < 10_000, "the flooding token is served again within 10 s");
          await sleep(50);
        }
        servedAgainMs = Date.now() - end;
      },
      extra: () => ({ floodMs, floodStatuses: Object.fromEntries(statuses), flooderServedAgainMs: servedAgainMs }),
    });
  });
});
