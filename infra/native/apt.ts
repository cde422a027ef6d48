/**
 * What the local stack and the test set-up install from Debian when it is missing (PostgreSQL,
 * promtool, Chromium, python3-venv): one way to find an executable on the PATH and one apt-get
 * install, with its download progress. Only root may install; the callers say what to do instead.
 */
import fs from "node:fs";
import path from "node:path";
import { run } from "./process.js";
import { aptProgress, DownloadProgress } from "./progress.js";

export const isRoot = (): boolean => process.getuid?.() === 0;

/** An executable of that name on the PATH, or null. */
export function onPath(name: string): string | null {
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

/**
 * `apt-get update`, then `apt-get install` of `packages` without recommends, reporting the download
 * as `label` (-q, not -qq, keeps "Need to get N MB" and one "Get:" line per package for it).
 */
export async function aptInstall(packages: string[], label: string): Promise<void> {
  await run("apt-get", ["update", "-qq"], { what: "apt-get update" });
  const progress = new DownloadProgress({ label });
  const apt = aptProgress(progress);
  await run("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...packages], {
    what: `apt-get install ${packages.join(" ")}`,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    onOutput: apt.onOutput,
  });
  progress.finish(apt.done());
}
