/**
 * The Temporal peer of `npm run bench` (step `temporal`): the Temporal dev server (SQLite in WAL
 * mode, the closer match to Kafka's durability defaults) running the flow benchmark's workload —
 * one workflow per goal, 10 zero-work tasks in layers 1-3-3-3 — measured in the same run as
 * Polity's flow, so that the two are compared as ratios on the same machine at the same time.
 *
 * The peer is a tool beside the project (POLITY_TEMPORAL_PEER, by default ../shared/peers/temporal):
 * this module only calls its scripts as its README says: bin/build-server.sh (from the Go module
 * proxy, cached; ~7 minutes once), bin/start-server.sh wal, `node run.mjs` in a writable copy of its
 * bench/ folder, bin/stop-server.sh. Where the folder or Go is missing, the step is skipped and says why.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

export interface PeerFigures {
  tasksPerSec: { median: number; min: number; max: number };
  goalLatencyP50Ms: { median: number; min: number; max: number };
  goalLatencyP99Ms: { median: number; min: number; max: number };
  pooledGoalLatencyMs: { p50: number; p99: number; samples: number };
}

export interface TemporalPeerResult {
  /** Why the peer did not run, when it did not. */
  skipped?: string;
  dir: string;
  mode: "wal";
  serverVersion?: string;
  /** N goals at once, as the flow's throughput run. */
  load?: PeerFigures & { goals: number; reps: number; warmup?: number };
  /** One goal at a time. */
  single?: PeerFigures & { reps: number; warmup?: number };
}

type Say = (line: string) => void;

/** Why the peer cannot run here, or null when it can. */
export function peerUnavailable(dir: string): string | null {
  if (!fs.existsSync(path.join(dir, "bin", "start-server.sh")) || !fs.existsSync(path.join(dir, "bench", "run.mjs")))
    return `no Temporal peer at ${dir} (set POLITY_TEMPORAL_PEER to its folder)`;
  const go = spawnSync("go", ["version"], { encoding: "utf8" });
  if (go.error || go.status !== 0)
    return "no Go toolchain on PATH: the peer builds the Temporal dev server from the Go module proxy";
  return null;
}

/** Runs a command, printing its lines with a prefix; rejects with its last lines on failure. */
function run(cmd: string, args: string[], cwd: string, say: Say, label: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const tail: string[] = [];
    const lines = (chunk: Buffer, keep: boolean) => {
      const text = chunk.toString();
      if (keep) out += text;
      for (const line of text.split("\n").filter(Boolean)) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        if (!keep) say(`${label}: ${line}`);
      }
    };
    child.stdout.on("data", (c: Buffer) => lines(c, true));
    child.stderr.on("data", (c: Buffer) => lines(c, false));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${label}: ${cmd} ${args.join(" ")} exited ${code}:\n${tail.join("\n")}`)),
    );
  });
}

const figures = (j: {
  summary: Record<string, { median: number; min: number; max: number }>;
  pooledGoalLatencyMs: { p50: number; p99: number; samples: number };
}): PeerFigures => ({
  tasksPerSec: j.summary.tasksPerSec!,
  goalLatencyP50Ms: j.summary.goalLatencyP50Ms!,
  goalLatencyP99Ms: j.summary.goalLatencyP99Ms!,
  pooledGoalLatencyMs: j.pooledGoalLatencyMs,
});

/**
 * Builds (once), starts, measures and stops the peer. `work` is the writable folder its bench/ is
 * copied to (the shared folder may be read-only); the server always stops, even on failure.
 */
export async function temporalPeer(
  dir: string,
  work: string,
  sizes: { goals: number; reps: number; singleReps: number; warmup: number },
  say: Say,
): Promise<TemporalPeerResult> {
  const unavailable = peerUnavailable(dir);
  if (unavailable) {
    say(`temporal: skipped: ${unavailable}`);
    return { skipped: unavailable, dir, mode: "wal" };
  }
  const bin = (name: string) => path.join(dir, "bin", name);
  say("temporal: building the dev server if needed (Go module proxy, ~7 minutes the first time, cached after)");
  await run("bash", [bin("build-server.sh")], dir, say, "temporal build");
  // A copy of its bench/ that npm may write node_modules into, refreshed when the peer's changes.
  const bench = path.join(work, "bench");
  const lock = (d: string) => {
    try {
      return fs.readFileSync(path.join(d, "package-lock.json"), "utf8");
    } catch {
      return "";
    }
  };
  if (lock(bench) !== lock(path.join(dir, "bench")) || !fs.existsSync(path.join(bench, "node_modules"))) {
    fs.rmSync(bench, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    fs.cpSync(path.join(dir, "bench"), bench, { recursive: true });
    for (const f of fs.readdirSync(bench)) fs.chmodSync(path.join(bench, f), 0o644);
    say("temporal: installing the peer's client (npm ci in a writable copy of its bench/)");
    await run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], bench, say, "temporal npm");
  }
  await run("bash", [bin("start-server.sh"), "wal"], dir, say, "temporal server");
  try {
    const measure = async (goals: number, reps: number) => {
      const out = path.join(work, `run-${goals}g.json`);
      say(`temporal: ${goals} goal(s) at once, ${reps} rep(s)`);
      await run(
        process.execPath,
        ["run.mjs", "--goals", String(goals), "--reps", String(reps), "--warmup", String(sizes.warmup), "--out", out],
        bench,
        say,
        "temporal",
      );
      return JSON.parse(fs.readFileSync(out, "utf8")) as Parameters<typeof figures>[0] & {
        config: { serverVersion?: string };
      };
    };
    const load = await measure(sizes.goals, sizes.reps);
    const single = await measure(1, sizes.singleReps);
    return {
      dir,
      mode: "wal",
      serverVersion: load.config.serverVersion,
      load: { goals: sizes.goals, reps: sizes.reps, warmup: sizes.warmup, ...figures(load) },
      single: { reps: sizes.singleReps, warmup: sizes.warmup, ...figures(single) },
    };
  } finally {
    await run("bash", [bin("stop-server.sh")], dir, say, "temporal server").catch((e: Error) =>
      say(`temporal: stopping the server: ${e.message}`),
    );
  }
}
