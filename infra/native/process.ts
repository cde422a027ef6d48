/**
 * Process plumbing for the native stack: run a command to completion, start a detached daemon
 * with its output in a log file, find it again by pid file, stop it, and wait until it answers.
 */
import { spawn, type SpawnOptions } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export class StackError extends Error {
  override name = "StackError";
}

export function say(line: string): void {
  process.stderr.write(`[stack] ${line}\n`);
}

export interface RunOptions extends SpawnOptions {
  /** Shown in the error when the command fails, e.g. "building FerretDB". */
  what: string;
  /** Stream the command's output to our stderr (for long installs, so progress is visible). */
  echo?: boolean;
  /** Sees the command's output as it arrives (stdout and stderr), e.g. to report download progress. */
  onOutput?: (text: string) => void;
}

/** Runs a command to completion; returns stdout, or throws with the tail of its output. */
export function run(command: string, args: string[], options: RunOptions): Promise<string> {
  const { what, echo, onOutput, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...spawnOptions, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      onOutput?.(chunk.toString());
      if (echo) process.stderr.write(chunk);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString();
      onOutput?.(chunk.toString());
      if (echo) process.stderr.write(chunk);
    });
    child.on("error", (e) => reject(new StackError(`${what}: could not run ${command}: ${e.message}`)));
    child.on("close", (code) => {
      if (code === 0) return resolve(out);
      const tailText = (err || out).trim().split("\n").slice(-15).join("\n");
      reject(new StackError(`${what} failed: \`${command} ${args.join(" ")}\` exited ${code}.\n${tailText}`));
    });
  });
}

export function tail(file: string, lines = 20): string {
  try {
    const text = fs.readFileSync(file, "utf8");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log yet)";
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A pid file is trusted only while that pid's command line still names our marker (pids get reused). */
export function runningPid(pidFile: string, marker: string): number | null {
  let pid: number;
  try {
    // First line only: PostgreSQL's postmaster.pid carries more lines after the pid.
    pid = Number(fs.readFileSync(pidFile, "utf8").split("\n")[0]!.trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (!cmdline.includes(marker)) return null;
  } catch {
    // No /proc (macOS): fall back to the liveness check alone.
  }
  return pid;
}

export interface DaemonSpec {
  command: string;
  args: string[];
  cwd: string;
  logFile: string;
  pidFile: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts a process in its own session so it outlives us; stdout and stderr append to its log. */
export function startDaemon(spec: DaemonSpec): number {
  fs.mkdirSync(path.dirname(spec.logFile), { recursive: true });
  fs.mkdirSync(path.dirname(spec.pidFile), { recursive: true });
  fs.mkdirSync(spec.cwd, { recursive: true });
  const log = fs.openSync(spec.logFile, "a");
  fs.writeSync(log, `\n--- started ${new Date().toISOString()}: ${spec.command} ${spec.args.join(" ")}\n`);
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env ?? process.env,
    detached: true,
    stdio: ["ignore", log, log],
  });
  fs.closeSync(log);
  if (child.pid === undefined) {
    throw new StackError(`could not start ${spec.command} (is it installed and on PATH?); see ${spec.logFile}`);
  }
  child.on("error", () => undefined); // a failed start shows up as "exited while starting"
  child.unref();
  fs.writeFileSync(spec.pidFile, `${child.pid}\n`);
  return child.pid;
}

/** `signal` (SIGTERM unless told), then SIGKILL if the process has not gone after `graceMs`. */
export async function stopPid(pid: number, graceMs: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(200);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  while (isAlive(pid)) await sleep(100);
}

export interface WaitOptions {
  /** The server's name and log, for the error message. */
  name: string;
  logFile: string;
  timeoutMs: number;
  /** When this turns false the process has died: fail at once instead of waiting out the timeout. */
  stillRunning?: () => boolean;
}

/** Polls `probe` until it succeeds; fails naming the server, the last error and its log's tail. */
export async function waitUntilAnswers(probe: () => Promise<string>, options: WaitOptions): Promise<string> {
  const started = Date.now();
  let lastError: string;
  let nextProgress = started + 10_000;
  for (;;) {
    try {
      return await probe();
    } catch (e) {
      lastError = (e as Error).message;
    }
    const elapsed = Date.now() - started;
    if (options.stillRunning && !options.stillRunning()) {
      throw new StackError(
        `${options.name} exited while starting (last check: ${lastError}).\n` +
          `Log ${options.logFile}, last lines:\n${tail(options.logFile)}`,
      );
    }
    if (elapsed > options.timeoutMs) {
      throw new StackError(
        `${options.name} did not answer within ${Math.round(options.timeoutMs / 1000)}s (last check: ${lastError}).\n` +
          `Log ${options.logFile}, last lines:\n${tail(options.logFile)}`,
      );
    }
    if (Date.now() >= nextProgress) {
      say(`${options.name}: still waiting (${Math.round(elapsed / 1000)}s; last check: ${lastError})`);
      nextProgress += 10_000;
    }
    await sleep(500);
  }
}

/** Writes a file only when its content changed, so restarts do not churn config files. */
export function writeIfChanged(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    if (fs.readFileSync(file, "utf8") === content) return;
  } catch {
    // absent: write it
  }
  fs.writeFileSync(file, content);
}

/** Download or build into a temp dir, then rename: a half-finished install never looks finished. */
export async function installAtomically(target: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  if (fs.existsSync(target)) return;
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.partial-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await build(tmp);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
