/**
 * promtool, which checks and unit-tests the alert rules (infra/prometheus): Debian's `prometheus`
 * package provides it, installed with apt-get when missing and we are root, like PostgreSQL
 * (postgres.ts). Elsewhere the caller is told why there is none, so its tests can skip saying so.
 */
import fs from "node:fs";
import path from "node:path";
import { run, say, StackError } from "./process.js";
import { aptProgress, DownloadProgress } from "./progress.js";

export type Promtool = { path: string; version: string } | { path: null; reason: string };

const isRoot = () => process.getuid?.() === 0;

/** An executable of that name on the PATH, or null. */
function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

async function versionOf(file: string): Promise<string> {
  const out = await run(file, ["--version"], { what: "promtool --version" });
  return out.split("\n")[0]?.trim() ?? "";
}

/**
 * Finds promtool on the PATH, installing Debian's `prometheus` package when it is missing and we
 * are root. Throws only when an install was tried and failed.
 */
export async function ensurePromtool(): Promise<Promtool> {
  const found = onPath("promtool");
  if (found) return { path: found, version: await versionOf(found) };
  if (!onPath("apt-get"))
    return {
      path: null,
      reason: "promtool is not installed and there is no apt-get to install it; put Prometheus's promtool on the PATH",
    };
  if (!isRoot())
    return {
      path: null,
      reason: "promtool is not installed and installing it needs root: `sudo apt-get install prometheus`",
    };
  say("promtool: not found; installing Debian's prometheus package (apt-get update, then install)");
  await run("apt-get", ["update", "-qq"], { what: "apt-get update" });
  say("promtool: apt-get install prometheus");
  // -q (not -qq) keeps "Need to get N MB" and one "Get:" line per package: aptProgress reports them.
  const progress = new DownloadProgress({ label: "[stack] promtool: apt-get downloading" });
  const apt = aptProgress(progress);
  await run("apt-get", ["install", "-y", "-q", "--no-install-recommends", "prometheus"], {
    what: "apt-get install prometheus",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    onOutput: apt.onOutput,
  });
  progress.finish(apt.done());
  const installed = onPath("promtool");
  if (!installed) throw new StackError("apt-get installed prometheus but no promtool appeared on the PATH");
  const version = await versionOf(installed);
  say(`promtool: installed ${installed} (${version})`);
  return { path: installed, version };
}
