/**
 * Tiers of the hierarchy in a child process (processors/main.ts), for tests that SIGKILL a
 * processor and restart it on the same topic prefix.
 */
import type { ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnScript } from "../../lib/child.js";
import { urlsToEnv } from "../../lib/config.js";
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
  const p = await spawnScript({
    name: `${roles.join(",")} process`,
    script: "processors/main.ts",
    args: ["--tiers", roles.join(",")],
    env: { ...process.env, ...urlsToEnv(urls), POLITY_TOPIC_PREFIX: prefix, POLITY_TOPOLOGY_FILE: topology },
    ready: "processors ready",
    timeoutMs,
  });
  return { child: p.child, output: p.output, kill: () => p.signal("SIGKILL"), stop: () => p.signal("SIGTERM") };
}
