/**
 * `npm run soak [-- --minutes 10 --rate 0.5 --task-ms 100 --keep]`: the whole platform under a
 * steady load for a while, watched for lag that does not stay bounded and memory that does not stay flat.
 *
 * On a fresh topic prefix (`soak-<id>.`, so read models of their own too: projections/run.ts
 * readModelTargets) it starts what `npm start` runs, each part in a child process of its own so
 * that each one's RSS can be read from /proc/<pid>/status:
 *   - processors: `processors/main.ts --tiers all` (every tier, heartbeats on, as in production),
 *     on the production topology (processors/config/topology.json) with the simulated executors'
 *     mean duration set to --task-ms (100 ms);
 *   - projections: this file with `--child projections` (startProjections with the models `npm start`
 *     runs, readModelsFromEnv, plus the metrics server whose polity_projection_lag_events is sampled);
 *   - gateway: this file with `--child gateway` (startGateway, as `npm start`).
 * Load: --rate goals per second (0.5: one goal every 2 s), each the ten-task DAG of the tests,
 * alternating the aamas and dgm topologies, POSTed to the gateway's /api/v1/goals with an
 * operator token. This process follows polity.goals.events for the goals' final events.
 *
 * Every --sample-s (10) seconds: the lag of every tier consumer group (committed offsets against
 * the log end of its input topics; a caught-up transactional consumer shows up to 1 per partition,
 * the commit marker after its last record), the lag of every projection (from the projections
 * child's metrics: log end minus the store's checkpoint, since projections commit no Kafka offsets),
 * each child's VmRSS, goals submitted / finished, the load average; one progress line each.
 *
 * Verdicts (over the load period; samples of the drain after it are recorded but not judged):
 *   - lag bounded: max total lag (tiers + projections) over the second half <= the events appended
 *     to the consumed topics in one sample interval (mean over the second half, at least 200), i.e.
 *     no sample found the consumers more than one interval of input behind; and no upward trend:
 *     mean of the last quarter <= 1.5 x mean of the second quarter + 20.
 *   - memory flat, per child and for two measures: RSS, and live memory (heapUsed + external right
 *     after a full collection, which bench/heap-probe.ts, preloaded into every child with
 *     --expose-gc, writes when the soak sends SIGUSR2 at each sample). For each: least-squares slope
 *     over the second half <= --mem-slope MB/min (1), and last-minute mean - early mean <= the same
 *     slope x the minutes between the two windows. The early window is the two minutes after the
 *     first third of the run, which is warm-up (bounded buffers such as the gateway's replay buffer
 *     fill there); the second quarter when the run is shorter than 6 minutes. Live memory is what
 *     a leak grows; RSS alone also moves with V8's choice of when to collect, which is why the probe
 *     collects before it measures.
 *     1 MB/min is 1.4 GB a day: a process growing faster would need restarts within a day or two
 *     in a modest container, so that is called a leak; slower drift is within the GC's sawtooth
 *     over a few minutes and cannot be told apart from noise at this length.
 * Exit 0 only when both hold and every goal submitted before the last 30 s of load reached a final
 * state (GoalCompleted, GoalFailed, GoalRejected, GoalStopped) by the end of the drain (--drain-s, 60).
 * Writes bench/results/soak-<timestamp>.json (every sample, the verdict, the machine) and prints a
 * markdown table. Topics, groups, the analytics schema and the state collections of the prefix are
 * removed at the end unless --keep.
 */
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { Admin, Kafka } from "kafkajs";
import { MongoClient } from "mongodb";
import pg from "pg";
import { loadConfig, repoRoot, requireUrls, urlsToEnv, type InfraUrls } from "../lib/config.js";
import { CliExit, defineCommand, parseArgvOrExit, parseCommandArgs } from "../lib/cli-args.js";
import { spawnScript } from "../lib/child.js";
import { kafkaClient } from "../lib/kafka.js";
import { logLine, runIfMain, stopOnSignal } from "../lib/process.js";
import { TIER_TOPICS, ROLES } from "../processors/hierarchy.js";
import { DEFAULT_TOPOLOGY_FILE, type TopologyConfig } from "../processors/topology.js";
import { PROJECTED_TOPICS, readModelTargets } from "../projections/run.js";
import { physicalTopic } from "../schemas/catalog.js";
import { Codec } from "../schemas/codec.js";
import { EventReader } from "../schemas/reader.js";
import type { TaskSpec } from "../schemas/generated/types.js";

const FINAL = new Set(["GoalCompleted", "GoalFailed", "GoalRejected", "GoalStopped"]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);

export const SOAK_COMMAND = defineCommand({
  name: "soak",
  summary: "the whole platform under a steady load, watched for unbounded lag and growing memory",
  options: {
    minutes: { type: "string", value: "M", default: "10", help: "how long the load runs" },
    rate: { type: "string", value: "R", default: "0.5", help: "goals per second" },
    "task-ms": { type: "string", value: "ms", default: "100", help: "mean simulated task duration (0 or more)" },
    "sample-s": { type: "string", value: "S", default: "10", help: "seconds between samples of lag and memory" },
    "drain-s": { type: "string", value: "S", default: "60", help: "seconds given to drain after the load (0 or more)" },
    "mem-slope": { type: "string", value: "MB/min", default: "1", help: "the most memory growth a part may show" },
    keep: { type: "boolean", help: "keep the run's topics and read models" },
  },
});

/** `--child projections|gateway`: how soak starts a part of `npm start` in a process of its own. */
const SOAK_CHILD_COMMAND = defineCommand({
  name: "soak (child)",
  summary: "one part of npm start, in a child process of the soak run",
  options: { child: { type: "string", value: "projections|gateway", help: "the part to run" } },
});

function options(args: string[]) {
  const { values } = parseCommandArgs(SOAK_COMMAND, args);
  const num = (flag: Exclude<keyof typeof values, "keep">, least = 0): number => {
    const n = Number(values[flag]);
    if (!Number.isFinite(n) || n <= least) throw new CliExit(2, `--${flag} ${values[flag]}: give a number > ${least}`);
    return n;
  };
  return {
    minutes: num("minutes"),
    /** Goals per second. */
    rate: num("rate"),
    taskMs: num("task-ms", -1),
    sampleS: num("sample-s"),
    drainS: num("drain-s", -1),
    memSlope: num("mem-slope"),
    keep: values.keep,
  };
}
type Options = ReturnType<typeof options>;

/** The ten-task DAG of the tests (test/support/hierarchy.ts), as the gateway's REST body wants it. */
const DAG: Pick<TaskSpec, "id" | "domain" | "specialization" | "dependsOn">[] = [
  { id: "fe-design", domain: "frontend", specialization: "react", dependsOn: [] },
  { id: "be-schema", domain: "backend", specialization: "database", dependsOn: [] },
  { id: "be-api", domain: "backend", specialization: "api", dependsOn: ["be-schema"] },
  { id: "fe-ui", domain: "frontend", specialization: "react", dependsOn: ["fe-design"] },
  { id: "fe-style", domain: "frontend", specialization: "css", dependsOn: ["fe-design"] },
  { id: "be-auth", domain: "backend", specialization: "api", dependsOn: ["be-schema"] },
  { id: "test-unit", domain: "testing", specialization: "unit-test", dependsOn: ["be-api", "be-auth"] },
  { id: "fe-integrate", domain: "frontend", specialization: "react", dependsOn: ["fe-ui", "fe-style", "be-api"] },
  { id: "test-e2e", domain: "testing", specialization: "e2e-test", dependsOn: ["fe-integrate", "test-unit"] },
  { id: "release", domain: "backend", specialization: "api", dependsOn: ["test-e2e"] },
];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * What a child's last heap probe (bench/heap-probe.ts) found after a full collection, in MB: live
 * (heapUsed + external), heap (heapTotal, V8's committed heap) and malloced (V8's own malloc'd
 * memory); null before its first probe or once it is gone.
 */
function probeMb(dir: string, pid: number | undefined): { live: number; heap: number; malloced: number } | null {
  if (!pid) return null;
  try {
    const p = JSON.parse(fs.readFileSync(path.join(dir, `${pid}.json`), "utf8")) as {
      heapUsed: number;
      heapTotal: number;
      external: number;
      malloced?: number;
    };
    return {
      live: r1((p.heapUsed + p.external) / 2 ** 20),
      heap: r1(p.heapTotal / 2 ** 20),
      malloced: r1((p.malloced ?? 0) / 2 ** 20),
    };
  } catch {
    return null;
  }
}

/** VmRSS of a process in MB, or null once it is gone. */
function rssMb(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? r1(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

interface Child {
  name: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `script` in a child process (lib/child.ts); its stop is SIGTERM, then SIGKILL after 20 s. */
async function spawnChild(name: string, script: string, args: string[], env: NodeJS.ProcessEnv, ready: string) {
  const nodeArgs = ["--expose-gc", "--import", path.join(repoRoot, "bench/heap-probe.ts")];
  const p = await spawnScript({ name, script, args, env, ready, timeoutMs: 120_000, nodeArgs });
  const stop = async () => {
    const killer = setTimeout(() => p.child.kill("SIGKILL"), 20_000);
    await p.signal("SIGTERM");
    clearTimeout(killer);
  };
  return { name, child: p.child, output: p.output, stop } satisfies Child;
}

/** Sum over partitions of (log end - committed) for a tier group's input topics; also the log ends. */
async function groupLag(admin: Admin, groupId: string, topics: string[], ends: Map<string, Map<number, number>>) {
  const committed = await admin.fetchOffsets({ groupId, topics });
  let lag = 0;
  for (const t of committed) {
    const end = ends.get(t.topic);
    if (!end) continue;
    for (const p of t.partitions) {
      const high = end.get(p.partition) ?? 0;
      const at = Number(p.offset);
      lag += Math.max(0, high - (at >= 0 ? at : 0));
    }
  }
  return lag;
}

/** polity_projection_lag_events summed per projection, from a Prometheus text page. */
async function projectionLag(metricsUrl: string): Promise<Record<string, number> | null> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(5_000) })).text();
    const out: Record<string, number> = {};
    for (const line of text.split("\n")) {
      const m = /^polity_projection_lag_events\{([^}]*)\}\s+(\S+)/.exec(line);
      if (!m) continue;
      const name = /projection="([^"]*)"/.exec(m[1]!)?.[1] ?? "?";
      out[name] = (out[name] ?? 0) + Number(m[2]);
    }
    return out;
  } catch {
    return null;
  }
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const mx = mean(xs);
  const my = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

interface Sample {
  t: number;
  phase: "load" | "drain";
  loadavg: number[];
  submitted: number;
  submitFailed: number;
  finished: number;
  completed: number;
  open: number;
  /** Mean latency (submit to final event, as seen here) of the goals that finished in this interval. */
  latencyMs: number | null;
  appended: number;
  tierLag: Record<string, number>;
  projectionLag: Record<string, number> | null;
  totalLag: number;
  rssMb: Record<string, number | null>;
  /** heapUsed + external after a full collection, from the probe asked for at the previous sample. */
  liveMb: Record<string, number | null>;
  /**
   * V8's committed heap (heapTotal) after that collection: RSS minus this is native memory, so the
   * two tell whether RSS grows in V8's heap or outside it. Recorded, not judged.
   */
  heapMb: Record<string, number | null>;
  /** What V8 holds from malloc outside its heap (v8.getHeapStatistics().malloced_memory). Recorded, not judged. */
  v8MallocMb: Record<string, number | null>;
}

export async function runSoak(urls: InfraUrls, args: string[]): Promise<number> {
  const opt = options(args);
  const config = loadConfig();
  const id = randomUUID().slice(0, 8);
  const prefix = `soak-${id}.`;
  const startedIso = new Date().toISOString();
  const say = (line: string) => console.log(`[soak] ${line}`);
  say(
    `prefix ${prefix}; ${opt.minutes} min at ${opt.rate} goal/s (10 tasks each, mean ${opt.taskMs} ms), ` +
      `sample every ${opt.sampleS} s; load average ${os.loadavg().map(r2).join(" ")} on ${os.cpus().length} cpus`,
  );

  const topology = JSON.parse(fs.readFileSync(DEFAULT_TOPOLOGY_FILE, "utf8")) as TopologyConfig;
  topology.simulated = { ...topology.simulated, meanDurationMs: opt.taskMs };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "polity-soak-"));
  const topologyFile = path.join(tmp, "topology.json");
  const probeDir = path.join(tmp, "heap");
  fs.mkdirSync(probeDir);
  fs.writeFileSync(topologyFile, JSON.stringify(topology));
  const [metricsPort, gatewayPort] = [await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...urlsToEnv(urls),
    POLITY_TOPIC_PREFIX: prefix,
    POLITY_TOPOLOGY_FILE: topologyFile,
    POLITY_METRICS_PORT: String(metricsPort),
    POLITY_GATEWAY_PORT: String(gatewayPort),
    POLITY_HOME: config.native.home,
    POLITY_HEAP_PROBE_DIR: probeDir,
  };

  const kafka = kafkaClient(urls.kafkaBrokers, `polity-soak-${id}`, true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const children: Child[] = [];
  let reader: EventReader | undefined;
  const admin = kafka.admin();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    say("starting processors (all tiers)");
    children.push(await spawnChild("processors", "processors/main.ts", ["--tiers", "all"], env, "processors ready"));
    say("starting projections");
    children.push(
      await spawnChild("projections", "bench/soak.ts", ["--child", "projections"], env, "soak child ready"),
    );
    say("starting gateway");
    children.push(await spawnChild("gateway", "bench/soak.ts", ["--child", "gateway"], env, "soak child ready"));

    // Goals: submitted at, final at.
    const submittedAt = new Map<string, number>();
    const finalAt = new Map<string, { at: number; type: string }>();
    reader = await EventReader.start({
      kafka,
      codec,
      groupId: `${prefix}soak-watch`,
      topics: [physicalTopic("polity.goals.events", prefix)],
      topicPrefix: prefix,
      fromBeginning: true,
      handle: async (e) => {
        const goalId = (e.value as { goalId?: string }).goalId;
        if (goalId && FINAL.has(e.type) && !finalAt.has(goalId)) finalAt.set(goalId, { at: Date.now(), type: e.type });
      },
    });
    await admin.connect();

    const { Auth } = await import("../gateway/auth.js");
    const token = await Auth.fromEnv(config.native.home).mint(
      { subject: "soak", role: "operator", tenantId: "soak" },
      24 * 3600,
    );
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    let submitFailed = 0;
    const failures: string[] = [];
    let n = 0;
    const submitOne = async () => {
      const goalId = `soak-${id}-${++n}`;
      const at = Date.now();
      try {
        const res = await fetch(`${gatewayUrl}/api/v1/goals`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify({
            goalId,
            title: `soak goal ${n}`,
            topology: n % 2 ? "aamas" : "dgm",
            tasks: DAG.map((t) => ({ ...t, title: `Task ${t.id}` })),
          }),
          signal: AbortSignal.timeout(30_000),
        });
        if (res.status >= 300) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
        submittedAt.set(goalId, at);
      } catch (e) {
        submitFailed++;
        if (failures.length < 20) failures.push(`${goalId}: ${(e as Error).message}`);
      }
    };

    // The consumed topics: every tier's inputs and every projection's topics.
    const groups = ROLES.map((role) => ({
      role,
      groupId: `${prefix}polity-${role}`,
      topics: TIER_TOPICS[role].inputs.map((t) => physicalTopic(t, prefix)),
    }));
    const consumed = [
      ...new Set([
        ...groups.flatMap((g) => g.topics),
        ...Object.values(PROJECTED_TOPICS)
          .flat()
          .map((t) => physicalTopic(t, prefix)),
      ]),
    ];
    const t0 = Date.now();
    const loadMs = opt.minutes * 60_000;
    const samples: Sample[] = [];
    let lastAppended: number | null = null;
    let lastFinishedCount = 0;
    const finishedSince = new Set<string>();

    const sample = async (phase: Sample["phase"]) => {
      const ends = new Map<string, Map<number, number>>();
      let appendedTotal = 0;
      for (const topic of consumed) {
        const offsets = await admin.fetchTopicOffsets(topic);
        ends.set(topic, new Map(offsets.map((o) => [o.partition, Number(o.high)])));
        appendedTotal += offsets.reduce((a, o) => a + Number(o.high), 0);
      }
      const tierLag: Record<string, number> = {};
      for (const g of groups) tierLag[g.role] = await groupLag(admin, g.groupId, g.topics, ends).catch(() => -1);
      const proj = await projectionLag(`http://127.0.0.1:${metricsPort}/metrics`);
      const totalLag =
        Object.values(tierLag).reduce((a, b) => a + Math.max(0, b), 0) +
        Object.values(proj ?? {}).reduce((a, b) => a + b, 0);
      const latencies: number[] = [];
      for (const [goalId, f] of finalAt) {
        if (finishedSince.has(goalId)) continue;
        finishedSince.add(goalId);
        const s = submittedAt.get(goalId);
        if (s !== undefined) latencies.push(f.at - s);
      }
      const finished = [...submittedAt.keys()].filter((g) => finalAt.has(g)).length;
      // Each child's last probe, read once for the three figures it gives.
      const probes = new Map(children.map((c) => [c.name, probeMb(probeDir, c.child.pid)]));
      const s: Sample = {
        t: Math.round((Date.now() - t0) / 1000),
        phase,
        loadavg: os.loadavg().map(r2),
        submitted: submittedAt.size,
        submitFailed,
        finished,
        completed: [...submittedAt.keys()].filter((g) => finalAt.get(g)?.type === "GoalCompleted").length,
        open: submittedAt.size - finished,
        latencyMs: latencies.length ? Math.round(mean(latencies)) : null,
        appended: lastAppended === null ? 0 : appendedTotal - lastAppended,
        tierLag,
        projectionLag: proj,
        totalLag,
        rssMb: Object.fromEntries(children.map((c) => [c.name, rssMb(c.child.pid)])),
        liveMb: Object.fromEntries(children.map((c) => [c.name, probes.get(c.name)?.live ?? null])),
        heapMb: Object.fromEntries(children.map((c) => [c.name, probes.get(c.name)?.heap ?? null])),
        v8MallocMb: Object.fromEntries(children.map((c) => [c.name, probes.get(c.name)?.malloced ?? null])),
      };
      // The next sample reads what this probe finds (a full collection takes tens of ms).
      for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGUSR2");
      lastAppended = appendedTotal;
      lastFinishedCount = finished;
      samples.push(s);
      const lagText = Object.entries(tierLag)
        .map(([k, v]) => `${k[0]}${k[1]}:${v}`)
        .join(" ");
      const projText = proj
        ? Object.entries(proj)
            .map(([k, v]) => `${k}:${v}`)
            .join(" ")
        : "n/a";
      say(
        `t=${s.t}s ${phase} goals ${s.submitted} sub / ${s.finished} fin / ${s.open} open` +
          `${submitFailed ? ` / ${submitFailed} failed` : ""}, lat ${s.latencyMs ?? "-"} ms | ` +
          `lag ${totalLag} (tiers ${lagText}; proj ${projText}) +${s.appended} ev | ` +
          `rss/live ${Object.entries(s.rssMb)
            .map(([k, v]) => `${k} ${v}/${s.liveMb[k] ?? "-"}`)
            .join(", ")} MB | load ${s.loadavg[0]}`,
      );
      for (const c of children)
        if (c.child.exitCode !== null || c.child.signalCode !== null)
          throw new Error(`${c.name} exited (${c.child.exitCode ?? c.child.signalCode}):\n${c.output().slice(-4000)}`);
    };

    say(`load running for ${opt.minutes} min`);
    const intervalMs = 1000 / opt.rate;
    let nextSubmit = Date.now();
    let nextSample = t0 + opt.sampleS * 1000;
    const pending = new Set<Promise<void>>();
    while (Date.now() - t0 < loadMs && !interrupted) {
      const now = Date.now();
      if (now >= nextSubmit) {
        const p = submitOne().finally(() => pending.delete(p));
        pending.add(p);
        nextSubmit += intervalMs;
      }
      if (now >= nextSample) {
        await sample("load");
        nextSample += opt.sampleS * 1000;
      }
      await sleep(Math.max(0, Math.min(nextSubmit, nextSample) - Date.now()));
    }
    await Promise.all(pending);
    const loadEnd = Date.now();
    const cutoff = loadEnd - 30_000;
    const mustFinish = () => [...submittedAt].filter(([, at]) => at < cutoff).map(([g]) => g);
    say(`load over; draining up to ${opt.drainS} s`);
    const drainEnd = loadEnd + opt.drainS * 1000;
    while (Date.now() < drainEnd && !interrupted && [...submittedAt.keys()].some((g) => !finalAt.has(g))) {
      await sleep(Math.min(opt.sampleS * 1000, Math.max(0, drainEnd - Date.now())));
      await sample("drain");
    }
    void lastFinishedCount;

    // --- verdicts ---
    const load = samples.filter((s) => s.phase === "load");
    const T = (loadEnd - t0) / 1000;
    const inHalf2 = load.filter((s) => s.t >= T / 2);
    const q2 = load.filter((s) => s.t >= T / 4 && s.t < T / 2);
    const q4 = load.filter((s) => s.t >= (3 * T) / 4);
    const lagLimit = Math.max(200, Math.round(mean(inHalf2.map((s) => s.appended))));
    const maxLag2 = Math.max(...inHalf2.map((s) => s.totalLag));
    const meanQ2 = mean(q2.map((s) => s.totalLag));
    const meanQ4 = mean(q4.map((s) => s.totalLag));
    const trendLimit = 1.5 * meanQ2 + 20;
    const lag = {
      bounded: maxLag2 <= lagLimit && meanQ4 <= trendLimit,
      maxTotalLagSecondHalf: maxLag2,
      limit: lagLimit,
      limitMeaning: "events appended to the consumed topics per sample interval (mean over the second half), >= 200",
      meanTotalLagSecondQuarter: r1(meanQ2),
      meanTotalLagLastQuarter: r1(meanQ4),
      trendLimit: r1(trendLimit),
      maxTierLagSecondHalf: Object.fromEntries(
        ROLES.map((r) => [r, Math.max(...inHalf2.map((s) => s.tierLag[r] ?? 0))]),
      ),
      maxProjectionLagSecondHalf: Object.fromEntries(
        [...new Set(inHalf2.flatMap((s) => Object.keys(s.projectionLag ?? {})))].map((p) => [
          p,
          Math.max(...inHalf2.map((s) => s.projectionLag?.[p] ?? 0)),
        ]),
      ),
    };
    // The first third is warm-up: bounded buffers fill there (the gateway's replay buffer of
    // HISTORY_EVENTS events takes about 4 minutes at 0.5 goal/s, the processors keep the 8 most
    // recently ended goals per partition). Growth is judged from the end of it.
    const early = T >= 360 ? { from: T / 3, to: T / 3 + 120 } : { from: T / 4, to: T / 2 };
    const lastMin = { from: Math.max(T / 2, T - 60), to: T + 1 };
    const earlyWindow = `${Math.round(early.from)}-${Math.round(early.to)} s`;
    /** Whether one child's memory, as `of` reads it from a sample, stayed flat over the load. */
    const flatness = (of: (s: Sample) => number | null) => {
      const pts = inHalf2.filter((s) => of(s) != null);
      const slopeMbMin = slope(
        pts.map((s) => s.t / 60),
        pts.map((s) => of(s)!),
      );
      const win = (w: { from: number; to: number }) =>
        mean(load.filter((s) => s.t >= w.from && s.t < w.to && of(s) != null).map((s) => of(s)!));
      const earlyMean = win(early);
      const lastMean = win(lastMin);
      const minutesApart = ((lastMin.from + lastMin.to) / 2 - (early.from + early.to) / 2) / 60;
      const growthLimit = opt.memSlope * minutesApart;
      return {
        slopeMbPerMinSecondHalf: r2(slopeMbMin),
        earlyWindow,
        earlyMeanMb: r1(earlyMean),
        lastMinuteMeanMb: r1(lastMean),
        growthMb: r1(lastMean - earlyMean),
        growthLimitMb: r1(growthLimit),
        flat: pts.length >= 2 && slopeMbMin <= opt.memSlope && lastMean - earlyMean <= growthLimit,
      };
    };
    const memory: Record<
      string,
      { rss: ReturnType<typeof flatness>; live: ReturnType<typeof flatness>; flat: boolean }
    > = {};
    for (const c of children) {
      const rss = flatness((s) => s.rssMb[c.name] ?? null);
      const live = flatness((s) => s.liveMb[c.name] ?? null);
      memory[c.name] = { rss, live, flat: rss.flat && live.flat };
    }
    const memoryFlat = Object.values(memory).every((m) => m.flat === true);
    const unfinished = mustFinish().filter((g) => !finalAt.has(g));
    const outcomes: Record<string, number> = {};
    for (const g of submittedAt.keys()) {
      const type = finalAt.get(g)?.type ?? "open";
      outcomes[type] = (outcomes[type] ?? 0) + 1;
    }
    const allLatencies = [...submittedAt]
      .filter(([g]) => finalAt.has(g))
      .map(([g, at]) => finalAt.get(g)!.at - at)
      .sort((a, b) => a - b);
    const pct = (p: number) => allLatencies[Math.min(allLatencies.length - 1, Math.floor(p * allLatencies.length))];
    const goals = {
      submitted: submittedAt.size,
      submitFailed,
      submitFailures: failures,
      outcomes,
      mustFinish: mustFinish().length,
      unfinished: unfinished.length,
      unfinishedIds: unfinished.slice(0, 20),
      latencyMs: allLatencies.length ? { p50: pct(0.5), p95: pct(0.95), max: allLatencies.at(-1) } : null,
    };
    const goalsOk = unfinished.length === 0 && submitFailed === 0 && submittedAt.size > 0;
    const pass = lag.bounded && memoryFlat && goalsOk && !interrupted;
    const verdict = { pass, lagBounded: lag.bounded, memoryFlat, goalsFinished: goalsOk, lag, memory, goals };

    console.log("");
    console.log(
      `lag bounded: ${lag.bounded ? "yes" : "NO"} (max total lag over the second half ${maxLag2} <= ${lagLimit}; ` +
        `mean last quarter ${r1(meanQ4)} <= 1.5 x second quarter ${r1(meanQ2)} + 20 = ${r1(trendLimit)})`,
    );
    const brief = (m: ReturnType<typeof flatness>) =>
      `${m.slopeMbPerMinSecondHalf} MB/min, ${m.earlyMeanMb} -> ${m.lastMinuteMeanMb} MB`;
    console.log(
      `memory flat: ${memoryFlat ? "yes" : "NO"} (threshold ${opt.memSlope} MB/min: ` +
        Object.entries(memory)
          .map(([k, m]) => `${k} RSS ${brief(m.rss)}, live ${brief(m.live)}`)
          .join("; ") +
        ")",
    );
    console.log(
      `goals: ${goals.submitted} submitted, ${JSON.stringify(outcomes)}; ${unfinished.length} of ${goals.mustFinish} ` +
        `submitted before the last 30 s unfinished; ${submitFailed} submissions failed` +
        (goals.latencyMs ? `; latency p50 ${goals.latencyMs.p50} ms, p95 ${goals.latencyMs.p95} ms` : ""),
    );
    console.log("");
    console.log(
      `| process | memory | ${earlyWindow} (MB) | last min (MB) | ` +
        `growth (limit) MB | slope 2nd half (MB/min) | flat (≤ ${opt.memSlope} MB/min) |`,
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    for (const [k, m] of Object.entries(memory))
      for (const [what, f] of [
        ["RSS", m.rss],
        ["live after full GC", m.live],
      ] as const)
        console.log(
          `| ${k} | ${what} | ${f.earlyMeanMb} | ${f.lastMinuteMeanMb} | ${f.growthMb} (${f.growthLimitMb}) | ` +
            `${f.slopeMbPerMinSecondHalf} | ${f.flat ? "yes" : "**no**"} |`,
        );
    console.log("");
    console.log("| lag (events) | max 2nd half | mean Q2 | mean Q4 | limit |");
    console.log("| --- | --- | --- | --- | --- |");
    console.log(`| total | ${maxLag2} | ${r1(meanQ2)} | ${r1(meanQ4)} | ${lagLimit} (trend ${r1(trendLimit)}) |`);
    for (const [k, v] of Object.entries(lag.maxTierLagSecondHalf)) console.log(`| tier ${k} | ${v} | | | |`);
    for (const [k, v] of Object.entries(lag.maxProjectionLagSecondHalf))
      console.log(`| projection ${k} | ${v} | | | |`);
    console.log("");
    console.log(`verdict: ${pass ? "PASS" : "FAIL"}`);

    const dir = path.join(repoRoot, "bench", "results");
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `soak-${startedIso.replace(/[:.]/g, "-")}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify(
        {
          startedAt: startedIso,
          prefix,
          options: opt,
          machine: {
            cpus: os.cpus().length,
            model: os.cpus()[0]?.model,
            memoryGb: r1(os.totalmem() / 2 ** 30),
            node: process.version,
            loadavgAtStart: samples[0]?.loadavg,
            loadavgMeanLoad1: r2(mean(load.map((s) => s.loadavg[0]!))),
            loadavgAtEnd: os.loadavg().map(r2),
          },
          verdict,
          samples,
        },
        null,
        2,
      ),
    );
    say(`wrote ${path.relative(repoRoot, file)}`);
    return pass ? 0 : 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await reader?.stop().catch(() => undefined);
    for (const c of [...children].reverse()) await c.stop();
    if (!opt.keep) await removeDeployment(kafka, admin, urls, prefix).catch((e: Error) => say(`cleanup: ${e.message}`));
    await admin.disconnect().catch(() => undefined);
    fs.rmSync(path.dirname(topologyFile), { recursive: true, force: true });
  }
}

/** Topics and groups of the prefix, its analytics schema and state collections. */
async function removeDeployment(kafka: Kafka, admin: Admin, urls: InfraUrls, prefix: string) {
  void kafka;
  await admin.connect();
  const groupIds = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
  if (groupIds.length > 0) await admin.deleteGroups(groupIds).catch(() => undefined);
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
  if (topics.length > 0) await admin.deleteTopics({ topics });
  const targets = readModelTargets(prefix);
  const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 1 });
  await pool.query(`DROP SCHEMA IF EXISTS "${targets.analyticsSchema}" CASCADE`).finally(() => pool.end());
  const mongo = new MongoClient(urls.mongoUrl);
  try {
    await mongo.connect();
    const db = mongo.db();
    for (const c of await db.listCollections({}, { nameOnly: true }).toArray())
      if (c.name.startsWith(targets.collectionPrefix)) await db.dropCollection(c.name);
  } finally {
    await mongo.close();
  }
}

/** `--child projections` or `--child gateway`: one part of `npm start` in this process. */
async function childMain(): Promise<void> {
  const part = parseArgvOrExit(SOAK_CHILD_COMMAND).values.child;
  const config = loadConfig();
  const urls = requireUrls();
  if (part === "projections") {
    const { startProjections, readModelsFromEnv } = await import("../projections/run.js");
    const { serveMetrics } = await import("../lib/metrics.js");
    const projections = await startProjections({
      models: readModelsFromEnv(),
      kafka: kafkaClient(urls.kafkaBrokers, `${config.clientId}-projections`),
      codec: Codec.forUrl(urls.schemaRegistryUrl),
      urls,
      topicPrefix: config.topicPrefix,
      log: logLine,
    });
    const metrics = await serveMetrics(config.metricsPort, logLine);
    console.log("soak child ready: projections");
    stopOnSignal(async () => {
      metrics.close();
      await projections.stop();
    });
    return;
  }
  if (part === "gateway") {
    const { startGateway } = await import("../gateway/main.js");
    const gateway = await startGateway({
      urls,
      port: config.gatewayPort,
      home: config.native.home,
      topicPrefix: config.topicPrefix,
      clientId: config.clientId,
      log: logLine,
    });
    console.log(`soak child ready: gateway ${gateway.url}`);
    stopOnSignal(() => gateway.stop());
    return;
  }
  throw new Error("usage: bench/soak.ts --child projections|gateway (npm run soak starts these itself)");
}

runIfMain(import.meta.url, childMain);
export type { Options as SoakOptions };
