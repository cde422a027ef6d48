/**
 * The dashboard's browser benchmark (not a test: it measures, and says whether the targets hold).
 *
 *   node --import tsx test/ui/bench.ts [--goals 1000] [--loads 5] [--live-goals 5]
 *   (with the URL variables of the stack exported, as for the tests)
 *
 * 1. First paint of the overview with `--goals` goals in the read models (one-task goals run
 *    through the hierarchy, then projected): a fresh browser context opens /ui with a token link,
 *    `--loads` times; for each, Chromium's first-contentful-paint and the moment the portfolio table
 *    is in the page (both from navigation start), 4 s apart. Target: ≤ 1 s.
 * 2. A task's new state visible after its event is committed: `--live-goals` goals of ten tasks,
 *    each followed on its goal page; the page records when each task node shows a new state
 *    (MutationObserver), the benchmark reads each TaskStarted/TaskCompleted's broker append time
 *    (loggedAt) from its own goalProgress subscription; latency = shown − appended. Target: p99 ≤
 *    250 ms.
 *
 * Writes bench/results/ui-<timestamp>.json.
 */
import fs from "node:fs";
import path from "node:path";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { repoRoot } from "../../lib/config.js";
import { submitGoal } from "../../producers/commands.js";
import { launchBrowser, uiRig, watchedPage } from "./support.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const GOALS = arg("goals", 1000);
const LOADS = arg("loads", 5);
const LIVE_GOALS = arg("live-goals", 5);
const log = (line: string) => process.stderr.write(`[ui-bench] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
};

const rig = await uiRig("uibench");
const browser = await launchBrowser();
try {
  const token = await rig.token("operator", "acme", 3_600);
  const who = { tenantId: "acme", userId: "bench" };
  const count = async () =>
    (
      await rig.graphql<{ goals: { totalCount: number } }>(
        `{ goals(filter: { status: COMPLETED }, first: 1) { totalCount } }`,
        {},
        token,
      )
    ).goals.totalCount;

  // 1. Seed the read models.
  const seeded = Date.now();
  for (let i = 0; i < GOALS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, GOALS - i) }, (_, j) =>
        submitGoal(rig.d.writer, who, {
          title: `Seeded goal ${i + j + 1}`,
          tasks: [
            {
              id: "only",
              title: "Only task",
              description: null,
              domain: ["backend", "frontend", "testing"][(i + j) % 3]!,
              specialization: ["api", "react", "unit-test"][(i + j) % 3]!,
              phase: null,
              dependsOn: [],
              estimatedEffortMs: 5,
              priority: null,
              inputs: {},
              timeoutMs: null,
            },
          ],
        }),
      ),
    );
  }
  for (let n = await count(); n < GOALS; n = await count()) {
    log(`seeding: ${n}/${GOALS} goals completed in the read model`);
    await sleep(5_000);
  }
  log(`seeded ${GOALS} goals in ${Math.round((Date.now() - seeded) / 1000)} s`);

  // 2. First paint of the overview.
  const loads: { fcpMs: number; portfolioMs: number; graphqlMs: number[] }[] = [];
  for (let i = 0; i < LOADS; i++) {
    const w = await watchedPage(browser);
    // Plain text: a function here would be compiled by tsx with helpers the page does not have.
    await w.context.addInitScript({
      content: `new MutationObserver(function () {
        if (!window.portfolioAt && document.querySelector("[data-testid=goal-table]")) window.portfolioAt = performance.now();
      }).observe(document, { childList: true, subtree: true });`,
    });
    await w.page.goto(`${rig.url}/ui#token=${token}`);
    await w.page
      .waitForFunction(() => (window as never as { portfolioAt?: number }).portfolioAt, null, { timeout: 60_000 })
      .catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await w.page.innerText("body").catch(() => "")}`);
      });
    const r = await w.page.evaluate(() => ({
      fcpMs: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
      portfolioMs: (window as never as { portfolioAt: number }).portfolioAt,
      // The duration of each GraphQL request of the load.
      graphqlMs: performance
        .getEntriesByType("resource")
        .filter((x) => x.name.endsWith("/graphql"))
        .map((x) => Math.round(x.duration)),
    }));
    loads.push(r);
    log(
      `load ${i + 1}: first contentful paint ${r.fcpMs.toFixed(0)} ms, portfolio shown ${r.portfolioMs.toFixed(0)} ms` +
        ` (GraphQL requests: ${r.graphqlMs.join(", ")} ms)`,
    );
    await w.close();
    // The reads the page started after the portfolio (health, counts) end before the next load.
    await sleep(4_000);
  }

  // 3. Live latency.
  const ws = createClient({
    url: `${rig.url.replace("http", "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  const latencies: number[] = [];
  const missed: string[] = [];
  const w = await watchedPage(browser);
  await w.context.addInitScript({
    content: `window.seen = [];
    function note(el) {
      var task = el.getAttribute("data-task"), status = el.getAttribute("data-status");
      if (task && status) window.seen.push({ task: task, status: status, at: performance.timeOrigin + performance.now() });
    }
    new MutationObserver(function (records) {
      for (var r of records) {
        if (r.type === "attributes" && r.target instanceof Element) note(r.target);
        for (var n of r.addedNodes) if (n instanceof Element) n.querySelectorAll("[data-task]").forEach(note);
      }
    }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });`,
  });
  await w.page.goto(`${rig.url}/ui#token=${token}`);
  await w.page.getByTestId("page-overview").waitFor();
  for (let g = 0; g < LIVE_GOALS; g++) {
    const goalId = `bench-live-${Date.now()}-${g}`;
    const events: { type: string; taskId: string; loggedAt: number }[] = [];
    const done = new Promise<void>((resolve, reject) => {
      ws.subscribe<{ goalProgress: { type: string; taskId: string | null; loggedAt: string; replayed: boolean } }>(
        {
          query: `subscription ($id: ID!) { goalProgress(goalId: $id) { type taskId loggedAt replayed } }`,
          variables: { id: goalId },
        },
        {
          next: (r) => {
            const e = r.data?.goalProgress;
            if (e?.taskId && !e.replayed)
              events.push({ type: e.type, taskId: e.taskId, loggedAt: Date.parse(e.loggedAt) });
          },
          error: reject,
          complete: resolve,
        },
      );
    });
    // A first task holds the rest back while the page opens and subscribes.
    const layer = (id: string, deps: string[]) => ({
      id,
      title: id,
      description: null,
      domain: "backend",
      specialization: "api",
      phase: null,
      dependsOn: deps,
      estimatedEffortMs: 200,
      priority: null,
      inputs: {},
      timeoutMs: null,
    });
    await submitGoal(rig.d.writer, who, {
      goalId,
      title: `Live ${g + 1}`,
      tasks: [
        { ...layer("gate", []), estimatedEffortMs: 3_000 },
        ...Array.from({ length: 9 }, (_, i) => layer(`t${i + 1}`, i < 3 ? ["gate"] : [`t${i - 2}`])),
      ],
    });
    await w.page.evaluate((id) => (location.hash = `#/goals/${id}`), goalId);
    await w.page.waitForFunction(() => document.querySelectorAll("[data-task]").length === 10, null, {
      timeout: 20_000,
    });
    const watchingFrom = Date.now() + 500;
    await done;
    await sleep(1_000);
    const seen = await w.page.evaluate(
      () => (window as never as { seen: { task: string; status: string; at: number }[] }).seen,
    );
    const reached = { TaskStarted: ["RUNNING", "COMPLETED"], TaskCompleted: ["COMPLETED"] } as Record<string, string[]>;
    for (const e of events) {
      const shows = reached[e.type];
      if (!shows || e.loggedAt < watchingFrom) continue;
      const first = seen.find((s) => s.task === e.taskId && shows.includes(s.status) && s.at >= e.loggedAt - 5);
      if (first) latencies.push(Math.max(0, first.at - e.loggedAt));
      else missed.push(`${e.type} ${e.taskId}`);
    }
    log(`live goal ${g + 1}: ${latencies.length} transitions measured so far`);
  }
  await ws.dispose();
  await w.close();

  const result = {
    at: new Date().toISOString(),
    goals: GOALS,
    firstPaint: {
      loads,
      fcpMedianMs: quantile(
        loads.map((l) => l.fcpMs),
        0.5,
      ),
      portfolioMedianMs: quantile(
        loads.map((l) => l.portfolioMs),
        0.5,
      ),
      portfolioMaxMs: Math.max(...loads.map((l) => l.portfolioMs)),
      targetMs: 1000,
    },
    liveLatency: {
      transitions: latencies.length,
      missed,
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: Math.max(...latencies),
      targetP99Ms: 250,
    },
    machine: { cpus: (await import("node:os")).cpus().length, node: process.version, chromium: browser.version() },
  };
  const out = path.join(repoRoot, "bench", "results", `ui-${result.at.replace(/[:.]/g, "-")}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify({ ...result, firstPaint: { ...result.firstPaint, loads: undefined } }, null, 2));
  log(`wrote ${path.relative(repoRoot, out)}`);
} finally {
  await browser.close().catch(() => undefined);
  await rig.stop();
}
