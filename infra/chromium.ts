/**
 * The browser the dashboard's tests drive: Debian's `chromium` package, installed with apt-get when
 * it is missing and we are root (as infra/native/postgres.ts does for PostgreSQL). playwright-core
 * drives it; no browser is ever downloaded.
 */
import fs from "node:fs";
import { aptInstall, isRoot } from "./native/apt.js";
import { say, StackError } from "./native/process.js";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"];

export function findChromium(): string | null {
  return CANDIDATES.find((p) => fs.existsSync(p)) ?? null;
}

/** The Chromium executable, installing Debian's package first when it is missing. */
export async function ensureChromium(): Promise<string> {
  const found = findChromium();
  if (found) return found;
  if (!isRoot())
    throw new StackError(
      "the dashboard's browser tests need Chromium and it is not installed. Install it " +
        "(Debian: `sudo apt-get install chromium`) and run the tests again.",
    );
  say("chromium: installing Debian's chromium package (apt-get), for the dashboard's browser tests");
  await aptInstall(["chromium", "fonts-dejavu-core"], "[stack] chromium: apt-get downloading");
  const installed = findChromium();
  if (!installed) throw new StackError("apt-get installed chromium but no chromium executable appeared in /usr/bin.");
  return installed;
}
