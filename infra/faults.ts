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
 *
 * test/faults/cluster.test.ts runs on a second stack of its own, after the others: three Kafka
 * nodes (POLITY_HOME=.polity/faults-cluster-stack, ports 26xxx), topics replicated 3 times with
 * min.insync.replicas 2. Its rows join the same results.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { kafkaNodes, loadConfig, nativeUrls, urlsToEnv, URL_ENV, type PolityConfig } from "../lib/config.js";
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

/** The fault file that runs on the three-node cluster stack (and only there). */
export const CLUSTER_FAULT_FILE = "cluster.test.ts";

/**
 * The cluster fault stack's settings: ports below 32768 clear of the default stack (19092...) and
 * the single-node fault stack (29092...). Kafka 26092-26094 with controllers 26192-26194.
 */
export const CLUSTER_FAULT_STACK_ENV: Record<string, string> = {
  POLITY_KAFKA_NODES: "3",
  POLITY_KAFKA_PORT: "26092",
  POLITY_KAFKA_CONTROLLER_PORT: "26192",
  POLITY_REGISTRY_PORT: "26081",
  POLITY_MONGO_PORT: "26017",
  POLITY_PG_PORT: "26432",
  POLITY_TOPIC_REPLICATION_FACTOR: "3",
  POLITY_TOPIC_MIN_ISR: "2",
  // Three JVMs beside the registry's on a small machine.
  POLITY_KAFKA_HEAP: "512m",
};

/** Settings of the cluster profile that must not leak from the caller into the single-node fault stack. */
const CLUSTER_SETTINGS = ["POLITY_KAFKA_NODES", "POLITY_TOPIC_REPLICATION_FACTOR", "POLITY_TOPIC_MIN_ISR"];

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
function faultEnv(repoRoot: string, cluster = false): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.values(URL_ENV)) delete env[name];
  delete env.POLITY_INFRA;
  for (const name of CLUSTER_SETTINGS) delete env[name];
  if (cluster) {
    delete env.POLITY_KAFKA_HEAP;
    env.POLITY_HOME = path.join(repoRoot, ".polity", "faults-cluster-stack");
    Object.assign(env, CLUSTER_FAULT_STACK_ENV);
  } else {
    env.POLITY_HOME = path.join(repoRoot, ".polity", "faults-stack");
    Object.assign(env, FAULT_STACK_ENV);
  }
  return env;
}

/** Every port a native stack takes, by what takes it. */
export function stackPorts(config: PolityConfig): [string, number][] {
  const n = config.native;
  return [
    ...kafkaNodes(n).flatMap((node): [string, number][] => [
      [`kafka port ${node.port}`, node.port],
      [`kafka controller port ${node.controllerPort}`, node.controllerPort],
    ]),
    ["registry port", n.registryPort],
    ["registry management port", n.registryPort + 1],
    ["mongo port", n.mongoPort],
    ["postgres port", n.postgresPort],
  ];
}

/** Refuses a configuration that would share a port or a home with the default stack (or `others`). */
export function assertSeparateStack(config: PolityConfig, others: PolityConfig[] = []): void {
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
  for (const other of [shared, ...others]) {
    const taken = new Set(stackPorts(other).map(([, p]) => p));
    const both = stackPorts(config).filter(([, p]) => taken.has(p));
    if (both.length > 0 || (other !== shared && other.native.home === n.home))
      throw new StackError(
        `the fault stack (${n.home}) would share ${both.map(([w]) => w).join(", ") || "its home"} with the stack in ${other.native.home}; refusing`,
      );
  }
}

export async function runFaults(args: string[]): Promise<number> {
  const keep = args.includes("--keep-stack");
  const patterns = args.filter((a) => a.startsWith("--test-name-pattern="));
  const named = args.filter((a) => a !== "--keep-stack" && !patterns.includes(a));
  const root = loadConfig().repoRoot;
  const env = faultEnv(root);
  const config = loadConfig(env);
  assertSeparateStack(config);
  const clusterEnv = faultEnv(root, true);
  const clusterConfig = loadConfig(clusterEnv);
  assertSeparateStack(clusterConfig, [config]);
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
  const onCluster = (f: string) => path.basename(f) === CLUSTER_FAULT_FILE;
  let code = 0;
  const single = files.filter((f) => !onCluster(f));
  if (single.length > 0) code = await runOnStack(config, env, single, patterns, keep, results);
  const clustered = files.filter(onCluster);
  if (clustered.length > 0)
    code = Math.max(code, await runOnStack(clusterConfig, clusterEnv, clustered, patterns, keep, results));
  const rows = JSON.parse(fs.readFileSync(results, "utf8")) as FaultRow[];
  console.log(`\nfault results (${results}), suite ran ${((Date.now() - t0) / 1000).toFixed(0)} s:\n`);
  console.log(markdownTable(rows));
  if (code !== 0) console.log(`\nwhat each process printed: ${logs}/<process>.log`);
  return code;
}

/** Brings up the stack of `config`, runs `files` against it in one `node --test`, and stops it (unless `keep`). */
async function runOnStack(
  config: PolityConfig,
  env: NodeJS.ProcessEnv,
  files: string[],
  patterns: string[],
  keep: boolean,
  results: string,
): Promise<number> {
  const root = config.repoRoot;
  const s0 = Date.now();
  say(`fault stack: ${config.native.home}`);
  await stackUp(config);
  say(`fault stack up in ${((Date.now() - s0) / 1000).toFixed(1)} s`);
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
  say(
    `${files.map((f) => path.basename(f)).join(", ")} on ${config.native.home}: ${((Date.now() - s0) / 1000).toFixed(0)} s`,
  );
  return code;
}
