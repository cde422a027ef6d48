/**
 * promtool, which checks and unit-tests the alert rules (infra/prometheus): Debian's `prometheus`
 * package provides it, installed with apt-get when missing and we are root, like PostgreSQL
 * (postgres.ts). Elsewhere the caller is told why there is none, so its tests can skip saying so.
 */
import { run, say, StackError } from "./process.js";
import { aptInstall, isRoot, onPath } from "./apt.js";

export type Promtool = { path: string; version: string } | { path: null; reason: string };

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
  await aptInstall(["prometheus"], "[stack] promtool: apt-get downloading");
  const installed = onPath("promtool");
  if (!installed) throw new StackError("apt-get installed prometheus but no promtool appeared on the PATH");
  const version = await versionOf(installed);
  say(`promtool: installed ${installed} (${version})`);
  return { path: installed, version };
}
