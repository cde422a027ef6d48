/**
 * `npm run bench:models [-- --goals N --plan-goals P --concurrency C --quick]`: the orchestration
 * overhead of a model task, beside the model call's own time, with the embedded runtime
 * (node-llama-cpp running a tiny random-weight GGUF written into a temp dir, threads: 1).
 * Target (the issue): overhead p50 <= 50 ms and p99 <= 200 ms.
 *
 * All tiers of an aamas topology run in this process on topics of their own (deleted at the end),
 * their workers model workers, answers bounded ({ result: string <= 40 chars }, maxTokens 100).
 * After one warm-up goal (the model's load and the grammars' compilation are not the hierarchy's
 * cost), N goals, each an explicit DAG of 5 tasks (so that no planning is in the figure), run C at a
 * time. For every TaskCompleted, from the envelopes' occurredAt (one process, one clock):
 *
 * - wall = TaskCompleted - the president's TaskAssigned to the governor (attempt 1): the task ready;
 * - model = usage.latencyMs: the model call, waiting for a free context sequence included;
 * - overhead = wall - model: governor -> mayor -> worker, start, the executor around the call, the
 *   completion decided and committed;
 * - worker overhead = TaskCompleted - TaskStarted - model: the worker's side alone;
 * - hand-off = the president's TaskAssigned - the last TaskCompleted of its dependencies: the
 *   completion travelling up and the next task decided (not in `wall`).
 *
 * Then P goals without tasks are planned by the model planner: plan overhead = PlanProposed -
 * PlanRequested - usage.latencyMs. Their tasks are not in the task figures.
 * BENCH_MODEL_GOALS, BENCH_MODEL_PLAN_GOALS, BENCH_MODEL_CONCURRENCY, BENCH_TIMEOUT_MS (600000)
 * also size it; BENCH_KEEP_TOPICS=1 keeps its topics and groups.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { repoRoot, type InfraUrls } from "../lib/config.js";
import { defineCommand, parseCommandArgs, wholeNumber } from "../lib/cli-args.js";
import { kafkaClient } from "../lib/kafka.js";
import { writeTinyGguf } from "../processors/ai/tiny-gguf.js";
import type { Role } from "../processors/domain/directory.js";
import { ROLES, startHierarchy, type RunningHierarchy } from "../processors/hierarchy.js";
import type { TopologyConfig, WorkerGroup } from "../processors/topology.js";
import { submitGoal } from "../producers/commands.js";
import { EventWriter } from "../producers/writer.js";
import { physicalTopic } from "../schemas/catalog.js";
import { Codec } from "../schemas/codec.js";
import type { TaskSpec } from "../schemas/generated/types.js";
import { EventReader, typed, type PolityEvent } from "../schemas/reader.js";
import { cpuWindow, percentile, slotsOf, waitFor, warmCodec, withAdmin } from "./flow.js";

type Say = (line: string) => void;
type Of<T extends PolityEvent["type"]> = Extract<PolityEvent, { type: T }>["value"];

const EVENT_TOPICS = ["polity.goals.events", "polity.tasks.events"];
const FINAL = new Set(["GoalCompleted", "GoalFailed", "GoalRejected", "GoalStopped"]);
/** The issue's targets for the overhead (wall - model), in ms. */
export const MODEL_OVERHEAD_TARGET = { p50: 50, p99: 200 };
/** The answer every worker gives: short, since a random-weight model fills a string to its maxLength. */
const OUTPUT_SCHEMA = {
  type: "object",
  properties: { result: { type: "string", maxLength: 40 } },
  required: ["result"],
  additionalProperties: false,
};
const MAX_TOKENS = 100;
/** domain -> specializations; one model worker each. */
const DOMAINS: Record<string, string[]> = { backend: ["api", "database"], testing: ["unit-test"] };

export const MODELS_BENCH_COMMAND = defineCommand({
  name: "bench models",
  summary:
    "orchestration overhead per model task (embedded runtime, tiny GGUF) beside the model call's own time, and the plan step's",
  options: {
    quick: { type: "boolean", help: "small sizes (also BENCH_QUICK=1)" },
    goals: { type: "string", value: "N", help: "goals of 5 model tasks (default 20; --quick 3; or BENCH_MODEL_GOALS)" },
    "plan-goals": {
      type: "string",
      value: "P",
      help: "goals without tasks, planned by the model (default 5; --quick 1; or BENCH_MODEL_PLAN_GOALS)",
    },
    concurrency: {
      type: "string",
      value: "C",
      help: "goals in flight at once (default 1; or BENCH_MODEL_CONCURRENCY)",
    },
    "timeout-ms": {
      type: "string",
      value: "ms",
      help: "the most one model goal may take (default 600000; --quick 300000; or BENCH_TIMEOUT_MS)",
    },
  },
  notes: "BENCH_KEEP_TOPICS=1 keeps the run's topics.",
});

function options(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const { values } = parseCommandArgs(MODELS_BENCH_COMMAND, args);
  const quick = values.quick || env.BENCH_QUICK === "1";
  const whole = (
    flag: "goals" | "plan-goals" | "concurrency" | "timeout-ms",
    name: string,
    full: number,
    q: number,
    min = 1,
  ) => wholeNumber(flag, values[flag] ?? env[name] ?? String(quick ? q : full), min);
  return {
    quick,
    goals: whole("goals", "BENCH_MODEL_GOALS", 20, 3),
    planGoals: whole("plan-goals", "BENCH_MODEL_PLAN_GOALS", 5, 1, 0),
    concurrency: whole("concurrency", "BENCH_MODEL_CONCURRENCY", 1, 1),
    timeoutMs: whole("timeout-ms", "BENCH_TIMEOUT_MS", 600_000, 300_000),
    keepTopics: env.BENCH_KEEP_TOPICS === "1",
  };
}
type Options = ReturnType<typeof options>;

/** Model workers on the embedded runtime, with room for every task in flight (no queue before the worker). */
function modelTopology(modelFile: string, concurrency: number): TopologyConfig {
  const worker = (): WorkerGroup => ({
    count: 1,
    capacity: 2 * concurrency,
    executor: "model",
    model: { model: "local", maxTokens: MAX_TOKENS, outputSchema: OUTPUT_SCHEMA },
  });
  const domains = Object.fromEntries(
    Object.entries(DOMAINS).map(([d, specs]) => [
      d,
      { mayors: 1, workers: Object.fromEntries(specs.map((s) => [s, worker()])) },
    ]),
  );
  return {
    simulated: { seed: 1, meanDurationMs: 0, failureRate: 0 },
    models: { local: { backend: "embedded", file: modelFile, threads: 1 } },
    topologies: { aamas: { planner: { kind: "model", maxTasks: 3, maxAttempts: 3 }, domains } },
  };
}

/** 5 tasks: t0 -> (t1, t2) -> t3 -> t4, crossing both domains; at most two run at once. */
export function modelTaskGraph(): TaskSpec[] {
  const none = { phase: null, estimatedEffortMs: null, priority: null, inputs: {}, timeoutMs: null };
  const task = (id: string, domain: string, specialization: string, dependsOn: string[], title: string) => ({
    ...none,
    id,
    title,
    description: `${title}, in one short sentence`,
    domain,
    specialization,
    dependsOn,
  });
  return [
    task("t0", "backend", "api", [], "Design the todo API"),
    task("t1", "backend", "database", ["t0"], "Design the todo table"),
    task("t2", "testing", "unit-test", ["t0"], "List the API's test cases"),
    task("t3", "backend", "api", ["t1", "t2"], "Write the create endpoint"),
    task("t4", "testing", "unit-test", ["t3"], "Test the create endpoint"),
  ];
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export interface Dist {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => r1(percentile(s, p));
  return {
    n: s.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    max: r1(s.at(-1) ?? NaN),
    min: r1(s[0] ?? NaN),
    mean: r1(sum(s) / Math.max(1, s.length)),
  };
}

const ms = (d: Date) => d.getTime();

/** Per task of a goal: wall, model, overheads, hand-off; from the goal's decoded events. */
function taskFigures(events: PolityEvent[]) {
  const of = <T extends PolityEvent["type"]>(type: T): Of<T>[] =>
    events.flatMap((e) => (e.type === type ? [e.value as Of<T>] : []));
  // The president's assignment (to a governor), attempt 1: the moment the task became ready.
  const assigned = new Map<string, Of<"TaskAssigned">>();
  for (const a of of("TaskAssigned")) {
    if (a.attempt !== 1 || (a.assigneeTier !== "GOVERNOR" && a.assigneeTier !== "SUB_MASTER")) continue;
    const known = assigned.get(a.taskId);
    if (!known || ms(a.envelope.occurredAt) < ms(known.envelope.occurredAt)) assigned.set(a.taskId, a);
  }
  const started = of("TaskStarted");
  const completed = of("TaskCompleted");
  const completedAt = new Map(completed.map((c) => [c.taskId, ms(c.envelope.occurredAt)]));
  const specs = new Map(of("GoalDecomposed").flatMap((d) => d.tasks.map((t) => [t.id, t] as const)));
  const rows = [];
  for (const c of completed) {
    const a = assigned.get(c.taskId);
    const s = started.filter((x) => x.taskId === c.taskId && x.agentId === c.agentId && x.attempt === c.attempt).at(-1);
    if (!a || !s || !c.usage) continue;
    const [done, model] = [ms(c.envelope.occurredAt), c.usage.latencyMs];
    const deps = specs.get(c.taskId)?.dependsOn ?? [];
    const depsDone = deps.map((d) => completedAt.get(d)).filter((x): x is number => x !== undefined);
    rows.push({
      taskId: c.taskId,
      wallMs: done - ms(a.envelope.occurredAt),
      modelMs: model,
      overheadMs: done - ms(a.envelope.occurredAt) - model,
      workerOverheadMs: done - ms(s.envelope.occurredAt) - model,
      executorMs: c.durationMs,
      handoffMs:
        deps.length > 0 && depsDone.length === deps.length ? ms(a.envelope.occurredAt) - Math.max(...depsDone) : null,
      tokensIn: c.usage.tokensIn,
      tokensOut: c.usage.tokensOut,
    });
  }
  return { rows, failedAttempts: of("TaskFailed").length, timedOut: of("TaskTimedOut").length };
}

/** Plan overhead per PlanProposed: PlanProposed - PlanRequested - the model call. */
function planFigures(events: PolityEvent[]) {
  const requested = new Map<string, Of<"PlanRequested">>();
  for (const e of events) if (e.type === "PlanRequested") requested.set(e.value.requestId, e.value);
  const rows = [];
  for (const e of events) {
    if (e.type !== "PlanProposed") continue;
    const p = e.value;
    const r = requested.get(p.requestId);
    if (!r || !p.usage) continue;
    const wall = ms(p.envelope.occurredAt) - ms(r.envelope.occurredAt);
    rows.push({
      requestId: p.requestId,
      wallMs: wall,
      modelMs: p.usage.latencyMs,
      overheadMs: wall - p.usage.latencyMs,
      tokensOut: p.usage.tokensOut,
      accepted: p.accepted,
      tasks: p.tasks.length,
      error: p.error,
    });
  }
  return rows;
}

async function removePrefix(prefix: string, urls: InfraUrls, say: Say): Promise<void> {
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-bench-models-admin", true);
  await withAdmin(kafka, async (admin) => {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups(groups);
  }).catch((e: Error) => say(`could not delete the topics and groups of ${prefix}: ${e.message}`));
}

async function runModels(urls: InfraUrls, prefix: string, opts: Options, say: Say) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "polity-bench-models-"));
  const modelFile = path.join(dir, "tiny.gguf");
  writeTinyGguf(modelFile);
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-bench-models", true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const roles = ROLES.filter((r) => r !== "health");
  const errors: string[] = [];
  const log = (line: string) => {
    if (!/fail|error|could not/i.test(line)) return;
    errors.push(line);
    say(`hierarchy: ${line}`);
  };
  const byGoal = new Map<string, PolityEvent[]>();
  const finals = new Map<string, PolityEvent>();
  let plansDone = 0;
  const seen = new Set<string>();
  let hierarchy: RunningHierarchy | undefined;
  let reader: EventReader | undefined;
  let writer: EventWriter | undefined;
  let progress: NodeJS.Timeout | undefined;
  try {
    const topology = modelTopology(modelFile, opts.concurrency);
    hierarchy = await startHierarchy({ kafka, codec, topology, roles, topicPrefix: prefix, heartbeats: false, log });
    const h = hierarchy;
    await waitFor(() => h.hosts.every((x) => x.livePartitions >= slotsOf(x.role as Role)), 60_000, "the tiers");
    say(`models: ${h.hosts.length} tiers live; model workers on embedded:tiny.gguf (threads 1)`);
    reader = await EventReader.start({
      kafka,
      codec,
      groupId: `${prefix}bench-models-reader`,
      topics: EVENT_TOPICS.map((t) => physicalTopic(t, prefix)),
      topicPrefix: prefix,
      fromBeginning: true,
      handle: async (raw) => {
        // At least once: a record handed over again after a rebalance is counted once.
        const position = `${raw.topic}:${raw.partition}@${raw.offset}`;
        if (seen.has(position)) return;
        seen.add(position);
        const e = typed(raw);
        const goalId = (e.value as { goalId?: string }).goalId;
        if (!goalId) return;
        const list = byGoal.get(goalId) ?? [];
        byGoal.set(goalId, list);
        list.push(e);
        if (e.type === "PlanProposed") plansDone++;
        else if (FINAL.has(e.type) && !finals.has(goalId)) finals.set(goalId, e);
      },
    });
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
    await warmCodec(codec);
    const w = writer;
    const who = { tenantId: "bench", userId: "bench" };
    const tasks = modelTaskGraph();
    const run = async (goalId: string, planned: boolean) => {
      const request = planned
        ? { goalId, title: "A todo API with tests", description: "A REST API for todo items, and unit tests for it" }
        : { goalId, kind: "GOAL" as const, title: `model bench goal ${goalId}`, topology: "aamas" as const, tasks };
      await submitGoal(w, who, { ...request, domainHints: Object.keys(DOMAINS) });
      await waitFor(() => finals.has(goalId), opts.timeoutMs, `the end of ${goalId}`);
    };
    /** Runs the goals `concurrency` at a time. */
    const pool = async (ids: string[], planned: boolean) => {
      const queue = [...ids];
      const lane = async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) await run(id, planned);
      };
      await Promise.all(Array.from({ length: Math.min(opts.concurrency, ids.length) }, lane));
    };

    const t0 = performance.now();
    say("models: warm-up goal (loads the model, compiles the answer grammar)");
    await run("warmup", false);
    say(`models: warm-up done in ${((performance.now() - t0) / 1000).toFixed(1)} s (${finals.get("warmup")!.type})`);

    const goalIds = Array.from({ length: opts.goals }, (_, i) => `model-goal-${i}`);
    const planIds = Array.from({ length: opts.planGoals }, (_, i) => `plan-goal-${i}`);
    const t1 = performance.now();
    const tasksDone = () =>
      sum(goalIds.map((g) => (byGoal.get(g) ?? []).filter((e) => e.type === "TaskCompleted").length));
    const overheadsSoFar = () =>
      dist(
        goalIds
          .filter((g) => finals.has(g))
          .flatMap((g) => taskFigures(byGoal.get(g) ?? []).rows.map((r) => r.overheadMs)),
      );
    progress = setInterval(() => {
      const s = ((performance.now() - t1) / 1000).toFixed(1);
      const goals = goalIds.filter((g) => finals.has(g)).length;
      const plans = planIds.filter((g) => finals.has(g)).length;
      const o = overheadsSoFar();
      const so = o.n > 0 ? `; overhead so far p50 ${o.p50} ms, p99 ${o.p99} ms` : "";
      say(
        `models ${s}s: ${goals}/${opts.goals} goals, ${tasksDone()}/${opts.goals * tasks.length} tasks${so}` +
          (opts.planGoals > 0 ? `; planned goals ${plans}/${opts.planGoals}, ${plansDone} plans` : ""),
      );
    }, 5_000);
    say(`models: ${opts.goals} goals x ${tasks.length} model tasks, ${opts.concurrency} at a time`);
    const cpu = cpuWindow();
    await pool(goalIds, false);
    const cpuFigures = cpu();
    const windowMs = performance.now() - t1;
    say(`models: ${opts.goals} goals ended in ${(windowMs / 1000).toFixed(1)} s`);
    // A goal's end is on the goals topic, its tasks' on the tasks topic: the reader may see the end first.
    const all = () => tasksDone() >= opts.goals * tasks.length;
    await waitFor(all, 10_000, "the last TaskCompleted").catch(() => say(`models: ${tasksDone()} tasks completed`));
    if (opts.planGoals > 0) {
      say(`models: ${opts.planGoals} goals without tasks, planned by the model`);
      await pool(planIds, true);
    }
    clearInterval(progress);
    // The last events of a goal (its snapshot) may follow its end; the figures need only the tasks'.
    return { goalIds, planIds, byGoal, finals, windowMs, cpu: cpuFigures, errors, tasksPerGoal: tasks.length };
  } finally {
    clearInterval(progress);
    await reader?.stop().catch(() => undefined);
    await writer?.disconnect().catch(() => undefined);
    await hierarchy?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runModelsBench(urls: InfraUrls, args: string[] = []): Promise<number> {
  return (await modelsBench(urls, args)).code;
}

export type ModelsResult = Awaited<ReturnType<typeof modelsBench>>["result"];

/**
 * The model-task bench: prints its table and returns its result; writes
 * bench/results/models-<at>.json unless `write` is false (`npm run bench` keeps it in its report).
 */
export async function modelsBench(urls: InfraUrls, args: string[] = [], { write = true } = {}) {
  const opts = options(args);
  const started = performance.now();
  const say: Say = (line) =>
    process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}\n`);
  const at = new Date().toISOString();
  const prefix = `bench-models-${at.replace(/[-:.TZ]/g, "").slice(0, 17)}.`;
  const loadBefore = os.loadavg().map(r1);
  say(`topic prefix ${prefix}; ${opts.goals} goals, ${opts.planGoals} planned goals; ${os.cpus().length} cpus`);
  let run: Awaited<ReturnType<typeof runModels>>;
  try {
    run = await runModels(urls, prefix, opts, say);
  } finally {
    if (!opts.keepTopics) await removePrefix(prefix, urls, say);
  }

  const outcomes = (ids: string[]) => {
    const counts: Record<string, number> = {};
    for (const id of ids) {
      const type = run.finals.get(id)?.type ?? "none";
      counts[type] = (counts[type] ?? 0) + 1;
    }
    return counts;
  };
  const perGoal = run.goalIds.map((g) => taskFigures(run.byGoal.get(g) ?? []));
  const rows = perGoal.flatMap((g) => g.rows);
  if (rows.length === 0)
    throw new Error(`no model task completed (goals ended: ${JSON.stringify(outcomes(run.goalIds))})`);
  const plans = run.planIds.flatMap((g) => planFigures(run.byGoal.get(g) ?? []));
  const [tokensOut, modelMsTotal] = [sum(rows.map((r) => r.tokensOut)), sum(rows.map((r) => r.modelMs))];
  const overhead = dist(rows.map((r) => r.overheadMs));
  const workerOverhead = dist(rows.map((r) => r.workerOverheadMs));
  const model = dist(rows.map((r) => r.modelMs));
  const handoffs = rows.flatMap((r) => (r.handoffMs === null ? [] : [r.handoffMs]));
  const planOverhead = plans.length > 0 ? dist(plans.map((p) => p.overheadMs)) : null;
  const result = {
    at,
    command: `npm run bench:models${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`,
    options: { ...opts, tasksPerGoal: run.tasksPerGoal, maxTokens: MAX_TOKENS, outputSchema: OUTPUT_SCHEMA },
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, platform: process.platform },
    loadAverage: { before: loadBefore, after: os.loadavg().map(r1) },
    topicPrefix: prefix,
    runtime:
      "embedded (node-llama-cpp), tiny random-weight GGUF (processors/ai/tiny-gguf.ts), threads 1, 1 context sequence",
    notes:
      "occurredAt of the envelopes, all tiers in this process (one clock). wall: the president's TaskAssigned (attempt 1) to TaskCompleted; " +
      "model: usage.latencyMs (the call, waiting for the model's free context sequence included); overhead = wall - model; " +
      "worker overhead = TaskCompleted - TaskStarted - model; hand-off: the president's TaskAssigned - the last TaskCompleted of the task's dependencies (not in wall); " +
      "plan overhead = PlanProposed - PlanRequested - usage.latencyMs. One warm-up goal first (model load, grammar compilation).",
    goals: { submitted: run.goalIds.length, outcomes: outcomes(run.goalIds), windowMs: r1(run.windowMs) },
    tasks: {
      completed: rows.length,
      expected: run.goalIds.length * run.tasksPerGoal,
      failedAttempts: sum(perGoal.map((g) => g.failedAttempts)),
      timedOut: sum(perGoal.map((g) => g.timedOut)),
    },
    overheadMs: overhead,
    workerOverheadMs: workerOverhead,
    modelMs: model,
    wallMs: dist(rows.map((r) => r.wallMs)),
    handoffMs: handoffs.length > 0 ? dist(handoffs) : null,
    tokensPerSecond: r1(tokensOut / Math.max(1e-9, modelMsTotal / 1000)),
    tokensOut: dist(rows.map((r) => r.tokensOut)),
    tokensIn: dist(rows.map((r) => r.tokensIn)),
    overheadToModel: {
      /** overhead p50 / model p50. */
      p50: Math.round((overhead.p50 / Math.max(1e-9, model.p50)) * 1000) / 1000,
      /** Sum of the overheads / sum of the model times. */
      total: Math.round((sum(rows.map((r) => r.overheadMs)) / Math.max(1e-9, modelMsTotal)) * 1000) / 1000,
    },
    target: MODEL_OVERHEAD_TARGET,
    met: { p50: overhead.p50 <= MODEL_OVERHEAD_TARGET.p50, p99: overhead.p99 <= MODEL_OVERHEAD_TARGET.p99 },
    planning:
      plans.length > 0
        ? {
            goals: run.planIds.length,
            outcomes: outcomes(run.planIds),
            plans: plans.length,
            accepted: plans.filter((p) => p.accepted).length,
            overheadMs: planOverhead,
            modelMs: dist(plans.map((p) => p.modelMs)),
            tokensPerSecond: r1(
              sum(plans.map((p) => p.tokensOut)) / Math.max(1e-9, sum(plans.map((p) => p.modelMs)) / 1000),
            ),
            errors: plans.flatMap((p) => (p.error ? [p.error] : [])).slice(0, 5),
          }
        : null,
    cpu: run.cpu,
    hierarchyErrors: run.errors.length,
    firstError: run.errors[0],
  };

  const row = (...cells: unknown[]) => `| ${cells.join(" | ")} |`;
  const d = (x: Dist | null) => (x ? [x.p50, x.p95, x.p99, x.max].map((v) => `${v} ms`) : ["-", "-", "-", "-"]);
  const met = (ok: boolean) => (ok ? "met" : "**not met**");
  const out = [
    `${rows.length} model tasks (${run.goalIds.length} goals x ${run.tasksPerGoal}, ${opts.concurrency} at a time), ` +
      `goals ${JSON.stringify(result.goals.outcomes)}, ${result.tasks.failedAttempts} failed attempts`,
    "",
    row("per model task", "p50", "p95", "p99", "max", "target"),
    row("---", "---", "---", "---", "---", "---"),
    row(
      "**overhead: wall - model**",
      ...d(overhead),
      `p50 <= ${MODEL_OVERHEAD_TARGET.p50} ms ${met(result.met.p50)}, p99 <= ${MODEL_OVERHEAD_TARGET.p99} ms ${met(result.met.p99)}`,
    ),
    row("worker overhead: TaskStarted to TaskCompleted - model", ...d(workerOverhead), "-"),
    row("model call (usage.latencyMs)", ...d(model), "-"),
    row("wall: president's TaskAssigned to TaskCompleted", ...d(result.wallMs), "-"),
    row("hand-off: dependencies done to the president's TaskAssigned", ...d(result.handoffMs), "-"),
    row("plan overhead: PlanRequested to PlanProposed - model", ...d(planOverhead), "-"),
    row("plan model call", ...d(result.planning?.modelMs ?? null), "-"),
    "",
    `model: ${result.tokensPerSecond} tokens/s out (tokens out p50 ${result.tokensOut.p50}, in p50 ${result.tokensIn.p50}); ` +
      `overhead / model: ${result.overheadToModel.p50} at p50, ${result.overheadToModel.total} in total`,
  ];
  if (result.planning)
    out.push(
      `planning: ${result.planning.plans} plans for ${result.planning.goals} goals, ${result.planning.accepted} accepted, ` +
        `${result.planning.tokensPerSecond} tokens/s; goals ${JSON.stringify(result.planning.outcomes)}`,
    );
  const { machineBusy: busy, processCpuCores: cores, eventLoopUtilization: loop } = run.cpu;
  out.push(
    `CPU while the task goals ran: machine ${Math.round(busy * 100)}% busy (${os.cpus().length} cpus), ` +
      `this process ${cores} cores, event loop ${Math.round(loop * 100)}% utilized; ${run.errors.length} tier errors logged`,
  );
  for (const line of out) console.log(line);

  if (write) {
    const file = path.join(repoRoot, "bench/results", `models-${at.replace(/[:.]/g, "-")}.json`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`wrote ${path.relative(repoRoot, file)}`);
  }
  return { code: 0, result };
}
