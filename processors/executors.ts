/**
 * Executors: how a worker runs a task. These are the side effects the worker decider stays clear
 * of (as activities are in Temporal): the host runs one, then hands its outcome to the decider as
 * an ExecutionFinished input.
 *
 * - simulated: duration and failure drawn from a seed and the task's identity, so a rerun of the
 *   same attempt behaves the same; the default, and what benchmarks use.
 * - shell: runs a command with /bin/sh in a work dir, with a time limit; exit code, duration and
 *   the tail of its output become the result.
 * - external: nothing runs here; an outside program consumes its assignments and reports itself
 *   (see processors/examples/external-agent.ts).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { DependencyResult } from "./domain/context.js";
import type { ExecutionFinished } from "./domain/decider.js";
import { formatCost } from "./domain/kernel/costs.js";
import type { TaskSpec } from "../schemas/generated/types.js";
import type { SimulatedConfig, WorkerGroup } from "./topology.js";

export type Outcome = ExecutionFinished["outcome"];

export interface Execution {
  goalId: string;
  taskId: string;
  attempt: number;
  agentId: string;
  spec: TaskSpec;
  /** The results and outputs of the tasks it depends on, for executors that build a prompt from them. */
  dependencies: DependencyResult[];
}

/** Intermediate progress of a running attempt; the worker writes it as TaskProgressed. */
export interface Progress {
  percent: number;
  message: string | null;
  metrics: Record<string, number>;
}

export interface Executor {
  /** Runs the attempt; `progress` may be called while it runs (at most about once a second). */
  run(execution: Execution, signal: AbortSignal, progress?: (p: Progress) => void): Promise<Outcome>;
}

/** Two numbers in [0, 1) from the seed and the attempt's identity. */
function draws(seed: number, e: Execution): [number, number] {
  const h = createHash("sha256").update(`${seed}|${e.goalId}|${e.taskId}|${e.attempt}`).digest();
  return [h.readUInt32BE(0) / 2 ** 32, h.readUInt32BE(4) / 2 ** 32];
}

/** Cost of an attempt: a fixed 0.01 plus 0.0001 per millisecond of work. */
function costOf(durationMs: number): string {
  return formatCost(100n + BigInt(Math.round(durationMs)));
}

export function simulatedExecutor(config: SimulatedConfig): Executor {
  return {
    async run(e, signal) {
      const [d, f] = draws(config.seed, e);
      const mean = e.spec.estimatedEffortMs ?? config.meanDurationMs;
      const durationMs = Math.round(mean * (0.5 + d));
      if (durationMs > 0) await sleep(durationMs, signal);
      if (f < config.failureRate) {
        return {
          ok: false,
          reason: `simulated failure (draw ${f.toFixed(3)} < failure rate ${config.failureRate})`,
          kind: "EXECUTION_ERROR",
          retryable: true,
          durationMs,
          exitCode: null,
          output: null,
        };
      }
      return {
        ok: true,
        result: `${e.spec.title}: done by ${e.agentId}`,
        outputs: { by: e.agentId, attempt: String(e.attempt) },
        durationMs,
        cost: costOf(durationMs),
        exitCode: null,
      };
    },
  };
}

const OUTPUT_LIMIT = 4_096;
const DEFAULT_TIMEOUT_MS = 60_000;

/** Keeps the last `limit` bytes of a stream, so a chatty command cannot exhaust memory. */
class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }
  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString("utf8");
  }
}

/**
 * Runs `inputs.command` of the task, or the worker's configured command, with the task's inputs in
 * the environment (POLITY_GOAL_ID, POLITY_TASK_ID, POLITY_ATTEMPT, POLITY_INPUT_<NAME>).
 */
export function shellExecutor(shell: NonNullable<WorkerGroup["shell"]>, workRoot: string): Executor {
  return {
    run(e, signal) {
      const command = e.spec.inputs.command ?? shell.command;
      const cwd = shell.cwd ?? path.join(workRoot, e.goalId, `${e.taskId}-${e.attempt}`);
      try {
        fs.mkdirSync(cwd, { recursive: true });
      } catch (err) {
        // This function is not async: a throw here would escape the host's .catch on the promise
        // and take the worker's consumer down on every restore, instead of failing one attempt.
        return Promise.resolve<Outcome>({
          ok: false,
          reason: `cannot create the work dir ${cwd}: ${(err as Error).message}`,
          kind: "EXECUTION_ERROR",
          retryable: true,
          durationMs: 0,
          exitCode: null,
          output: null,
        });
      }
      const timeoutMs = shell.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        POLITY_GOAL_ID: e.goalId,
        POLITY_TASK_ID: e.taskId,
        POLITY_ATTEMPT: String(e.attempt),
      };
      for (const [k, v] of Object.entries(e.spec.inputs))
        env[`POLITY_INPUT_${k.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`] = v;
      const started = Date.now();
      return new Promise<Outcome>((resolve) => {
        const child = spawn("/bin/sh", ["-c", command], {
          cwd,
          env,
          stdio: ["ignore", "pipe", "pipe"],
          detached: true,
        });
        const out = new Tail(OUTPUT_LIMIT);
        child.stdout.on("data", (c: Buffer) => out.push(c));
        child.stderr.on("data", (c: Buffer) => out.push(c));
        let timedOut = false;
        const kill = () => {
          try {
            process.kill(-child.pid!, "SIGKILL"); // the whole process group: sh and what it started
          } catch {
            /* already gone */
          }
        };
        const timer = setTimeout(() => {
          timedOut = true;
          kill();
        }, timeoutMs);
        signal.addEventListener("abort", kill, { once: true });
        child.on("error", (err) => {
          clearTimeout(timer);
          resolve({
            ok: false,
            reason: `could not start /bin/sh: ${err.message}`,
            kind: "EXECUTION_ERROR",
            retryable: false,
            durationMs: 0,
            exitCode: null,
            output: null,
          });
        });
        child.on("close", (code, killedBy) => {
          clearTimeout(timer);
          const durationMs = Date.now() - started;
          const output = out.toString();
          if (timedOut) {
            resolve({
              ok: false,
              reason: `command timed out after ${timeoutMs} ms: ${command}`,
              kind: "EXECUTION_ERROR",
              retryable: true,
              durationMs,
              exitCode: null,
              output,
            });
          } else if (code === 0) {
            resolve({
              ok: true,
              result: output.trim().split("\n").at(-1) ?? "",
              outputs: { output },
              durationMs,
              cost: costOf(durationMs),
              exitCode: 0,
            });
          } else if (code === null) {
            resolve({
              ok: false,
              reason: `command was killed by ${killedBy ?? "a signal"}: ${command}`,
              kind: "EXECUTION_ERROR",
              retryable: true,
              durationMs,
              exitCode: null,
              output,
            });
          } else {
            resolve({
              ok: false,
              reason: `command exited with ${code}: ${command}`,
              kind: "NONZERO_EXIT",
              retryable: true,
              durationMs,
              exitCode: code,
              output,
            });
          }
        });
      });
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
