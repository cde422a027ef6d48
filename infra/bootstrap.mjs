#!/usr/bin/env node
// Entry point of `npm start`, `npm test` and `npm run stack`. Plain JavaScript with no
// dependencies, because it runs before node_modules exists: it installs the node modules when
// they are missing or older than package-lock.json, then hands over to infra/cli.ts through tsx.
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

const child = spawn(
  process.execPath,
  ["--import", "tsx", path.join(root, "infra", "cli.ts"), ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: "inherit",
  },
);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
