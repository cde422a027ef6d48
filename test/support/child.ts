/**
 * Tiers of the hierarchy in a child process (processors/main.ts), for tests that SIGKILL a
 * processor and restart it on the same topic prefix.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { repoRoot, urlsToEnv } from "../../lib/config.js";
import type { Role } from "../../processors/domain/directory.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { urls } from "./infra.js";

/** Writes a topology to a fresh temporary file, for POLITY_TOPOLOGY_FILE. */
export function topologyFile(topology: TopologyConfig): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "polity-")), "topology.json");
  fs.writeFileSync(file, JSON.stringify(topology));
  return file;
}

export interface TierProcess {
  child: ChildProcess;
  /** What the process printed (the last 64 kB). */
  output(): string;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (a clean stop), resolved once the process is gone. */
  stop(): Promise<void>;
}

/** Starts `processors/main.ts --tiers <roles>` on `prefix`; resolves once it prints "processors ready". */
export async function spawnTiers(
  roles: readonly Role[],
  prefix: string,
  topology: string,
  timeoutMs = 60_000,
): Promise<TierProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(repoRoot, "processors/main.ts"), "--tiers", roles.join(",")],
    {
      cwd: repoRoot,
      env: { ...process.env, ...urlsToEnv(urls), POLITY_TOPIC_PREFIX: prefix, POLITY_TOPOLOGY_FILE: topology },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  // Keep draining both pipes for the life of the process, so it never blocks on a full pipe.
  const onData = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-65_536);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const gone = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${roles.join(",")} process not ready after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const check = () => {
      if (output.includes("processors ready")) {
        clearTimeout(timer);
        child.stdout!.off("data", check);
        resolve();
      }
    };
    child.stdout!.on("data", check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${roles.join(",")} process exited with ${child.exitCode ?? child.signalCode}:\n${output}`));
    });
  });
  return { child, output: () => output, kill: () => gone("SIGKILL"), stop: () => gone("SIGTERM") };
}
