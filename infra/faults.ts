/**
 * `npm run test:faults [-- file.test.ts ...] [--test-name-pattern=<regex>] [--keep-stack]`: the
 * fault-injection suite (a pattern runs only the rounds whose names match).
 *
 * The suite stops and restarts servers, so it never touches the shared stack on the default ports:
 * it starts a native stack of its own (POLITY_HOME=.polity/faults-stack, ports below the kernel's
 * ephemeral range so an outgoing connection can never hold them), runs test/faults/*.test.ts
 * against it, writes the results to .polity/faults/results.json (and what each of its processes
 * printed to .polity/faults/logs/<process>.log), prints them as a markdown table
 * and stops that stack again (unless --keep-stack).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { loadConfig, nativeUrls, urlsToEnv, URL_ENV, type PolityConfig } from "../lib/config.js";
import { say, StackError } from "./native/process.js";
import { stackDown, stackUp } from "./native/stack.js";

/** The fault stack's settings. Ports sit below 32768: Linux hands out 32768-60999 to outgoing connections. */
export const FAULT_STACK_ENV: Record<string, string> = {
  POLITY_KAFKA_PORT: "29092",
  POLITY_KAFKA_CONTROLLER_PORT: "29093",
  POLITY_REGISTRY_PORT: "28081",
  POLITY_MONGO_PORT: "27217",
  POLITY_PG_PORT: "25432",
};

export interface FaultRow {
  fault: string;
  goals: number;
  affected: number;
  lost: number;
  doubled: number;
  recoverMs: number;
  [more: string]: unknown;
}

export function resultsFile(repoRoot: string): string {
  return path.join(repoRoot, ".polity", "faults", "results.json");
}

/** Where each process of the suite appends what it prints, as `<process>.log`. */
export function logsDir(repoRoot: string): string {
  return path.join(repoRoot, ".polity", "faults", "logs");
}

/** The results as the markdown table that goes in the README. */
export function markdownTable(rows: FaultRow[]): string {
  const lines = [
    "| fault | goals affected | lost | doubled | time to recover (ms) |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...rows.map((r) => `| ${r.fault} | ${r.affected} of ${r.goals} | ${r.lost} | ${r.doubled} | ${r.recoverMs} |`),
  ];
  return lines.join("\n");
}

/** The environment of the fault stack: its own home and ports, and no URL inherited from the caller. */
function faultEnv(repoRoot: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.values(URL_ENV)) delete env[name];
  delete env.POLITY_INFRA;
  env.POLITY_HOME = path.join(repoRoot, ".polity", "faults-stack");
  Object.assign(env, FAULT_STACK_ENV);
  return env;
}

/** Refuses a configuration that would share a port or a home with the default stack. */
export function assertSeparateStack(config: PolityConfig): void {
  const shared = loadConfig({});
  const n = config.native;
  const d = shared.native;
  const clash = (
    [
      ["home", n.home, d.home],
      ["kafka port", n.kafkaPort, d.kafkaPort],
      ["kafka controller port", n.kafkaControllerPort, d.kafkaControllerPort],
      ["registry port", n.registryPort, d.registryPort],
      ["mongo port", n.mongoPort, d.mongoPort],
      ["postgres port", n.postgresPort, d.postgresPort],
    ] as const
  ).filter(([, a, b]) => a === b);
  if (clash.length > 0)
    throw new StackError(
      `the fault stack would share ${clash.map(([w]) => w).join(", ")} with the default stack; refusing`,
    );
}

export async function runFaults(args: string[]): Promise<number> {
  const keep = args.includes("--keep-stack");
  const patterns = args.filter((a) => a.startsWith("--test-name-pattern="));
  const named = args.filter((a) => a !== "--keep-stack" && !patterns.includes(a));
  const root = loadConfig().repoRoot;
  const env = faultEnv(root);
  const config = loadConfig(env);
  assertSeparateStack(config);
  const dir = path.join(root, "test", "faults");
  const files =
    named.length > 0
      ? named.map((f) => path.resolve(f))
      : fs
          .readdirSync(dir)
          .filter((f) => f.endsWith(".test.ts"))
          .sort()
          .map((f) => path.join(dir, f));
  const results = resultsFile(root);
  fs.mkdirSync(path.dirname(results), { recursive: true });
  fs.writeFileSync(results, "[]\n");
  const logs = logsDir(root);
  fs.rmSync(logs, { recursive: true, force: true });

  const t0 = Date.now();
  say(`fault stack: ${config.native.home}`);
  await stackUp(config);
  let code: number;
  try {
    const urls = nativeUrls(config.native);
    code = await new Promise<number>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "--test",
          "--test-reporter=spec",
          "--test-concurrency=1",
          "--test-force-exit",
          ...patterns,
          ...files,
        ],
        {
          stdio: "inherit",
          cwd: root,
          env: { ...env, ...urlsToEnv(urls), POLITY_FAULTS: "1", POLITY_FAULTS_RESULTS: results },
        },
      );
      const forward = (signal: NodeJS.Signals) => child.kill(signal);
      process.on("SIGINT", forward);
      process.on("SIGTERM", forward);
      child.on("exit", (c, signal) => {
        process.off("SIGINT", forward);
        process.off("SIGTERM", forward);
        resolve(c ?? (signal ? 1 : 0));
      });
    });
  } finally {
    if (keep) say(`--keep-stack: the fault stack stays up (POLITY_HOME=${config.native.home})`);
    else await stackDown(config);
  }
  const rows = JSON.parse(fs.readFileSync(results, "utf8")) as FaultRow[];
  console.log(`\nfault results (${results}), suite ran ${((Date.now() - t0) / 1000).toFixed(0)} s:\n`);
  console.log(markdownTable(rows));
  if (code !== 0) console.log(`\nwhat each process printed: ${logs}/<process>.log`);
  return code;
}
