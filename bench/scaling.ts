/**
 * `npm run bench -- --only scaling,goalsize` (or `node infra/bootstrap.mjs bench scaling`): two curves.
 *
 * Scaling: tasks/s with the worker tier in 1, 2 and 4 instances. For each count K, on topics of its
 * own, this process runs every other tier (president, governor, mayor, policy, resources, scaler)
 * and K child processes (bench/worker-instance.ts) each run the worker role, all in the one consumer
 * group `<prefix>polity-worker`, which splits the task partitions between them (co-partitioned, as
 * processors/host/assignor.ts does it). Once every partition of every tier is live, each repetition
 * submits G goals of the flow bench's M-task DAG at once and times first submit to the last
 * GoalCompleted seen by a read_committed reader; tasks/s = G x M / that time. Goal latency is
 * SubmitGoal sent to GoalCompleted produced. Simulated executors, `taskMs` mean duration.
 *
 * Goal size: goal latency for one goal of 10, 100 and 1000 tasks, alone on the hierarchy (all tiers
 * in this process): a layered DAG of `depth` layers (10 tasks: a chain), each task depending on two
 * of the layer above, so that every size has the same critical path and only the width grows.
 *
 * No heartbeats (and so no health monitor): the log holds only the goals' work.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Kafka } from "kafkajs";
import { repoRoot, urlsToEnv, type InfraUrls } from "../lib/config.js";
import { kafkaClient } from "../lib/kafka.js";
import type { Role } from "../processors/domain/directory.js";
import { ROLES, startHierarchy, type RunningHierarchy } from "../processors/hierarchy.js";
import type { TopologyConfig } from "../processors/topology.js";
import { ensureTopics } from "../producers/admin.js";
import { submitGoal } from "../producers/commands.js";
import { HEADER } from "../producers/envelope.js";
import { EventWriter } from "../producers/writer.js";
import { physicalTopic } from "../schemas/catalog.js";
import { Codec } from "../schemas/codec.js";
import type { TaskSpec } from "../schemas/generated/types.js";
import {
  benchTopology,
  cpuWindow,
  DOMAINS,
  percentile,
  slotsOf,
  taskGraph,
  waitFor,
  warmCodec,
  withAdmin,
} from "./flow.js";
import type { InstanceReport } from "./worker-instance.js";

type Say = (line: string) => void;

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

const r1 = (x: number) => Math.round(x * 10) / 10;
export const spread = (runs: number[]): Spread => {
  const s = [...runs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: r1(median), min: r1(s[0]!), max: r1(s.at(-1)!), runs: runs.map(r1) };
};

export interface ScalingOptions {
  /** Instance counts of the scaled tiers, e.g. [1, 2, 4]. */
  instances: number[];
  /** The tiers run in the instances: the worker tier (default), or every tier (`all`). */
  scaled: "worker" | "all";
  goals: number;
  tasks: number;
  reps: number;
  /** Mean simulated task duration (ms). */
  taskMs: number;
  timeoutMs: number;
}

export interface GoalSizeOptions {
  sizes: number[];
  depth: number;
  reps: number;
  taskMs: number;
  timeoutMs: number;
}

const EVENT_TOPICS = ["polity.goals.events", "polity.tasks.events"];

/**
 * Reads the goals and tasks topics (keys and headers only, read_committed) and notes each
 * GoalCompleted with its producer's timestamp, and every TaskCompleted, by goal.
 */
class Observer {
  readonly completed = new Map<string, { readAt: number; producedAt: number }>();
  readonly tasksDone = new Map<string, number>();
  failure = "";
  events = 0;
  private joined = false;
  private readonly consumer;

  constructor(kafka: Kafka, prefix: string) {
    this.consumer = kafka.consumer({
      groupId: `${prefix}bench-observer`,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
    });
  }

  async start(prefix: string): Promise<void> {
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => (this.joined = true));
    await this.consumer.connect();
    const topics = EVENT_TOPICS.map((t) => physicalTopic(t, prefix));
    await this.consumer.subscribe({ topics, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const { key, headers = {}, timestamp } of batch.messages) {
          const [type, goalId] = [String(headers[HEADER.type]), String(key)];
          this.events++;
          if (type === "TaskCompleted") this.tasksDone.set(goalId, (this.tasksDone.get(goalId) ?? 0) + 1);
          else if (type === "GoalCompleted") {
            this.completed.set(goalId, { readAt: performance.now(), producedAt: Number(timestamp) });
          } else if (type === "GoalFailed" || type === "GoalRejected") this.failure ||= `${type} for ${goalId}`;
        }
      },
    });
    await waitFor(() => this.joined, 30_000, "the observer to join its group");
  }

  tasksOf(goalIds: string[]): number {
    return goalIds.reduce((n, g) => n + (this.tasksDone.get(g) ?? 0), 0);
  }

  stop(): Promise<void> {
    return this.consumer.disconnect().catch(() => undefined);
  }
}

async function removePrefix(kafka: Kafka, prefix: string, say: Say): Promise<void> {
  await withAdmin(kafka, async (admin) => {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups(groups);
  }).catch((e: Error) => say(`could not delete the topics and groups of ${prefix}: ${e.message}`));
}

async function waitLive(hierarchy: RunningHierarchy, roles: readonly Role[], timeoutMs: number): Promise<void> {
  const live = () => hierarchy.hosts.every((h) => h.livePartitions >= slotsOf(h.role as Role));
  await waitFor(live, timeoutMs, `the tiers ${roles.join(", ")} to restore`);
}

/** K worker-tier instances, each a child process; resolves once they share every task partition. */
async function startInstances(
  urls: InfraUrls,
  prefix: string,
  topology: TopologyConfig,
  roles: readonly Role[],
  k: number,
  say: Say,
) {
  const reports = new Map<number, InstanceReport>();
  const exited: string[] = [];
  const children: ChildProcess[] = [];
  for (let i = 0; i < k; i++) {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "bench", "worker-instance.ts")], {
      cwd: repoRoot,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: {
        ...process.env,
        ...urlsToEnv(urls),
        BENCH_PREFIX: prefix,
        BENCH_INSTANCE: String(i),
        BENCH_TOPOLOGY: JSON.stringify(topology),
        BENCH_ROLES: roles.join(","),
      },
    });
    child.on("message", (m) => reports.set(i, m as InstanceReport));
    child.on("exit", (code, signal) => exited.push(`worker instance ${i} exited (${code ?? signal})`));
    children.push(child);
  }
  const liveOf = (role: Role) => [...reports.values()].reduce((n, r) => n + (r.liveByRole[role] ?? 0), 0);
  const stop = async () => {
    for (const c of children) if (c.exitCode === null && c.connected) c.send("stop");
    const gone = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;
    await waitFor(() => children.every(gone), 20_000, "the worker instances to stop").catch(() => {
      for (const c of children) if (!gone(c)) c.kill("SIGKILL");
    });
  };
  try {
    // Every instance live on its share, and no rebalance for a second and a half.
    let [stableSince, last] = [performance.now(), ""];
    await waitFor(
      () => {
        if (exited.length > 0) throw new Error(exited.join("; "));
        const now = [...reports.values()].map((r) => r.live).join(",");
        if (now !== last) [stableSince, last] = [performance.now(), now];
        const each = reports.size === k && [...reports.values()].every((r) => r.live > 0 || k > slotsOf("worker"));
        const all = roles.every((role) => liveOf(role) === slotsOf(role));
        return each && all && performance.now() - stableSince > 1_500;
      },
      120_000,
      `${k} instance(s) of ${roles.join(", ")} to share their partitions`,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  const split = [...reports.values()].sort((a, b) => a.instance - b.instance).map((r) => r.liveByRole.worker ?? 0);
  say(`scaling: ${k} instance(s) of ${roles.join(", ")} live, partitions split ${split.join("+")}`);
  return { reports, stop, split, exited };
}

const ctx = { tenantId: "bench", userId: "bench" };

export async function scalingCurve(urls: InfraUrls, opts: ScalingOptions, say: Say) {
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-bench-scaling", true);
  const topology = benchTopology(opts.goals * opts.tasks, opts.taskMs);
  const tasks = taskGraph(opts.tasks);
  const tiers = ROLES.filter((r) => r !== "health");
  const scaled = opts.scaled === "all" ? tiers : (["worker"] as Role[]);
  const roles = tiers.filter((r) => !scaled.includes(r));
  const errors: string[] = [];
  const log = (line: string) => {
    if (!/fail|error|could not/i.test(line)) return;
    errors.push(line);
    say(`hierarchy: ${line}`);
  };
  const points = [];
  for (const k of opts.instances) {
    const errorsBefore = errors.length;
    const prefix = `bench-scale-${randomUUID().slice(0, 8)}-k${k}.`;
    say(
      `scaling: ${k} instance(s) of ${scaled.join(", ")} on prefix ${prefix}; ${opts.reps} reps of ${opts.goals} x ${opts.tasks}`,
    );
    await ensureTopics(kafka, prefix);
    let hierarchy: RunningHierarchy | undefined;
    let instances: Awaited<ReturnType<typeof startInstances>> | undefined;
    let writer: EventWriter | undefined;
    const observer = new Observer(kafka, prefix);
    try {
      hierarchy = await startHierarchy({ kafka, codec, topology, roles, topicPrefix: prefix, heartbeats: false, log });
      await waitLive(hierarchy, roles, 60_000);
      instances = await startInstances(urls, prefix, topology, scaled, k, say);
      writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
      await observer.start(prefix);
      await warmCodec(codec);
      const reps = [];
      for (let rep = 1; rep <= opts.reps; rep++) {
        const ids = Array.from({ length: opts.goals }, (_, i) => `scale-k${k}-r${rep}-g${i}`);
        const sentAt = new Map<string, number>();
        const [cpu, cpuBefore] = [cpuWindow(), [...instances.reports.values()].map((r) => r.cpuSeconds)];
        const restores = () => [...instances!.reports.values()].reduce((n, x) => n + x.restores, 0);
        const restoresBefore = restores();
        const t0 = performance.now();
        const progress = setInterval(() => {
          const done = ids.filter((g) => observer.completed.has(g)).length;
          const s = ((performance.now() - t0) / 1000).toFixed(1);
          say(
            `scaling k=${k} rep ${rep}/${opts.reps} ${s}s: ${done}/${opts.goals} goals, ${observer.tasksOf(ids)} tasks`,
          );
        }, 5_000);
        try {
          for (const goalId of ids) {
            sentAt.set(goalId, Date.now());
            await submitGoal(writer, ctx, { goalId, kind: "GOAL", title: goalId, topology: "aamas", tasks });
          }
          const done = () => observer.failure !== "" || ids.every((g) => observer.completed.has(g));
          await waitFor(done, opts.timeoutMs, `${opts.goals} goals with ${k} worker instance(s)`);
          if (observer.failure) throw new Error(observer.failure);
        } finally {
          clearInterval(progress);
        }
        const end = Math.max(...ids.map((g) => observer.completed.get(g)!.readAt));
        const windowMs = end - t0;
        const latencies = ids.map((g) => observer.completed.get(g)!.producedAt - sentAt.get(g)!).sort((a, b) => a - b);
        const after = [...instances.reports.values()].map((r) => r.cpuSeconds);
        const workerCpu = after.reduce((n, c, i) => n + c - (cpuBefore[i] ?? 0), 0) / (windowMs / 1000);
        const r = {
          rep,
          windowMs: r1(windowMs),
          tasksPerSecond: r1((opts.goals * opts.tasks) / (windowMs / 1000)),
          goalLatencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
          cpu: { ...cpu(), instancesCores: Math.round(workerCpu * 1000) / 1000 },
          /** Partitions the instances restored during the rep: a rebalance, or a failed transaction. */
          instanceRestores: restores() - restoresBefore,
        };
        say(
          `scaling k=${k} rep ${rep}/${opts.reps}: ${r.tasksPerSecond} tasks/s, goal latency p50 ${r.goalLatencyMs.p50} ms, ` +
            `machine ${Math.round(r.cpu.machineBusy * 100)}% busy, instances ${r.cpu.instancesCores} cores, ${r.instanceRestores} restores in them`,
        );
        reps.push(r);
        await new Promise((res) => setTimeout(res, 500));
      }
      points.push({
        instances: k,
        partitionSplit: instances.split,
        tasksPerSecond: spread(reps.map((r) => r.tasksPerSecond)),
        goalLatencyP50Ms: spread(reps.map((r) => r.goalLatencyMs.p50)),
        goalLatencyP99Ms: spread(reps.map((r) => r.goalLatencyMs.p99)),
        /** Failures the tiers of this process logged (transactions retried, restores); see the bench's output. */
        hierarchyErrors: errors.length - errorsBefore,
        firstError: errors[errorsBefore],
        reps,
      });
    } finally {
      await observer.stop();
      await writer?.disconnect().catch(() => undefined);
      await instances?.stop();
      await hierarchy?.stop();
      await removePrefix(kafka, prefix, say);
    }
  }
  const base = points[0]?.tasksPerSecond.median ?? NaN;
  return {
    notes:
      (opts.scaled === "all"
        ? "Every tier in each of K child processes (a consumer group per tier, each splitting its partitions between the K); the bench process only submits and observes. "
        : "Worker tier in K child processes (one consumer group, co-partitioned split of the task partitions); every other tier in the bench process. ") +
      `Each rep: ${opts.goals} goals x ${opts.tasks} tasks (flow bench DAG) submitted at once; tasks/s over first submit to last GoalCompleted read. ` +
      `Simulated executors, mean ${opts.taskMs} ms. Speedup: median tasks/s over that of the first point.`,
    options: opts,
    cpus: os.cpus().length,
    points: points.map((p) => ({ ...p, speedup: Math.round((p.tasksPerSecond.median / base) * 1000) / 1000 })),
  };
}

/**
 * n tasks in `depth` layers of width ceil(n / depth) (the last may be shorter); task j of a layer
 * depends on tasks j and j+1 (mod width) of the layer above. Domains and specializations rotate.
 */
export function layeredGraph(n: number, depth: number): TaskSpec[] {
  const none = { description: null, phase: null, estimatedEffortMs: null, priority: null, inputs: {}, timeoutMs: null };
  const domains = Object.entries(DOMAINS).map(([domain, [, specs]]) => ({ domain, specs: Object.keys(specs) }));
  const width = Math.max(1, Math.ceil(n / Math.max(1, depth)));
  return Array.from({ length: n }, (_, i) => {
    const [layer, j] = [Math.floor(i / width), i % width];
    const above = layer === 0 ? [] : [...new Set([j, (j + 1) % width])].map((x) => (layer - 1) * width + x);
    const { domain, specs } = domains[j % domains.length]!;
    const specialization = specs[layer % specs.length]!;
    const dependsOn = above.map((d) => `t${d}`);
    return { ...none, id: `t${i}`, title: `size ${n} task ${i}`, domain, specialization, dependsOn };
  });
}

export async function goalSizeLatency(urls: InfraUrls, opts: GoalSizeOptions, say: Say) {
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-bench-goal-size", true);
  const topology = benchTopology(Math.max(...opts.sizes), opts.taskMs);
  const roles = ROLES.filter((r) => r !== "health");
  const prefix = `bench-size-${randomUUID().slice(0, 8)}.`;
  const errors: string[] = [];
  const log = (line: string) => {
    if (!/fail|error|could not/i.test(line)) return;
    errors.push(line);
    say(`hierarchy: ${line}`);
  };
  say(`goal size: ${opts.sizes.join(", ")} tasks, depth ${opts.depth}, ${opts.reps} reps each; prefix ${prefix}`);
  await ensureTopics(kafka, prefix);
  let hierarchy: RunningHierarchy | undefined;
  let writer: EventWriter | undefined;
  const observer = new Observer(kafka, prefix);
  const points = [];
  try {
    hierarchy = await startHierarchy({ kafka, codec, topology, roles, topicPrefix: prefix, heartbeats: false, log });
    await waitLive(hierarchy, roles, 60_000);
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
    await observer.start(prefix);
    await warmCodec(codec);
    for (const size of opts.sizes) {
      const errorsBefore = errors.length;
      const tasks = layeredGraph(size, opts.depth);
      const reps = [];
      for (let rep = 1; rep <= opts.reps; rep++) {
        const goalId = `size-${size}-r${rep}`;
        const cpu = cpuWindow();
        const sentAt = Date.now();
        const t0 = performance.now();
        const progress = setInterval(() => {
          const s = ((performance.now() - t0) / 1000).toFixed(1);
          say(`goal size ${size} rep ${rep}/${opts.reps} ${s}s: ${observer.tasksOf([goalId])}/${size} tasks`);
        }, 5_000);
        try {
          await submitGoal(writer, ctx, { goalId, kind: "GOAL", title: goalId, topology: "aamas", tasks });
          const done = () => observer.failure !== "" || observer.completed.has(goalId);
          await waitFor(done, opts.timeoutMs, `the ${size}-task goal`);
          if (observer.failure) throw new Error(observer.failure);
        } finally {
          clearInterval(progress);
        }
        const seen = observer.completed.get(goalId)!;
        const r = {
          rep,
          latencyMs: seen.producedAt - sentAt,
          observedMs: r1(seen.readAt - t0),
          cpu: cpu(),
        };
        say(`goal size ${size} rep ${rep}/${opts.reps}: ${r.latencyMs} ms (${r1(r.latencyMs / size)} ms per task)`);
        reps.push(r);
      }
      const latency = spread(reps.map((r) => r.latencyMs));
      const width = Math.ceil(size / Math.max(1, opts.depth));
      const depth = Math.ceil(size / width);
      points.push({
        tasks: size,
        depth,
        width,
        latencyMs: latency,
        msPerTask: r1(latency.median / size),
        /** Failures the tiers logged meanwhile (transactions retried, restores); see the bench's output. */
        hierarchyErrors: errors.length - errorsBefore,
        firstError: errors[errorsBefore],
        reps,
      });
    }
  } finally {
    await observer.stop();
    await writer?.disconnect().catch(() => undefined);
    await hierarchy?.stop();
    await removePrefix(kafka, prefix, say);
  }
  return {
    notes:
      `One goal at a time on an idle hierarchy (all tiers in the bench process): a layered DAG of ${opts.depth} layers (task j depends on j and j+1 of the layer above). ` +
      `Latency: SubmitGoal sent to GoalCompleted produced. Simulated executors, mean ${opts.taskMs} ms.`,
    options: opts,
    points,
  };
}

export type ScalingResult = Awaited<ReturnType<typeof scalingCurve>>;
export type GoalSizeResult = Awaited<ReturnType<typeof goalSizeLatency>>;
