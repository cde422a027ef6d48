/**
 * `npm run bench [-- --quick] [--only a,b] [--skip a,b] [--reps R] [sizes...]`: every benchmark in
 * one run on the resolved stack, each beside its bare baseline measured in the same run, then the
 * two curves of bench/scaling.ts. Writes bench/results/<at>.json (every result, the machine and the
 * stack), <at>.md (the tables) and <at>.svg (the charts); all three are rewritten after each step,
 * so that a run cut short keeps what it measured. Steps, in order: codec, flow, projections,
 * gateway, replay, scaling, goalsize, models. Sizes: see OPTIONS (each also BENCH_<NAME>, e.g.
 * BENCH_FLOW_GOALS=50; a flag wins over the environment).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { MongoClient } from "mongodb";
import pg from "pg";
import { loadConfig, repoRoot, type InfraUrls } from "../lib/config.js";
import { CliExit, defineCommand, parseCommandArgs, type StringOption } from "../lib/cli-args.js";
import { svgChart, type Bar, type Panel } from "./chart.js";
import { codecBench, type CodecResult } from "./codec.js";
import { flowBench, type FlowResult } from "./flow.js";
import { gatewayBench, type GatewayResult } from "./gateway.js";
import { modelsBench, type ModelsResult } from "./models.js";
import { projectionsBench, type ProjectionsResult } from "./projections.js";
import { replayBench, type ReplayResult } from "./replay.js";
import { temporalPeer, type TemporalPeerResult } from "./peer-temporal.js";
import {
  goalSizeLatency,
  scalingCurve,
  spread,
  type GoalSizeResult,
  type ScalingResult,
  type Spread,
} from "./scaling.js";

export const STEPS = [
  "codec",
  "flow",
  "halfload",
  "temporal",
  "projections",
  "gateway",
  "replay",
  "scaling",
  "goalsize",
  "models",
] as const;
type Step = (typeof STEPS)[number];

/** name: [default, --quick, what]. Lists are comma-separated whole numbers. */
const OPTIONS = {
  reps: [5, 1, "repetitions behind every median (flow runs, projection reps, gateway rounds, replay reps, curves)"],
  "codec-rounds": [5, 2, "codec: rounds per figure"],
  "codec-ops": [50_000, 5_000, "codec: encodes/decodes per round"],
  "codec-messages": [20_000, 2_000, "codec: messages sent per round"],
  "flow-goals": [100, 10, "flow: goals submitted at once"],
  "flow-tasks": [10, 10, "flow: tasks per goal"],
  "flow-warmup": [
    10,
    2,
    "flow, halfload, temporal: goals run first and not measured (the Temporal peer's --warmup is 10)",
  ],
  "single-goals": [10, 4, "temporal: goals run one at a time on each side, for one goal's latency"],
  "projection-goals": [100, 10, "projections: goals recorded, then projected"],
  "gateway-seconds": [15, 2, "gateway: seconds per autocannon round"],
  "gateway-connections": [10, 10, "gateway: connections"],
  "gateway-goals": [20, 3, "gateway: goals run to have data to read"],
  "replay-goals": [20, 3, "replay: goals recorded"],
  "replay-copies": [50, 20, "replay: renamed copies of their events in the replayed topic"],
  instances: ["1,2,4", "1,2", "scaling: worker-tier instance counts"],
  "scale-goals": [300, 10, "scaling: goals per repetition, submitted at once"],
  "scale-tasks": [10, 10, "scaling: tasks per goal"],
  "goal-sizes": ["10,100,1000", "10,100", "goal size: tasks in one goal"],
  "goal-depth": [10, 10, "goal size: layers of the DAG (10 tasks in 10 layers: a chain)"],
  "task-ms": [10, 10, "scaling and goal size: mean simulated task duration (ms)"],
  "timeout-ms": [600_000, 300_000, "scaling, goal size and models: the most one repetition (one model goal) may take"],
  "model-goals": [20, 3, "models: goals of 5 model tasks each (embedded runtime, tiny GGUF)"],
  "model-plan-goals": [5, 1, "models: goals without tasks, planned by the model"],
  "model-concurrency": [1, 1, "models: goals in flight at once"],
} as const;
type Name = keyof typeof OPTIONS;

const SIZE_OPTIONS = Object.fromEntries(
  Object.entries(OPTIONS).map(([name, [full, quick, what]]) => [
    name,
    { type: "string", value: "N", help: `${what} (default ${full}; --quick ${quick})` } satisfies StringOption,
  ]),
) as Record<Name, StringOption>;

export const BENCH_ALL_COMMAND = defineCommand({
  name: "bench",
  summary:
    "every benchmark beside its baseline, then the scaling and goal-size curves; bench/results/<date>.json, .md, .svg",
  options: {
    quick: { type: "boolean", help: "every step at small sizes (2-3 minutes), to try it" },
    only: { type: "string", value: "step,...", help: `run only these steps: ${STEPS.join(", ")}` },
    skip: { type: "string", value: "step,...", help: "skip these steps" },
    "scale-tiers": {
      type: "string",
      value: "worker|all",
      help: "scaling: the tiers run in the instances (default worker)",
    },
    ...SIZE_OPTIONS,
  },
  notes:
    "Each option also as BENCH_<NAME> in the environment (BENCH_FLOW_GOALS=50, BENCH_QUICK=1, BENCH_ONLY=flow,scaling); a flag wins.",
});

function parse(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const { values } = parseCommandArgs(BENCH_ALL_COMMAND, args);
  const given = values as Record<string, string | boolean | undefined>;
  const raw = (name: string): string | undefined => {
    const flag = given[name];
    return typeof flag === "string" ? flag : env[`BENCH_${name.toUpperCase().replace(/-/g, "_")}`];
  };
  const quick = values.quick || env.BENCH_QUICK === "1";
  const list = (name: Name): number[] => {
    const [full, q] = OPTIONS[name];
    const text = String(raw(name) ?? (quick ? q : full));
    const xs = text.split(",").map(Number);
    if (xs.length === 0 || xs.some((x) => !Number.isInteger(x) || x < 1))
      throw new CliExit(2, `--${name} = ${text}: give whole numbers >= 1, comma-separated`);
    return xs;
  };
  const one = (name: Name): number => {
    const xs = list(name);
    if (xs.length !== 1) throw new CliExit(2, `--${name}: give one number`);
    return xs[0]!;
  };
  const steps = (name: "only" | "skip"): Step[] | undefined => {
    const v = raw(name);
    if (v === undefined) return undefined;
    const xs = v.split(",").filter(Boolean);
    for (const x of xs)
      if (!STEPS.includes(x as Step)) throw new CliExit(2, `--${name}: unknown step ${x} (${STEPS.join(", ")})`);
    return xs as Step[];
  };
  const [only, skip] = [steps("only"), steps("skip")];
  const scaleTiers = raw("scale-tiers") ?? "worker";
  if (scaleTiers !== "worker" && scaleTiers !== "all")
    throw new CliExit(2, `--scale-tiers: worker or all, not ${scaleTiers}`);
  const sizes = Object.fromEntries(
    (Object.keys(OPTIONS) as Name[]).map((n) => [n, ["instances", "goal-sizes"].includes(n) ? list(n) : one(n)]),
  ) as { [K in Name]: K extends "instances" | "goal-sizes" ? number[] : number };
  return {
    quick,
    steps: STEPS.filter((s) => (!only || only.includes(s)) && !skip?.includes(s)),
    scaleTiers: scaleTiers as "worker" | "all",
    ...sizes,
  };
}
type Options = ReturnType<typeof parse>;

/** Checks `polity bench` arguments before any infrastructure is resolved (runAllBenches parses them again). */
export const benchAllOptions = (args: string[]): Options => parse(args);

/** What `infra/cli.ts` knows of the stack: where each URL came from and the native servers' versions. */
export interface StackInfo {
  sources: Record<string, string>;
  servers: { name: string; state: string; version: string; detail: string }[];
}

async function describeMachine(urls: InfraUrls, stack: StackInfo) {
  const distro = (() => {
    try {
      return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync("/etc/os-release", "utf8"))?.[1];
    } catch {
      return undefined;
    }
  })();
  const cpus = os.cpus();
  const versions: Record<string, string> = {};
  const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 1 });
  await pool
    .query<{ server_version: string }>("SHOW server_version")
    .then((r) => (versions.postgres = r.rows[0]!.server_version))
    .catch((e: Error) => (versions.postgres = `? (${e.message})`))
    .finally(() => pool.end());
  const mongo = new MongoClient(urls.mongoUrl, { serverSelectionTimeoutMS: 5_000 });
  await mongo
    .db()
    .admin()
    .buildInfo()
    .then(
      (b) => (versions.mongo = `${b.version}${b.ferretdbVersion ? ` (FerretDB ${String(b.ferretdbVersion)})` : ""}`),
    )
    .catch((e: Error) => (versions.mongo = `? (${e.message})`))
    .finally(() => mongo.close());
  const pkg = (name: string) => {
    try {
      const file = path.join(repoRoot, "node_modules", name, "package.json");
      return (JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }).version;
    } catch {
      return "?";
    }
  };
  return {
    cpus: cpus.length,
    model: cpus[0]?.model,
    speedMHz: cpus[0]?.speed,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    distro,
    stack: { ...stack, versions, clients: { kafkajs: pkg("kafkajs"), mongodb: pkg("mongodb"), pg: pkg("pg") } },
  };
}

// --- the summary rows ----------------------------------------------------------------------------

export interface Row {
  bench: Step;
  figure: string;
  /** For the chart's bar labels. */
  short?: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  baseline?: string;
  baselineMedian?: number;
  ratio?: number;
  target?: number;
}

const spreadOf = (xs: number[]): Spread => spread(xs.filter(Number.isFinite));

/**
 * Polity beside the Temporal peer, same workload, same run. Every ratio reads "how many times
 * better Polity is" (a latency ratio is Temporal's over Polity's), so that a target is a floor.
 */
function peerRows(t: NonNullable<Results["temporal"]>, flow: FlowResult[]): Row[] {
  const rows: Row[] = [];
  const peer = t.peer;
  const load = peer.load!;
  const tag = `Temporal ${peer.serverVersion ?? "dev server"} (SQLite WAL)`;
  if (flow.length > 0) {
    const tasks = spreadOf(flow.map((x) => x.flow.tasksPerSecond));
    rows.push({
      bench: "temporal",
      figure: `tasks/s, ${flow[0]!.N} goals at once, beside ${tag} on the same workload`,
      short: "tasks/s vs Temporal",
      unit: "tasks/s",
      ...tasks,
      baseline: tag,
      baselineMedian: load.tasksPerSec.median,
      ratio: ratio(tasks.median, load.tasksPerSec.median),
      target: 3,
    });
    const p99 = spreadOf(flow.map((x) => x.flow.goalLatencyMs.p99));
    rows.push({
      bench: "temporal",
      figure: `goal latency p99 under the same burst (ratio: Temporal's / Polity's)`,
      short: "p99 vs Temporal",
      unit: "ms",
      ...p99,
      baseline: tag,
      baselineMedian: load.goalLatencyP99Ms.median,
      ratio: ratio(load.goalLatencyP99Ms.median, p99.median),
    });
  }
  if (t.politySingle.length > 0 && peer.single) {
    const single = spreadOf(t.politySingle.map((x) => x.flow.goalLatencyMs.p50));
    rows.push({
      bench: "temporal",
      figure: `one 10-task goal alone, latency p50 of ${t.politySingle[0]!.N} goals one at a time after ${t.politySingle[0]!.warmupGoals ?? 0} warm-up goals (Temporal: ${peer.single.reps}) (ratio: Temporal's / Polity's)`,
      short: "one goal vs Temporal",
      unit: "ms",
      ...single,
      baseline: tag,
      baselineMedian: peer.single.pooledGoalLatencyMs.p50,
      ratio: ratio(peer.single.pooledGoalLatencyMs.p50, single.median),
      target: 1,
    });
  }
  return rows;
}

interface Results {
  codec?: CodecResult;
  flow?: { runs: FlowResult[] };
  /** The flow's goals submitted at half the goal rate the flow runs reached, evenly paced. */
  halfload?: { rate: number; runs: FlowResult[] };
  /** The Temporal peer on the flow's workload, and Polity's flow with one goal alone beside it. */
  temporal?: { peer: TemporalPeerResult; politySingle: FlowResult[] };
  projections?: ProjectionsResult;
  gateway?: GatewayResult;
  replay?: ReplayResult;
  scaling?: ScalingResult;
  goalsize?: GoalSizeResult;
  models?: ModelsResult;
}

const ratio = (a: number, b: number | undefined) => (b ? Math.round((a / b) * 1000) / 1000 : undefined);

function rowsOf(r: Results): Row[] {
  const rows: Row[] = [];
  if (r.codec) {
    for (const c of r.codec.rows) {
      const unit = c.name.startsWith("EventWriter") ? "msg/s" : "ops/s";
      const round = (x: number) => Math.round(x);
      rows.push({
        bench: "codec",
        figure: c.name,
        short: c.name.replace(/ \(.*$/, ""),
        unit,
        median: round(c.ours.median),
        min: round(c.ours.min),
        max: round(c.ours.max),
        baseline: c.baseline,
        baselineMedian: round(c.base.median),
        ratio: ratio(c.ours.median, c.base.median),
      });
    }
  }
  if (r.flow && r.flow.runs.length > 0) {
    const runs = r.flow.runs;
    const s = (f: (x: FlowResult) => number) => spreadOf(runs.map(f));
    const rounds = (v: "hostRetry" | "defaultRetry") =>
      spreadOf(runs.flatMap((x) => x.baselines[v].rounds.map((b) => b.eventsPerSecond)));
    const [events, host, dflt] = [s((x) => x.flow.eventsPerSecond), rounds("hostRetry"), rounds("defaultRetry")];
    const shape = `${runs[0]!.N} goals x ${runs[0]!.M} tasks`;
    rows.push({ bench: "flow", figure: `tasks/s (${shape})`, unit: "tasks/s", ...s((x) => x.flow.tasksPerSecond) });
    rows.push({
      bench: "flow",
      figure: "events/s, beside a bare transactional consume-produce loop (hosts' producer retry)",
      short: "events/s",
      unit: "events/s",
      ...events,
      baseline: "bare kafkajs transactional loop, like for like",
      baselineMedian: host.median,
      ratio: ratio(events.median, host.median),
      target: 0.5,
    });
    rows.push({
      bench: "flow",
      figure: "events/s, beside the bare loop with kafkajs's default retry",
      unit: "events/s",
      ...events,
      baseline: "bare kafkajs transactional loop, default retry",
      baselineMedian: dflt.median,
      ratio: ratio(events.median, dflt.median),
    });
    rows.push({ bench: "flow", figure: "goal latency p50", unit: "ms", ...s((x) => x.flow.goalLatencyMs.p50) });
    rows.push({ bench: "flow", figure: "goal latency p99", unit: "ms", ...s((x) => x.flow.goalLatencyMs.p99) });
  }
  if (r.halfload && r.halfload.runs.length > 0) {
    const p99 = spreadOf(r.halfload.runs.map((x) => x.flow.goalLatencyMs.p99));
    rows.push({
      bench: "halfload",
      figure: `goal latency p99 at 50% of the flow's maximum load (${r.halfload.rate} goals/s, evenly paced; ratio: 500 ms / p99)`,
      short: "p99 at 50% load",
      unit: "ms",
      ...p99,
      baseline: "500 ms",
      baselineMedian: 500,
      ratio: ratio(500, p99.median),
      target: 1,
    });
  }
  if (r.temporal?.peer.load) rows.push(...peerRows(r.temporal, r.flow?.runs ?? []));
  if (r.projections) {
    const p = r.projections;
    for (const [label, m] of [
      ["PostgreSQL analytics projection", p.postgres],
      ["MongoDB state projection (FerretDB)", p.mongo],
    ] as const) {
      if (!m.projectionEventsPerSecond) continue;
      rows.push({
        bench: "projections",
        figure: `${label} (${m.events} events)`,
        short: label.split(" ")[0],
        unit: "events/s",
        ...m.projectionEventsPerSecond,
        baseline: "bare batched insert of the same end state",
        baselineMedian: m.bareEventsPerSecond?.median,
        ratio: m.ratio,
        target: 0.5,
      });
    }
  }
  if (r.gateway) {
    const g = r.gateway;
    rows.push({
      bench: "gateway",
      figure: `GraphQL goal query (${g.settings.connections} connections)`,
      short: "goal query",
      unit: "req/s",
      median: Math.round(g.gateway.requestsPerSecond),
      min: Math.round(g.gateway.min),
      max: Math.round(g.gateway.max),
      baseline: "bare express route, same reads",
      baselineMedian: Math.round(g.bare.requestsPerSecond),
      ratio: g.ratio,
      target: 0.6,
    });
    const lat = (f: (x: (typeof g.gateway.rounds)[number]) => number) => spreadOf(g.gateway.rounds.map(f));
    const bareLat = (f: (x: (typeof g.bare.rounds)[number]) => number) => spreadOf(g.bare.rounds.map(f)).median;
    for (const [name, f] of [
      ["p50", (x: { p50Ms: number }) => x.p50Ms],
      ["p99", (x: { p99Ms: number }) => x.p99Ms],
    ] as const) {
      const ours = lat(f);
      const base = bareLat(f);
      rows.push({
        bench: "gateway",
        figure: `goal query latency ${name}`,
        unit: "ms",
        ...ours,
        baseline: "bare express route",
        baselineMedian: base,
        ratio: ratio(ours.median, base),
      });
    }
    if (g.subscription.p50Ms !== null) {
      const s = g.subscription;
      rows.push({
        bench: "gateway",
        figure: `subscription delivery p50 (${s.events} events; min/max: p50/p99)`,
        unit: "ms",
        median: s.p50Ms!,
        min: s.p50Ms!,
        max: s.p99Ms!,
      });
    }
  }
  if (r.replay) {
    const p = r.replay;
    rows.push({
      bench: "replay",
      figure: `audit replay, decode + evolve (${p.log.records} records)`,
      short: "audit replay",
      unit: "events/s",
      median: p.replay.median,
      min: p.replay.min,
      max: p.replay.max,
      baseline: "bare kafkajs consume",
      baselineMedian: p.bare.median,
      ratio: p.ratio.median,
      target: 0.8,
    });
  }
  if (r.scaling) {
    const first = r.scaling.points[0];
    for (const pt of r.scaling.points) {
      rows.push({
        bench: "scaling",
        figure: `tasks/s, ${r.scaling.options.scaled === "all" ? "every tier" : "worker tier"} in ${pt.instances} instance(s)`,
        unit: "tasks/s",
        ...pt.tasksPerSecond,
        baseline: first ? `${first.instances} instance(s)` : undefined,
        baselineMedian: first?.tasksPerSecond.median,
        ratio: pt.speedup,
      });
    }
  }
  if (r.goalsize) {
    for (const pt of r.goalsize.points) {
      rows.push({
        bench: "goalsize",
        figure: `goal latency, ${pt.tasks} tasks (${pt.depth} layers x ${pt.width})`,
        unit: "ms",
        ...pt.latencyMs,
      });
    }
  }
  if (r.models) {
    const m = r.models;
    const one = (x: number) => ({ median: x, min: x, max: x });
    const tasks = `${m.tasks.completed} tasks`;
    for (const p of ["p50", "p99"] as const) {
      rows.push({
        bench: "models",
        figure: `orchestration overhead per model task ${p} (wall - model call; target <= ${m.target[p]} ms, ${m.met[p] ? "met" : "**not met**"}; ${tasks})`,
        short: `overhead ${p}`,
        unit: "ms",
        ...one(m.overheadMs[p]),
      });
    }
    rows.push({
      bench: "models",
      figure: "worker-side overhead per model task p50 (TaskStarted to TaskCompleted - model call; min/max: p50/p99)",
      unit: "ms",
      median: m.workerOverheadMs.p50,
      min: m.workerOverheadMs.p50,
      max: m.workerOverheadMs.p99,
    });
    rows.push({
      bench: "models",
      figure: "model call p50, embedded tiny GGUF (min/max: p50/p99)",
      unit: "ms",
      median: m.modelMs.p50,
      min: m.modelMs.p50,
      max: m.modelMs.p99,
    });
    rows.push({
      bench: "models",
      figure: "model tokens out per second of model time",
      unit: "tokens/s",
      ...one(m.tokensPerSecond),
    });
    if (m.planning?.overheadMs) {
      const o = m.planning.overheadMs;
      rows.push({
        bench: "models",
        figure: `plan step overhead p50 (PlanRequested to PlanProposed - model call; ${o.n} plans; min/max: p50/p99)`,
        unit: "ms",
        median: o.p50,
        min: o.p50,
        max: o.p99,
      });
    }
  }
  return rows;
}

// --- writing -------------------------------------------------------------------------------------

const num = (x: number | undefined, unit = "") => {
  if (x === undefined || !Number.isFinite(x)) return "-";
  const v = Math.abs(x) >= 100 ? Math.round(x).toLocaleString("en") : String(Math.round(x * 10) / 10);
  return unit ? `${v} ${unit}` : v;
};

function markdown(report: Report, svgName: string): string {
  const { rows, results: r, machine: m } = report;
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const out = [
    `# Polity benchmarks, ${report.at}`,
    "",
    `\`${report.command}\`${report.options.quick ? " (quick sizes: not for comparison)" : ""}, ` +
      `${report.finishedAt ? `${(report.durationMs / 60_000).toFixed(1)} min` : `still running, ${(report.durationMs / 60_000).toFixed(1)} min so far`}; ` +
      `steps ${report.options.steps.join(", ")}; every median over ${report.options.reps} repetition(s).`,
    "",
    `Machine: ${m.cpus} x ${m.model ?? "?"}, ${m.memoryGiB} GiB, ${m.distro ?? m.os} (${m.os}), node ${m.node}; ` +
      `load average before ${report.loadAverage.before.join(" / ")}, after ${report.loadAverage.after?.join(" / ") ?? "-"}.`,
    "",
    `Stack (${[...new Set(Object.values(m.stack.sources))].join(", ")}): ` +
      (m.stack.servers.length > 0
        ? m.stack.servers.map((s) => `${s.name} ${s.version}`).join("; ")
        : Object.entries(m.stack.versions)
            .map(([k, v]) => `${k} ${v}`)
            .join("; ")) +
      `; PostgreSQL ${m.stack.versions.postgres}, MongoDB wire ${m.stack.versions.mongo}; kafkajs ${m.stack.clients.kafkajs}.`,
    "",
    `![throughput and latency against load](${svgName})`,
    "",
    "## Benchmarks beside their baselines",
    "",
    "| benchmark | figure | median | min | max | baseline median | ratio |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const row of rows.filter((x) => x.bench !== "scaling" && x.bench !== "goalsize")) {
    const base = row.baselineMedian !== undefined ? `${num(row.baselineMedian, row.unit)} (${row.baseline})` : "-";
    const ratioCell =
      row.ratio === undefined
        ? "-"
        : `${row.ratio.toFixed(3)}${row.target !== undefined ? ` (target ${row.target}${row.ratio >= row.target ? ", met" : ", **not met**"})` : ""}`;
    out.push(
      `| ${row.bench} | ${cell(row.figure)} | ${num(row.median, row.unit)} | ${num(row.min)} | ${num(row.max)} | ${cell(base)} | ${ratioCell} |`,
    );
  }
  if (r.scaling) {
    out.push(
      "",
      `## Scaling: tasks/s against ${r.scaling.options.scaled === "all" ? "instances of every tier" : "worker-tier instances"}`,
      "",
      r.scaling.notes,
      "",
      "| instances | task partitions per instance | tasks/s median | min | max | speedup | goal latency p50 (median) | p99 (median) | machine busy | tier errors logged |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const p of r.scaling.points) {
      const busy = spreadOf(p.reps.map((x) => x.cpu.machineBusy * 100)).median;
      out.push(
        `| ${p.instances} | ${p.partitionSplit.join("+")} | ${num(p.tasksPerSecond.median)} | ${num(p.tasksPerSecond.min)} | ${num(p.tasksPerSecond.max)} | ${p.speedup.toFixed(2)} | ${num(p.goalLatencyP50Ms.median, "ms")} | ${num(p.goalLatencyP99Ms.median, "ms")} | ${Math.round(busy)}% | ${p.hierarchyErrors} |`,
      );
    }
  }
  if (r.goalsize) {
    out.push(
      "",
      "## Goal latency against goal size",
      "",
      r.goalsize.notes,
      "",
      "| tasks in the goal | layers x width | latency median | min | max | ms per task | tier errors logged |",
      "| --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const p of r.goalsize.points) {
      out.push(
        `| ${p.tasks} | ${p.depth} x ${p.width} | ${num(p.latencyMs.median, "ms")} | ${num(p.latencyMs.min)} | ${num(p.latencyMs.max)} | ${p.msPerTask} | ${p.hierarchyErrors} |`,
      );
    }
  }
  if (r.models) {
    const m = r.models;
    const d = (x: { p50: number; p95: number; p99: number; max: number } | null | undefined) =>
      x ? [x.p50, x.p95, x.p99, x.max].map((v) => num(v, "ms")).join(" | ") : "- | - | - | -";
    const met = (ok: boolean) => (ok ? "met" : "**not met**");
    out.push(
      "",
      "## Model tasks: orchestration overhead beside the model call",
      "",
      `${m.tasks.completed} model tasks (${m.goals.submitted} goals x ${m.options.tasksPerGoal}, ${m.options.concurrency} at a time; ` +
        `${m.tasks.failedAttempts} failed attempts), ${m.runtime}. ${m.notes}`,
      "",
      "| per model task | p50 | p95 | p99 | max |",
      "| --- | --- | --- | --- | --- |",
      `| **overhead: wall - model** (target p50 <= ${m.target.p50} ms ${met(m.met.p50)}, p99 <= ${m.target.p99} ms ${met(m.met.p99)}) | ${d(m.overheadMs)} |`,
      `| worker overhead: TaskStarted to TaskCompleted - model | ${d(m.workerOverheadMs)} |`,
      `| model call (usage.latencyMs) | ${d(m.modelMs)} |`,
      `| wall: the president's TaskAssigned to TaskCompleted | ${d(m.wallMs)} |`,
      `| hand-off: dependencies done to the president's TaskAssigned | ${d(m.handoffMs)} |`,
      `| plan overhead: PlanRequested to PlanProposed - model | ${d(m.planning?.overheadMs)} |`,
      `| plan model call | ${d(m.planning?.modelMs)} |`,
      "",
      `${m.tokensPerSecond} tokens/s out per second of model time; overhead / model ${m.overheadToModel.p50} at p50, ${m.overheadToModel.total} in total.`,
    );
  }
  const firstErrors = [
    ...(r.scaling?.points ?? []).map((p) => [`scaling, ${p.instances} instance(s)`, p.firstError] as const),
    ...(r.goalsize?.points ?? []).map((p) => [`goal size ${p.tasks}`, p.firstError] as const),
  ].filter(([, e]) => e !== undefined);
  if (firstErrors.length > 0) {
    out.push("", "First error the tiers logged (the bench's output has them all):", "");
    for (const [where, e] of firstErrors) out.push(`- ${where}: ${e}`);
  }
  out.push("", "## Steps", "", "| step | took | outcome |", "| --- | --- | --- |");
  for (const s of report.steps) out.push(`| ${s.step} | ${(s.ms / 1000).toFixed(0)} s | ${cell(s.error ?? "ok")} |`);
  out.push(
    "",
    "Ratios are Polity over its baseline for throughput (higher is better) and for latency (lower is better); " +
      "the scaling ratio is the speedup over the first instance count. Min and max are over the repetitions " +
      "(for the flow baselines, over every baseline round of every run). Every result is in the JSON file of the same name.",
  );
  return `${out.join("\n")}\n`;
}

function chart(report: Report): string {
  const { results: r, rows } = report;
  const panels: Panel[] = [];
  if (r.scaling) {
    const pts = r.scaling.points;
    const what = r.scaling.options.scaled === "all" ? "instances of every tier" : "worker-tier instances";
    panels.push({
      kind: "line",
      title: `Throughput against ${what}`,
      xLabel: `${what} (${r.scaling.options.goals} goals x ${r.scaling.options.tasks} tasks at once)`,
      yLabel: "tasks/s",
      series: [
        { name: "tasks/s (median, min-max)", points: pts.map((p) => ({ x: p.instances, ...p.tasksPerSecond })) },
      ],
    });
    panels.push({
      kind: "line",
      title: `Goal latency against ${what}`,
      xLabel: what,
      yLabel: "ms",
      series: [
        { name: "goal latency p50", points: pts.map((p) => ({ x: p.instances, ...p.goalLatencyP50Ms })) },
        { name: "goal latency p99", points: pts.map((p) => ({ x: p.instances, ...p.goalLatencyP99Ms })) },
      ],
    });
  }
  if (r.goalsize) {
    panels.push({
      kind: "line",
      title: "Goal latency against goal size",
      xLabel: `tasks in one goal (${r.goalsize.options.depth} layers; mean task ${r.goalsize.options.taskMs} ms)`,
      yLabel: "ms",
      series: [
        { name: "latency (median, min-max)", points: r.goalsize.points.map((p) => ({ x: p.tasks, ...p.latencyMs })) },
      ],
    });
  }
  const bars: Bar[] = rows
    .filter(
      (x) =>
        x.ratio !== undefined &&
        x.bench !== "scaling" &&
        (x.unit !== "ms" || x.bench === "temporal") &&
        !/default retry/.test(x.figure),
    )
    .map((x) => ({
      label: `${x.bench}: ${x.short ?? x.figure.slice(0, 16)}`,
      value: x.ratio!,
      target: x.target,
    }));
  if (bars.length > 0) {
    panels.push({
      kind: "bars",
      title: "Throughput / bare baseline, same run",
      xLabel: "ratio (black mark: target)",
      bars,
    });
  }
  const m = report.machine;
  const caption = `${report.at}; ${m.cpus} x ${m.model ?? "?"}, ${m.memoryGiB} GiB, node ${m.node}; medians of ${report.options.reps} repetition(s)${report.options.quick ? "; QUICK sizes" : ""}`;
  return svgChart("Polity benchmarks", caption, panels);
}

interface Report {
  at: string;
  finishedAt?: string;
  durationMs: number;
  command: string;
  options: Options;
  machine: Awaited<ReturnType<typeof describeMachine>>;
  loadAverage: { before: number[]; after?: number[] };
  steps: { step: Step; ms: number; error?: string }[];
  rows: Row[];
  results: Results;
}

export async function runAllBenches(urls: InfraUrls, args: string[], stack: StackInfo): Promise<number> {
  const opts = parse(args);
  const started = performance.now();
  const elapsed = () => ((performance.now() - started) / 1000).toFixed(0).padStart(5);
  const say = (line: string) => process.stderr.write(`[bench all ${elapsed()}s] ${line}\n`);
  const at = new Date().toISOString();
  const stamp = at.replace(/[:.]/g, "-");
  const dir = path.join(repoRoot, "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  const files = {
    json: path.join(dir, `${stamp}.json`),
    md: path.join(dir, `${stamp}.md`),
    svg: path.join(dir, `${stamp}.svg`),
  };
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const report: Report = {
    at,
    durationMs: 0,
    command: `npm run bench${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`,
    options: opts,
    machine: await describeMachine(urls, stack),
    loadAverage: { before: os.loadavg().map(r1) },
    steps: [],
    rows: [],
    results: {},
  };
  const write = () => {
    report.durationMs = Math.round(performance.now() - started);
    report.rows = rowsOf(report.results);
    fs.writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
    fs.writeFileSync(files.md, markdown(report, path.basename(files.svg)));
    fs.writeFileSync(files.svg, chart(report));
  };
  const o = opts;
  const reps = String(o.reps);
  say(
    `${opts.steps.length} steps (${opts.steps.join(", ")})${opts.quick ? ", quick sizes" : ""}; ${report.machine.cpus} cpus, ` +
      `load ${report.loadAverage.before.join(" ")}; results: ${path.relative(repoRoot, files.md)} (.json, .svg)`,
  );
  const write0 = { write: false };
  /** bench:flow's arguments: every flow run has the tasks per goal and the warm-up of this report. */
  const flowArgs = (goals: number, ...more: string[]) =>
    ["--goals", goals, "--tasks", o["flow-tasks"], "--warmup", o["flow-warmup"]].map(String).concat(more);
  const work: Record<Step, () => Promise<number>> = {
    codec: async () => {
      const a = ["--rounds", o["codec-rounds"], "--ops", o["codec-ops"], "--messages", o["codec-messages"]].map(String);
      const { code, result } = await codecBench(urls, a, write0);
      report.results.codec = result;
      return code;
    },
    flow: async () => {
      const runs: FlowResult[] = (report.results.flow = { runs: [] }).runs;
      for (let i = 1; i <= o.reps; i++) {
        say(`flow: run ${i}/${o.reps}, ${o["flow-goals"]} goals x ${o["flow-tasks"]} tasks, then its baseline rounds`);
        runs.push((await flowBench(urls, flowArgs(o["flow-goals"]), write0)).result);
        const x = runs.at(-1)!;
        say(`flow: run ${i}/${o.reps}: ${x.flow.tasksPerSecond} tasks/s, ratio ${x.ratio} to the like-for-like loop`);
        write();
      }
      return 0;
    },
    halfload: async () => {
      const max = spreadOf((report.results.flow?.runs ?? []).map((x) => x.flow.tasksPerSecond)).median;
      if (!Number.isFinite(max))
        throw new Error("halfload needs the flow step's maximum: run it with --only flow,halfload");
      const rate = Math.round((max / 2 / o["flow-tasks"]) * 100) / 100;
      const runs: FlowResult[] = [];
      report.results.halfload = { rate, runs };
      for (let i = 1; i <= o.reps; i++) {
        say(`halfload: run ${i}/${o.reps}, ${o["flow-goals"]} goals at ${rate} goals/s (half of ${max} tasks/s)`);
        runs.push((await flowBench(urls, flowArgs(o["flow-goals"], "--rate", String(rate)), write0)).result);
        say(`halfload: run ${i}/${o.reps}: goal p99 ${runs.at(-1)!.flow.goalLatencyMs.p99} ms`);
        write();
      }
      return 0;
    },
    temporal: async () => {
      // One goal alone, as the peer measures it: warm-up goals, then goals one at a time, pooled p50.
      say(`temporal: Polity's flow, ${o["single-goals"]} goals one at a time after ${o["flow-warmup"]} warm-up goals`);
      const single = flowArgs(o["single-goals"], "--one-by-one");
      const politySingle: FlowResult[] = [(await flowBench(urls, single, write0)).result];
      const sizes = { goals: o["flow-goals"], reps: o.reps, singleReps: o["single-goals"], warmup: o["flow-warmup"] };
      const work = path.join(loadConfig().native.home, "temporal-peer");
      const peer = await temporalPeer(loadConfig().temporalPeerDir, work, sizes, say);
      report.results.temporal = { peer, politySingle };
      if (peer.load)
        say(
          `temporal: ${peer.load.tasksPerSec.median} tasks/s, goal p99 ${peer.load.goalLatencyP99Ms.median} ms; one goal p50 ${peer.single?.pooledGoalLatencyMs.p50} ms`,
        );
      return 0;
    },
    projections: async () => {
      const a = ["--goals", String(o["projection-goals"]), "--reps", reps];
      const { code, result } = await projectionsBench(urls, a, write0);
      report.results.projections = result;
      return code;
    },
    gateway: async () => {
      const a = ["--seconds", o["gateway-seconds"], "--connections", o["gateway-connections"], "--rounds", reps];
      const { code, result } = await gatewayBench(
        urls,
        [...a.map(String), "--goals", String(o["gateway-goals"])],
        write0,
      );
      report.results.gateway = result;
      return code;
    },
    replay: async () => {
      const a = ["--goals", o["replay-goals"], "--copies", o["replay-copies"], "--reps", reps].map(String);
      const { code, result } = await replayBench(urls, a, write0);
      report.results.replay = result;
      return code;
    },
    scaling: async () => {
      const scaling = {
        instances: o.instances,
        scaled: o.scaleTiers,
        goals: o["scale-goals"],
        tasks: o["scale-tasks"],
        reps: o.reps,
      };
      report.results.scaling = await scalingCurve(
        urls,
        { ...scaling, taskMs: o["task-ms"], timeoutMs: o["timeout-ms"] },
        (line) => say(line),
      );
      return 0;
    },
    goalsize: async () => {
      const sizes = { sizes: o["goal-sizes"], depth: o["goal-depth"], reps: o.reps };
      report.results.goalsize = await goalSizeLatency(
        urls,
        { ...sizes, taskMs: o["task-ms"], timeoutMs: o["timeout-ms"] },
        (line) => say(line),
      );
      return 0;
    },
    models: async () => {
      const a = ["--goals", o["model-goals"], "--plan-goals", o["model-plan-goals"]];
      const b = ["--concurrency", o["model-concurrency"], "--timeout-ms", o["timeout-ms"]];
      const { code, result } = await modelsBench(urls, [...a, ...b].map(String), write0);
      report.results.models = result;
      return code;
    },
  };
  write();
  let failed = 0;
  for (const [i, step] of opts.steps.entries()) {
    const t0 = performance.now();
    say(`(${i + 1}/${opts.steps.length}) ${step}: starting`);
    let error: string | undefined;
    try {
      const code = await work[step]();
      if (code !== 0) error = `exit code ${code} (see its output above)`;
    } catch (e) {
      error = (e as Error).message;
    }
    const ms = Math.round(performance.now() - t0);
    report.steps.push({ step, ms, ...(error ? { error } : {}) });
    if (error) failed++;
    say(
      `(${i + 1}/${opts.steps.length}) ${step}: ${error ? `FAILED: ${error}` : "done"} in ${(ms / 1000).toFixed(0)} s`,
    );
    write();
  }
  report.finishedAt = new Date().toISOString();
  report.loadAverage.after = os.loadavg().map(r1);
  write();
  console.log(fs.readFileSync(files.md, "utf8"));
  for (const f of Object.values(files)) console.log(`wrote ${path.relative(repoRoot, f)}`);
  say(
    `finished in ${((performance.now() - started) / 60_000).toFixed(1)} min${failed ? `; ${failed} step(s) failed` : ""}`,
  );
  return failed === 0 ? 0 : 1;
}
