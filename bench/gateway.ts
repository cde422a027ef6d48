/**
 * `npm run bench:gateway [-- --seconds 10 --connections 10 --rounds 3 --goals 20]`
 *
 * 1. Query throughput: the GraphQL goal query `{ goal(id) { id status title progress tasks { taskId
 *    status } } }` through the whole gateway (JWT check, rate limiter, yoga parse/validate/execute,
 *    DataLoaders), next to a bare express route on the same MongoDB that does the same two reads
 *    (the goal, then its tasks) and returns the same JSON. autocannon drives both, in alternating
 *    rounds so a noisy neighbour slows both alike; each figure is the median of the rounds.
 * 2. Subscription delivery latency: for fresh goals, a goalProgress subscription over SSE; for every
 *    event, the time from the broker appending it (the record timestamp, `loggedAt`) to the client
 *    parsing it. Same machine, same clock.
 *
 * Runs on an isolated deployment (own topic prefix, schema and database), removed afterwards.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import autocannon from "autocannon";
import express from "express";
import { repoRoot, urlsToEnv, type InfraUrls } from "../lib/config.js";
import { CliExit, defineCommand, parseCommandArgs } from "../lib/cli-args.js";
import type { GatewayRig } from "../test/support/gateway.js";

interface Round {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

export const GATEWAY_BENCH_COMMAND = defineCommand({
  name: "bench gateway",
  summary: "the gateway's goal query next to a bare express route, and subscription delivery latency",
  options: {
    seconds: { type: "string", value: "S", default: "10", help: "seconds per autocannon round" },
    connections: { type: "string", value: "C", default: "10", help: "connections" },
    rounds: { type: "string", value: "R", default: "3", help: "rounds behind every median" },
    goals: { type: "string", value: "G", default: "20", help: "goals run to have data to read" },
  },
});

function positive(name: string, text: string): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v <= 0) throw new CliExit(2, `--${name} needs a positive number, got ${text}`);
  return v;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function drive(opts: autocannon.Options): Promise<Round> {
  const r = await autocannon(opts);
  return {
    requestsPerSecond: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

const GOAL_QUERY = "query ($id: ID!) { goal(id: $id) { id status title progress tasks { taskId status } } }";

/**
 * The bare route: the same two MongoDB reads as the gateway's resolvers (through the same ReadSide
 * queries, so the filters are identical: FerretDB's speed depends on a filter's shape), the same
 * JSON out; no token check, no GraphQL.
 */
async function bareServer(rig: GatewayRig): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  app.use(express.json());
  app.post("/bare", async (req, res) => {
    const id = (req.body as { variables: { id: string } }).variables.id;
    const goal = (await rig.read.goal("acme", id)) as unknown as Record<string, unknown> | null;
    if (!goal) return res.json({ data: { goal: null } });
    const list = await rig.read.tasksOf("acme", id);
    res.json({
      data: {
        goal: {
          id: goal._id,
          status: goal.status,
          title: goal.title,
          progress: goal.progress,
          tasks: list.map((t) => ({ taskId: t.taskId, status: t.status })),
        },
      },
    });
  });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/bare`,
    close: () => new Promise((r) => server.close(() => r(undefined))),
  };
}

/** Latencies (ms) from broker append to client receipt for every event of one goal over SSE. */
async function subscriptionLatencies(rig: GatewayRig, token: string, goalId: string, submit: () => Promise<unknown>) {
  const controller = new AbortController();
  const pending = fetch(`${rig.url}/graphql`, {
    method: "POST",
    signal: controller.signal,
    headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: "subscription ($id: ID!) { goalProgress(goalId: $id) { type loggedAt replayed } }",
      variables: { id: goalId },
    }),
  });
  // The subscription waits up to 3 s for a goal it does not know yet (its answer, headers included,
  // comes once it does): submit while it waits.
  await new Promise((r) => setTimeout(r, 200));
  await submit();
  const res = await pending;
  if (!res.ok || !res.body) throw new Error(`subscription answered ${res.status}: ${await res.text()}`);
  const latencies: number[] = [];
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`goal ${goalId} did not complete over SSE in 120 s`);
    const { value, done } = await reader.read();
    if (done) break;
    const now = Date.now();
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5))
        .join("");
      if (!data) continue;
      const event = (
        JSON.parse(data) as { data?: { goalProgress?: { type: string; loggedAt: string; replayed: boolean } } }
      ).data?.goalProgress;
      // Replayed events were logged before the subscription; only live ones measure delivery.
      if (event && !event.replayed) latencies.push(now - Date.parse(event.loggedAt));
    }
    if (frameDone(buffer)) break;
  }
  controller.abort();
  return latencies;
}

const frameDone = (buffer: string) => buffer.includes("event: complete");

export async function runGatewayBench(urls: InfraUrls, args: string[] = []): Promise<number> {
  return (await gatewayBench(urls, args)).code;
}

export type GatewayResult = Awaited<ReturnType<typeof gatewayBench>>["result"];

/** Prints the table and returns the result; writes bench/results/gateway-<at>.json unless `write` is false. */
export async function gatewayBench(urls: InfraUrls, args: string[] = [], { write = true } = {}) {
  const { values } = parseCommandArgs(GATEWAY_BENCH_COMMAND, args);
  const seconds = positive("seconds", values.seconds);
  const connections = positive("connections", values.connections);
  const rounds = positive("rounds", values.rounds);
  const goals = positive("goals", values.goals);
  const started = Date.now();
  const say = (line: string) =>
    process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
  Object.assign(process.env, urlsToEnv(urls));
  const { gatewayRig } = await import("../test/support/gateway.js");
  const { TEN_TASK_DAG } = await import("../test/support/hierarchy.js");
  const { submitGoal } = await import("../producers/commands.js");

  say("starting an isolated deployment: hierarchy, read models, gateway");
  const rig = await gatewayRig("bench-gw", { rateLimitPerSecond: 1e9 });
  const bare = await bareServer(rig);
  try {
    const token = await rig.token("operator", "acme");
    say(`running ${goals} goals of ${TEN_TASK_DAG.length} tasks to have data to read`);
    const ids: string[] = [];
    for (let i = 0; i < goals; i++) {
      const { goalId } = await submitGoal(
        rig.d.writer,
        { tenantId: "acme", userId: "bench" },
        { title: `bench ${i}`, tasks: TEN_TASK_DAG },
      );
      ids.push(goalId);
    }
    for (const id of ids) await rig.d.watch.final(id, 120_000);
    const target = ids[0]!;
    for (;;) {
      const doc = await rig.db.collection("goals").findOne({ _id: target as never });
      const t = await rig.db.collection("tasks").countDocuments({ goalId: target, status: "COMPLETED" });
      if (doc?.status === "COMPLETED" && t === TEN_TASK_DAG.length) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const body = JSON.stringify({ query: GOAL_QUERY, variables: { id: target } });
    const [a, b] = await Promise.all([
      fetch(`${rig.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body,
      }).then((r) => r.text()),
      fetch(bare.url, { method: "POST", headers: { "content-type": "application/json" }, body }).then((r) => r.text()),
    ]);
    if (a !== b) throw new Error(`the gateway and the bare route answer differently:\n${a}\n${b}`);
    say(
      `both answer the same ${a.length}-byte JSON; ${rounds} rounds of ${seconds} s x ${connections} connections each`,
    );

    const gw: Round[] = [];
    const bareRounds: Round[] = [];
    for (let r = 1; r <= rounds; r++) {
      const common = { connections, duration: seconds, method: "POST" as const, body };
      const runGateway = async () => {
        say(`round ${r}/${rounds}: gateway`);
        gw.push(
          await drive({
            ...common,
            url: `${rig.url}/graphql`,
            headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          }),
        );
      };
      const runBare = async () => {
        say(`round ${r}/${rounds}: bare route`);
        bareRounds.push(await drive({ ...common, url: bare.url, headers: { "content-type": "application/json" } }));
      };
      // Alternate which goes first, so neither always runs in the other's wake.
      if (r % 2 === 1) {
        await runGateway();
        await runBare();
      } else {
        await runBare();
        await runGateway();
      }
    }

    say("subscription latency: 5 goals over SSE");
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const goalId = `bench-sub-${Date.now()}-${i}`;
      const submit = () =>
        submitGoal(
          rig.d.writer,
          { tenantId: "acme", userId: "bench" },
          { goalId, title: `sub ${i}`, tasks: TEN_TASK_DAG },
        );
      latencies.push(...(await subscriptionLatencies(rig, token, goalId, submit)));
    }

    const summary = (xs: Round[]) => ({
      requestsPerSecond: median(xs.map((x) => x.requestsPerSecond)),
      min: Math.min(...xs.map((x) => x.requestsPerSecond)),
      max: Math.max(...xs.map((x) => x.requestsPerSecond)),
      p99Ms: median(xs.map((x) => x.p99Ms)),
      p50Ms: median(xs.map((x) => x.p50Ms)),
      errors: xs.reduce((n, x) => n + x.errors + x.non2xx, 0),
      rounds: xs,
    });
    const g = summary(gw);
    const bb = summary(bareRounds);
    const ratio = Math.round((g.requestsPerSecond / bb.requestsPerSecond) * 1000) / 1000;
    const at = new Date().toISOString();
    const result = {
      at,
      command: `npm run bench:gateway${args.length ? ` -- ${args.join(" ")}` : ""}`,
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
      loadAverage: os.loadavg(),
      query: GOAL_QUERY,
      settings: { seconds, connections, rounds, goals },
      gateway: g,
      bare: bb,
      ratio,
      target: 0.6,
      subscription: {
        events: latencies.length,
        p50Ms: latencies.length ? pct(latencies, 50) : null,
        p99Ms: latencies.length ? pct(latencies, 99) : null,
        maxMs: latencies.length ? Math.max(...latencies) : null,
      },
    };
    const n = (x: number) => Math.round(x).toLocaleString("en");
    console.log(
      [
        "| measure | value |",
        "| --- | --- |",
        `| gateway goal query: req/s (median of ${rounds}; min-max) | ${n(g.requestsPerSecond)} (${n(g.min)}-${n(g.max)}) |`,
        `| gateway p50 / p99 | ${g.p50Ms} / ${g.p99Ms} ms |`,
        `| bare express route, same reads: req/s | ${n(bb.requestsPerSecond)} (${n(bb.min)}-${n(bb.max)}) |`,
        `| bare p50 / p99 | ${bb.p50Ms} / ${bb.p99Ms} ms |`,
        `| **ratio gateway / bare (target >= 0.6)** | **${ratio.toFixed(3)}** |`,
        `| errors or non-2xx (gateway, bare) | ${g.errors}, ${bb.errors} |`,
        `| subscription delivery, broker append to client: p50 / p99 (${latencies.length} events) | ${result.subscription.p50Ms} / ${result.subscription.p99Ms} ms |`,
      ].join("\n"),
    );
    if (write) {
      const dir = path.join(repoRoot, "bench", "results");
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `gateway-${at.replace(/[:.]/g, "-")}.json`);
      fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`\nwritten to ${path.relative(repoRoot, file)}`);
    }
    return { code: 0, result };
  } finally {
    await bare.close();
    await rig.stop();
  }
}
