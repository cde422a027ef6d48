/**
 * The policy engine survives SIGKILLs: it runs in a child process (processors/main.ts --tiers
 * policy) while a stream of DefinePolicy/AmendPolicy commands arrives, is killed three times
 * (before it wrote anything, after it wrote part of the stream, and once more mid-stream) and
 * restarted each time on the same topics. Every command is answered exactly once, with the answer
 * an engine that never crashed would give: versions 1..n per policy with no gap or repeat, and the
 * refusals (duplicate definitions, stale amendments, bad rules) once each.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, it } from "node:test";
import { amendPolicy, definePolicy } from "../../producers/commands.js";
import type { SentMessage } from "../../producers/writer.js";
import { physicalTopic } from "../../schemas/catalog.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { spawnTiers, topologyFile, type TierProcess } from "../support/child.js";
import { deployment, testTopology } from "../support/hierarchy.js";
import { LogWatcher } from "../support/watch.js";

const admin = { tenantId: "acme", userId: "root" };
const POLICIES = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One command of the stream and the answer an engine that never crashed gives it. */
interface Planned {
  policyId: string;
  send: () => Promise<SentMessage>;
  /** The version it writes, or "refused" (a PolicyEvaluated DENY). */
  expect: number | "refused";
  sent?: SentMessage;
}

const rules = (term: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ principle: `no ${term}`, forbiddenTerms: [term], ...extra });

/**
 * Rounds of commands: round 0 defines every policy; in each later round a policy gets its next
 * amendment (policy i is amended i % 5 times, each with the version it saw), and some get a
 * refused command instead of, or besides, an amendment: a second definition, an amendment based
 * on version 1 once the policy is past it, rules that do not parse.
 */
function plan(writer: Parameters<typeof definePolicy>[0]): Planned[][] {
  const rounds: Planned[][] = [];
  const at = (r: number) => (rounds[r] ??= []);
  for (let i = 0; i < POLICIES; i++) {
    const policyId = `p-${String(i).padStart(2, "0")}`;
    const define = (name: string, r: string) =>
      definePolicy(writer, admin, {
        policyId,
        name,
        category: "CONSTITUTIONAL",
        description: `policy ${i}`,
        rules: r,
        appliesToTiers: [],
        domains: [],
        precedence: i,
        effectiveFrom: null,
      });
    const amend = (expectedVersion: number, r: string) =>
      amendPolicy(writer, admin, {
        policyId,
        expectedVersion,
        rules: r,
        description: null,
        appliesToTiers: null,
        domains: null,
        precedence: null,
        rationale: `amendment based on v${expectedVersion}`,
        effectiveFrom: null,
      });
    let version = 0;
    let round = 0;
    const push = (send: () => Promise<SentMessage>, expect: number | "refused") =>
      at(round++).push({ policyId, send, expect });
    push(() => define(`Policy ${i}`, rules(`w${i}`)), ++version);
    if (i % 6 === 0) push(() => define(`Policy ${i} again`, rules(`x${i}`)), "refused");
    for (let k = 0; k < i % 5; k++) {
      const seen = version;
      push(() => amend(seen, rules(`w${i}-${seen + 1}`)), ++version);
      if (i % 7 === 2 && version >= 3) push(() => amend(1, rules(`late${i}`)), "refused");
    }
    if (i % 9 === 4) push(() => amend(version, rules(`bad${i}`, { maxPriority: 11 })), "refused");
    if (i === POLICIES - 1) push(() => amend(version, "not json"), "refused");
  }
  return rounds;
}

describe("policy engine crash", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  it("No event is lost or doubled across a crash of the policy engine (SIGKILL and restart)", async (t) => {
    const topology = testTopology();
    const file = topologyFile(topology);
    cleanup.push(async () => fs.rmSync(path.dirname(file), { recursive: true, force: true }));
    const d = await deployment(topology, "policy-crash", []);
    cleanup.push(() => d.stop());
    const log = await LogWatcher.start(d.kafka, d.codec, d.prefix, [
      "polity.policies.events",
      "polity.governance.events",
    ]);
    cleanup.push(() => log.stop());
    let engine: TierProcess = await spawnTiers(["policy"], d.prefix, file);
    cleanup.push(() => engine.kill());

    const rounds = plan(d.writer);
    const commands = rounds.flat();
    const events = () => log.seen.map((s) => s.event);
    /** The command ids answered so far, with every answer of each. */
    const answers = () => {
      const byCommand = new Map<string, PolityEvent[]>();
      const add = (id: string | null, e: PolityEvent) => {
        if (id) byCommand.set(id, [...(byCommand.get(id) ?? []), e]);
      };
      for (const e of events()) {
        if (e.type === "PolicyDefined" || e.type === "PolicyAmended") add(e.value.commandId, e);
        else if (
          e.type === "PolicyEvaluated" &&
          (e.value.subject.type === "DefinePolicy" || e.value.subject.type === "AmendPolicy")
        )
          add(e.value.envelope.causationId, e);
      }
      return byCommand;
    };
    const answered = () => answers().size;
    const send = async (list: Planned[], paceMs = 0) => {
      for (const c of list) {
        c.sent = await c.send();
        if (paceMs > 0) await sleep(paceMs);
      }
    };
    const kills: string[] = [];
    const crash = async (when: string) => {
      await engine.kill();
      // What the killed engine committed, once the watcher has read it.
      await sleep(1_000);
      kills.push(`${when}: killed with ${answered()}/${commands.length} answers seen`);
    };

    // 1. Killed at once after the first commands: before it wrote anything for them.
    await send(rounds[0]!.slice(0, 5));
    await crash("before output");
    // The rest of the definitions and the first amendments wait in the log while it is down.
    await send([...rounds[0]!.slice(5), ...rounds[1]!]);
    engine = await spawnTiers(["policy"], d.prefix, file);
    await log.until("the first answers after the restart", () => answered() >= 10, 60_000);

    // 2. The rest of the stream arrives while it works; killed after part of it was answered.
    const rest = rounds.slice(2).flat();
    const sender = send(rest, 15);
    await log.until("part of the stream answered", () => answered() >= 45 && answered(), 60_000);
    await crash("after output");
    engine = await spawnTiers(["policy"], d.prefix, file);

    // 3. Killed once more mid-stream, as soon as it answers again, and restarted.
    const before = answered();
    await log.until("answers after the second restart", () => answered() > before + 5 && answered(), 60_000);
    await crash("mid-stream");
    await sender;
    engine = await spawnTiers(["policy"], d.prefix, file);

    await log.until(
      `answers to all ${commands.length} commands`,
      () => answered() >= commands.length && answered(),
      90_000,
    );
    // The engine's offsets reach the end of the commands: nothing is left to decide (outputs and
    // offsets commit together), then any late duplicate would have been read by now.
    const group = `${d.prefix}polity-policy`;
    const topic = physicalTopic("polity.policies.commands", d.prefix);
    const kadmin = d.kafka.admin();
    await kadmin.connect();
    try {
      const ends = await kadmin.fetchTopicOffsets(topic);
      for (let tries = 0; ; tries++) {
        const [committed] = await kadmin.fetchOffsets({ groupId: group, topics: [topic] });
        const lag = ends.filter(
          (e) =>
            BigInt(committed!.partitions.find((p) => p.partition === e.partition)?.offset ?? "-1") < BigInt(e.high),
        );
        if (lag.length === 0) break;
        assert.ok(tries < 100, `the engine's offsets reach the end of ${topic}: ${JSON.stringify(committed)}`);
        await sleep(200);
      }
    } finally {
      await kadmin.disconnect();
    }
    await sleep(1_500);
    t.diagnostic(kills.join("; "));
    assert.equal(kills.length, 3);

    // Every command answered exactly once, as planned.
    const byCommand = answers();
    const wrong: string[] = [];
    for (const c of commands) {
      const got = byCommand.get(c.sent!.envelope.eventId) ?? [];
      const said = got.map((e) =>
        e.type === "PolicyDefined" || e.type === "PolicyAmended" ? e.value.version : "refused",
      );
      if (said.length !== 1 || said[0] !== c.expect)
        wrong.push(
          `${c.sent!.type} ${c.policyId} (${c.sent!.envelope.eventId}): expected [${c.expect}], got [${said}]`,
        );
    }
    assert.deepEqual(wrong, [], "each command answered exactly once, as planned");
    assert.equal(byCommand.size, commands.length, "no answer to a command that was not sent");

    // Versions 1..n per policy, in log order, each once.
    const versions = new Map<string, number[]>();
    for (const e of events())
      if (e.type === "PolicyDefined" || e.type === "PolicyAmended")
        versions.set(e.value.policyId, [...(versions.get(e.value.policyId) ?? []), e.value.version]);
    assert.equal(versions.size, POLICIES);
    for (let i = 0; i < POLICIES; i++) {
      const id = `p-${String(i).padStart(2, "0")}`;
      const n = commands.filter((c) => c.policyId === id && c.expect !== "refused").length;
      assert.deepEqual(
        versions.get(id),
        Array.from({ length: n }, (_, k) => k + 1),
        `versions of ${id}`,
      );
    }
    const accepted = events().filter((e) => e.type === "PolicyDefined" || e.type === "PolicyAmended");
    const refused = events().filter((e) => e.type === "PolicyEvaluated");
    assert.equal(accepted.length, commands.filter((c) => c.expect !== "refused").length);
    assert.equal(refused.length, commands.filter((c) => c.expect === "refused").length);
    t.diagnostic(`${commands.length} commands: ${accepted.length} versions, ${refused.length} refusals`);
    await engine.stop();
  });
});
