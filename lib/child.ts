/**
 * A Polity script in a child process (`node --import tsx <script> ...`), as tests and the soak run
 * processors, projections and the gateway: its output is drained for its whole life (so it never
 * blocks on a full pipe) and kept (the last 64 kB), and it counts as started once it prints `ready`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { repoRoot } from "./config.js";

export interface ScriptProcess {
  child: ChildProcess;
  /** What the process printed (the last 64 kB). */
  output(): string;
  /** Resolves once the process is gone. */
  exited: Promise<void>;
  /** Sends `signal` unless the process is gone already; resolves once it is gone. */
  signal(signal: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `script` (relative to the repository) with `args` and `env`; resolves once its output
 * contains `ready`. Rejects, with what it printed, when it exits first or is not ready within
 * `timeoutMs` (it is then killed).
 */
export async function spawnScript(options: {
  name: string;
  script: string;
  args?: string[];
  env: NodeJS.ProcessEnv;
  ready: string;
  timeoutMs: number;
  /** Options for node itself, after tsx and before the script (e.g. `--expose-gc`, `--import a.ts`). */
  nodeArgs?: string[];
  /** A file that also gets everything the process prints, between start and exit lines (appended). */
  logFile?: string;
}): Promise<ScriptProcess> {
  const { name, ready, timeoutMs } = options;
  const child = spawn(
    process.execPath,
    ["--import", "tsx", ...(options.nodeArgs ?? []), path.join(repoRoot, options.script), ...(options.args ?? [])],
    { cwd: repoRoot, env: options.env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const log = options.logFile ? openLog(options.logFile, name, child) : null;
  const onData = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-65_536);
    log?.write(chunk);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const signal = async (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    await exited;
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const check = () => {
      if (output.includes(ready)) {
        clearTimeout(timer);
        child.stdout!.off("data", check);
        resolve();
      }
    };
    child.stdout!.on("data", check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${child.exitCode ?? child.signalCode}:\n${output}`));
    });
  });
  return { child, output: () => output, exited, signal };
}

/** Appends to `file`, marking where each process starts and how it ended. */
function openLog(file: string, name: string, child: ChildProcess): fs.WriteStream {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const log = fs.createWriteStream(file, { flags: "a" });
  log.write(`\n==== ${new Date().toISOString()} ${name} starts (pid ${child.pid}) ====\n`);
  child.once("exit", (code, signal) =>
    log.end(`==== ${new Date().toISOString()} ${name} exited ${code ?? signal} ====\n`),
  );
  return log;
}
