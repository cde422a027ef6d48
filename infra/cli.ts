/**
 * `polity <command>`: every command of the project (`npm start`, `npm test`, `npm run stack -- up`,
 * ... are this CLI through infra/bootstrap.mjs). Each command declares its options in one table
 * (lib/cli-args.ts); the table is parsed strictly and printed by `polity <command> --help`.
 * Commands that need the infrastructure parse their arguments before it is resolved, so a usage
 * error or `--help` never starts the stack.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  CliExit,
  commandUsage,
  defineCommand,
  parseCommandArgs,
  reportCliExit,
  wholeNumber,
  type CommandSpec,
} from "../lib/cli-args.js";
import { loadConfig, repoRoot, urlsToEnv, type InfraUrls, type PolityConfig } from "../lib/config.js";
import { redact, redactUrl } from "../lib/redact.js";
import { say, tail } from "./native/process.js";
import { nativeServers, parseNames, stackDown, stackStatus, stackUp } from "./native/stack.js";
import { resolveInfrastructure, type ResolvedInfra } from "./resolve.js";

const SERVERS = "postgres, kafka, registry, mongo";

function runChild(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "inherit", env });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    child.on("exit", (code, signal) => {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

/** Test files: every *.test.ts under the source folders (or the ones named on the command line). */
function testFiles(config: PolityConfig, args: string[]): string[] {
  if (args.length > 0) return args.map((a) => path.resolve(a));
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith(".test.ts")) found.push(full);
    }
  };
  walk(config.repoRoot);
  return found.sort();
}

/** Resolves the infrastructure for the length of `work`, then releases what resolution started. */
async function withInfra<T>(config: PolityConfig, work: (infra: ResolvedInfra) => Promise<T>): Promise<T> {
  const infra = await resolveInfrastructure(config);
  try {
    return await work(infra);
  } finally {
    await infra.release();
  }
}

async function test(config: PolityConfig, args: string[]): Promise<number> {
  const bin = (name: string) => path.join(config.repoRoot, "node_modules", ".bin", name);
  say("typecheck (tsc --noEmit)");
  const tsc = await runChild(bin("tsc"), ["--noEmit", "-p", config.repoRoot], process.env);
  if (tsc !== 0) return tsc;
  const ui = await import("./ui-build.js");
  say("typecheck the dashboard (tsc -p ui)");
  const uiTsc = await ui.typecheckUi();
  if (uiTsc !== 0) return uiTsc;
  await ui.ensureUi(say);
  const files = testFiles(config, args);
  // The dashboard's tests drive Debian's Chromium: installed here when missing (root), like PostgreSQL.
  if (files.some((f) => f.includes(`${path.sep}test${path.sep}ui${path.sep}`)))
    await (await import("./chromium.js")).ensureChromium();
  return withInfra(config, async (infra) => {
    say(`infrastructure: ${JSON.stringify(infra.sources)}`);
    // The alert rules' tests need promtool (infra/native/promtool.ts): installed here when missing.
    if (files.some((f) => path.basename(f) === "metrics-rules.test.ts")) {
      const { ensurePromtool } = await import("./native/promtool.js");
      const promtool = await ensurePromtool();
      say(
        promtool.path === null
          ? `promtool: ${promtool.reason}; the promtool checks of metrics-rules.test.ts will be skipped`
          : `promtool: ${promtool.path} (${promtool.version})`,
      );
    }
    say(`running ${files.length} test file(s)`);
    return runChild(
      process.execPath,
      ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", ...files],
      {
        ...process.env,
        ...urlsToEnv(infra.urls),
        // Tests of the native stack itself (stop/restart) run only when it serves every URL.
        POLITY_NATIVE_STACK: Object.values(infra.sources).every((s) => s === "native") ? "1" : "",
      },
    );
  });
}

async function start(config: PolityConfig, tiers: string): Promise<number> {
  const { runProcessors, parseTiers } = await import("../processors/main.js");
  const roles = parseTiers(tiers);
  return withInfra(config, async (infra) => {
    say(`starting the hierarchy: ${roles.join(", ")}`);
    const { loadTopology } = await import("../processors/topology.js");
    const topology = loadTopology(config.topologyFile);
    const hierarchy = await runProcessors(infra.urls, roles, (line) => console.log(`[hierarchy] ${line}`), topology);
    const { startProjections, parseReadModels } = await import("../projections/run.js");
    const { kafkaClient } = await import("../lib/kafka.js");
    const { Codec } = await import("../schemas/codec.js");
    const projections = await startProjections({
      models: parseReadModels(config.readModels),
      kafka: kafkaClient(infra.urls.kafkaBrokers, `${config.clientId}-projections`),
      codec: Codec.forUrl(infra.urls.schemaRegistryUrl),
      urls: infra.urls,
      topicPrefix: config.topicPrefix,
      log: (line) => console.log(`[read models] ${line}`),
    });
    const { serveMetrics } = await import("../lib/metrics.js");
    const metrics = await serveMetrics(config.metricsPort, (line) => console.log(`[metrics] ${line}`));
    const gateway = await startConfiguredGateway(config, infra.urls);
    console.log("Polity ready");
    console.log(
      `  gateway: ${gateway.url}/graphql (GraphiQL), ${gateway.url}/api/v1, token: npm run token -- --role operator`,
    );
    if (config.gatewayUi)
      console.log(
        `  dashboard: ${gateway.url}/ui (npm run token prints a link that signs in), API docs: ${gateway.url}/api-docs`,
      );
    for (const [name, value] of Object.entries(urlsToEnv(infra.urls))) console.log(`  ${name}=${redactUrl(value)}`);
    console.log(`  (sources: ${JSON.stringify(infra.sources)})`);
    console.log("Try `npm run demo -- --attach` in another terminal.");
    console.log("Ctrl-C stops this process; `npm run stack -- down` stops the native stack.");
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    say("stopping the hierarchy and the read models");
    metrics.close();
    await gateway.stop();
    await Promise.all([hierarchy.stop(), projections.stop()]);
    return 0;
  });
}

async function status(config: PolityConfig): Promise<number> {
  const rows = await stackStatus(config);
  const table = [["server", "state", "port", "version", "data dir", "detail"]].concat(
    rows.map((r) => [r.name, r.state, String(r.port), r.title, r.dataDir, r.detail]),
  );
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table)
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    );
  return 0;
}

function logs(config: PolityConfig, names: string[], lines: number): number {
  const servers = nativeServers(config);
  for (const name of parseNames(names)) {
    console.log(`==> ${servers[name].logFile} <==`);
    console.log(tail(servers[name].logFile, lines));
  }
  return 0;
}

interface Command {
  spec: () => CommandSpec | Promise<CommandSpec>;
  /** How npm invokes it, for `polity --help`. */
  npm?: string;
  run: (args: string[], config: () => PolityConfig) => Promise<number>;
}

const noOptions = (name: string, summary: string, extra: Partial<CommandSpec> = {}) =>
  defineCommand({ name, summary, options: {}, ...extra });

const START = defineCommand({
  name: "start",
  summary: "resolve the infrastructure, run the hierarchy, the read models and the gateway until Ctrl-C",
  options: {
    tiers: {
      type: "string",
      value: "tier,...",
      default: "all",
      help: "the tiers to run in this process: president, governor, mayor, worker (comma-separated) or all",
    },
  },
  notes: "Settings come from the environment (README, Configuration): POLITY_TOPOLOGY_FILE, POLITY_READ_MODELS, ...",
});

const TEST = noOptions(
  "test",
  "typecheck, resolve the infrastructure, run the tests (every *.test.ts, or the files named)",
  {
    args: "[file.test.ts ...]",
    positionals: { max: Infinity },
  },
);

const FAULTS = defineCommand({
  name: "faults",
  summary: "the fault-injection suite on a stack of its own (.polity/faults-stack)",
  args: "[file.test.ts ...]",
  positionals: { max: Infinity },
  options: {
    "test-name-pattern": {
      type: "string",
      value: "regex",
      multiple: true,
      help: "run only the tests whose name matches",
    },
    "keep-stack": { type: "boolean", help: "leave the faults stack running afterwards" },
  },
});

const SERVER_ARGS = {
  args: "[server...]",
  positionals: { max: Infinity },
  notes: `servers: ${SERVERS} (default: all)`,
};

const STACK = {
  up: noOptions(
    "stack up",
    "install and start the native stack, wait until each server answers (idempotent)",
    SERVER_ARGS,
  ),
  down: noOptions("stack down", "stop the native stack (dependents first); no process is left behind", SERVER_ARGS),
  status: noOptions("stack status", "each server: state, port, version, data dir"),
  logs: defineCommand({
    name: "stack logs",
    summary: "the last lines of each server's log (.polity/logs/<server>.log)",
    ...SERVER_ARGS,
    options: { lines: { type: "string", short: "n", value: "N", default: "40", help: "lines per server" } },
  }),
};

const SCHEMAS = {
  gen: noOptions("schemas gen", "TypeScript types and the AsyncAPI document from schemas/avro"),
  check: noOptions("schemas check", "refuse a schema change the registered versions cannot follow"),
  register: noOptions("schemas register", "create the catalog's topics, register every schema (idempotent)"),
};

const UI = defineCommand({
  name: "ui",
  summary: "build the dashboard (ui/) into dist/ui when stale (npm start and npm test do it too)",
  options: {
    force: { type: "boolean", help: "build even when dist/ui is up to date" },
    check: { type: "boolean", help: "typecheck ui/ first" },
  },
});

const TOPOLOGY_DESCRIBE = defineCommand({
  name: "topology describe",
  summary:
    "what each role of the hierarchy reads, restores, writes and runs (topics, consumer groups, transactional ids); nothing is started",
  options: { json: { type: "boolean", help: "the description as JSON" } },
  notes:
    "The topology is POLITY_TOPOLOGY_FILE's (default processors/config/topology.json), topics with POLITY_TOPIC_PREFIX.",
});

/**
 * A command whose run function takes (urls, args) and parses them itself with `spec`; `check`
 * refuses bad values before the infrastructure is resolved.
 */
function withUrls(
  spec: () => Promise<CommandSpec>,
  run: () => Promise<(urls: ResolvedInfra["urls"], args: string[]) => Promise<number>>,
  npm?: string,
  check?: (args: string[]) => Promise<unknown>,
): Command {
  return {
    spec,
    npm,
    run: async (args, config) => {
      await check?.(args);
      return withInfra(config(), async (infra) => (await run())(infra.urls, args));
    },
  };
}

const GATEWAY = noOptions(
  "gateway",
  "run the gateway alone (GraphQL, REST, /health, /ready, /metrics) on POLITY_GATEWAY_HOST:POLITY_GATEWAY_PORT until stopped",
  { notes: "The processors and the read models run elsewhere (polity processors, polity projections)." },
);

/** The gateway as `npm start` and `polity gateway` run it: the dashboard built when stale, then the server. */
async function startConfiguredGateway(config: PolityConfig, urls: InfraUrls) {
  if (config.gatewayUi) await (await import("./ui-build.js")).ensureUi((line) => console.log(`[ui] ${line}`));
  const { startGateway } = await import("../gateway/main.js");
  return startGateway({
    urls,
    port: config.gatewayPort,
    host: config.gatewayHost,
    home: config.native.home,
    jwtSecret: config.jwtSecret,
    ui: config.gatewayUi,
    topicPrefix: config.topicPrefix,
    clientId: config.clientId,
    log: (line) => console.log(`[gateway] ${line}`),
  });
}

async function gateway(config: PolityConfig): Promise<number> {
  return withInfra(config, async (infra) => {
    const running = await startConfiguredGateway(config, infra.urls);
    console.log(`gateway ready: ${running.url}`);
    await (await import("../lib/probe-server.js")).untilSignal();
    say("stopping the gateway");
    await running.stop();
    return 0;
  });
}

const COMMANDS: Record<string, Command> = {
  start: {
    spec: () => START,
    npm: "npm start",
    run: (args, config) => start(config(), parseCommandArgs(START, args).values.tiers),
  },
  processors: withUrls(
    async () => (await import("../processors/main.js")).PROCESSORS_COMMAND,
    async () => (await import("../processors/main.js")).runProcessorsCommand,
  ),
  projections: withUrls(
    async () => (await import("../projections/main.js")).PROJECTIONS_COMMAND,
    async () => (await import("../projections/main.js")).runProjectionsCommand,
  ),
  gateway: {
    spec: () => GATEWAY,
    run: (args, config) => (parseCommandArgs(GATEWAY, args), gateway(config())),
  },
  demo: withUrls(
    async () => (await import("../processors/demo.js")).DEMO_COMMAND,
    async () => (await import("../processors/demo.js")).runDemo,
    "npm run demo --",
    async (args) => (await import("../processors/demo.js")).demoOptions(args),
  ),
  test: {
    spec: () => TEST,
    npm: "npm test --",
    run: (args, config) => test(config(), parseCommandArgs(TEST, args).positionals),
  },
  faults: {
    spec: () => FAULTS,
    npm: "npm run test:faults --",
    async run(args) {
      const { values, positionals } = parseCommandArgs(FAULTS, args);
      const { runFaults } = await import("./faults.js");
      return runFaults([
        ...positionals,
        ...(values["keep-stack"] ? ["--keep-stack"] : []),
        ...values["test-name-pattern"].map((p) => `--test-name-pattern=${p}`),
      ]);
    },
  },
  "stack up": {
    spec: () => STACK.up,
    npm: "npm run stack -- up",
    run: async (args, config) => {
      const names = parseNames(parseCommandArgs(STACK.up, args).positionals);
      await stackUp(config(), names);
      return status(config());
    },
  },
  "stack down": {
    spec: () => STACK.down,
    npm: "npm run stack -- down",
    run: async (args, config) => {
      await stackDown(config(), parseNames(parseCommandArgs(STACK.down, args).positionals));
      return 0;
    },
  },
  "stack status": {
    spec: () => STACK.status,
    npm: "npm run stack -- status",
    run: (args, config) => (parseCommandArgs(STACK.status, args), status(config())),
  },
  "stack logs": {
    spec: () => STACK.logs,
    npm: "npm run stack -- logs",
    run: async (args, config) => {
      const { values, positionals } = parseCommandArgs(STACK.logs, args);
      return logs(config(), positionals, wholeNumber("lines", values.lines));
    },
  },
  "schemas gen": {
    spec: () => SCHEMAS.gen,
    npm: "npm run schemas:gen",
    async run(args) {
      parseCommandArgs(SCHEMAS.gen, args);
      const { writeGenerated } = await import("../schemas/codegen.js");
      console.log(`wrote ${writeGenerated().join(", ")}`);
      return 0;
    },
  },
  "schemas check": {
    spec: () => SCHEMAS.check,
    npm: "npm run schemas:check",
    run: async (args, config) => {
      parseCommandArgs(SCHEMAS.check, args);
      const { runSchemaCommand } = await import("../schemas/tools.js");
      return withInfra(config(), (infra) => runSchemaCommand("check", infra.urls));
    },
  },
  "schemas register": {
    spec: () => SCHEMAS.register,
    npm: "npm run schemas:register",
    run: async (args, config) => {
      parseCommandArgs(SCHEMAS.register, args);
      const { runSchemaCommand } = await import("../schemas/tools.js");
      return withInfra(config(), (infra) => runSchemaCommand("register", infra.urls));
    },
  },
  "topology describe": {
    spec: () => TOPOLOGY_DESCRIBE,
    async run(args, config) {
      const { values } = parseCommandArgs(TOPOLOGY_DESCRIBE, args);
      const { loadTopology } = await import("../processors/topology.js");
      const { describeTopology, formatTopology } = await import("../processors/roles/describe.js");
      const description = describeTopology(loadTopology(config().topologyFile), { topicPrefix: config().topicPrefix });
      console.log(values.json ? JSON.stringify(description, null, 2) : formatTopology(description));
      return 0;
    },
  },
  token: {
    spec: async () => (await import("../gateway/token.js")).TOKEN_COMMAND,
    npm: "npm run token --",
    run: async (args) => (await import("../gateway/token.js")).runToken(args),
  },
  ui: {
    spec: () => UI,
    npm: "npm run ui:build --",
    async run(args) {
      const { values } = parseCommandArgs(UI, args);
      const { runUiBuild } = await import("./ui-build.js");
      return runUiBuild([...(values.force ? ["--force"] : []), ...(values.check ? ["--check"] : [])]);
    },
  },
  rebuild: withUrls(
    async () => (await import("../projections/rebuild-command.js")).REBUILD_COMMAND,
    async () => (await import("../projections/rebuild-command.js")).runRebuild,
    "npm run rebuild --",
  ),
  ...Object.fromEntries(
    (["goal", "state", "verify", "rebuild"] as const).map((sub) => [
      `audit ${sub}`,
      withUrls(
        async () => (await import("../projections/audit/command.js")).AUDIT_COMMANDS[sub],
        async () => {
          const { runAudit } = await import("../projections/audit/command.js");
          return (urls, args) => runAudit(urls, [sub, ...args]);
        },
        `npm run audit -- ${sub}`,
        async (args) => {
          const audit = await import("../projections/audit/command.js");
          if (sub === "goal") audit.auditGoalArgs(args);
          if (sub === "state") audit.auditStateArgs(args);
        },
      ),
    ]),
  ),
  bench: {
    spec: async () => (await import("../bench/all.js")).BENCH_ALL_COMMAND,
    npm: "npm run bench --",
    run: async (args, config) => {
      const { runAllBenches, benchAllOptions } = await import("../bench/all.js");
      benchAllOptions(args);
      return withInfra(config(), async (infra) => {
        const native = Object.values(infra.sources).includes("native");
        const servers = native ? await stackStatus(config()).catch(() => []) : [];
        return runAllBenches(infra.urls, args, {
          sources: infra.sources,
          servers: servers.map((s) => ({ name: s.name, state: s.state, version: s.title, detail: s.detail })),
        });
      });
    },
  },
  "bench codec": withUrls(
    async () => (await import("../bench/codec.js")).CODEC_BENCH_COMMAND,
    async () => (await import("../bench/codec.js")).runCodecBench,
    "npm run bench:codec --",
  ),
  "bench flow": withUrls(
    async () => (await import("../bench/flow.js")).FLOW_BENCH_COMMAND,
    async () => (await import("../bench/flow.js")).runFlowBench,
    "npm run bench:flow --",
  ),
  "bench gateway": withUrls(
    async () => (await import("../bench/gateway.js")).GATEWAY_BENCH_COMMAND,
    async () => (await import("../bench/gateway.js")).runGatewayBench,
    "npm run bench:gateway --",
  ),
  "bench projections": withUrls(
    async () => (await import("../bench/projections.js")).PROJECTIONS_BENCH_COMMAND,
    async () => (await import("../bench/projections.js")).runProjectionsBench,
    "npm run bench:projections --",
  ),
  "bench replay": withUrls(
    async () => (await import("../bench/replay.js")).REPLAY_BENCH_COMMAND,
    async () => (await import("../bench/replay.js")).runReplayBench,
    "npm run bench:replay --",
  ),
  "bench models": withUrls(
    async () => (await import("../bench/models.js")).MODELS_BENCH_COMMAND,
    async () => (await import("../bench/models.js")).runModelsBench,
    "npm run bench:models --",
  ),
  soak: withUrls(
    async () => (await import("../bench/soak.js")).SOAK_COMMAND,
    async () => (await import("../bench/soak.js")).runSoak,
    "npm run soak --",
  ),
};

function version(): string {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string }).version;
}

const GLOBAL_OPTIONS = "--help (-h), --version";

/** The commands under `prefix` (all when empty), each with its summary and the npm script that runs it. */
async function commandList(prefix = ""): Promise<string> {
  const names = Object.keys(COMMANDS).filter((n) => !prefix || n === prefix || n.startsWith(`${prefix} `));
  // A summary lives in the command's own table; one that cannot be loaded is listed without it.
  const summaries = await Promise.all(
    names.map(async (name) => {
      try {
        return (await COMMANDS[name]!.spec()).summary;
      } catch {
        return "";
      }
    }),
  );
  const width = Math.max(...names.map((n) => n.length)) + 2;
  return names
    .map((name, i) => {
      const npm = COMMANDS[name]!.npm;
      return `  ${name.padEnd(width)}${summaries[i]}${npm ? `\n  ${"".padEnd(width)}  ${npm}` : ""}`;
    })
    .join("\n");
}

async function topLevelUsage(): Promise<string> {
  return [
    "usage: polity <command> [options]   (in this repository: npm run polity -- <command> [options])",
    "       polity <command> --help      a command's options",
    "       polity help <command>        the same",
    "       polity --version",
    "",
    "commands (under each, the npm script that runs it):",
    await commandList(),
    "",
    "`polity bench` runs every benchmark (also `polity bench all`).",
  ].join("\n");
}

/** The command named by the first words of argv, and the arguments after them. */
function findCommand(argv: string[]): { name: string; args: string[] } | null {
  const [first, second] = argv;
  if (first === undefined) return null;
  if (first === "bench" && second === "all") return { name: "bench", args: argv.slice(2) };
  if (second !== undefined && COMMANDS[`${first} ${second}`])
    return { name: `${first} ${second}`, args: argv.slice(2) };
  if (COMMANDS[first]) return { name: first, args: argv.slice(1) };
  return null;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) throw new CliExit(2, `polity: name a command\n${await topLevelUsage()}`);
  if (first === "--help" || first === "-h" || (first === "help" && rest.length === 0)) {
    console.log(await topLevelUsage());
    return 0;
  }
  if (first === "--version") {
    console.log(version());
    return 0;
  }
  const helpFor = first === "help";
  const words = helpFor ? rest : argv;
  const [head, sub] = words as [string, string | undefined];
  if (head.startsWith("-"))
    throw new CliExit(2, `polity: unknown option ${head}; known options before a command: ${GLOBAL_OPTIONS}`);
  const found = findCommand(words);
  if (!found) {
    const group = Object.keys(COMMANDS).some((n) => n.startsWith(`${head} `));
    if (!group) {
      const known = [...new Set(Object.keys(COMMANDS).map((n) => n.split(" ")[0]))].join(", ");
      throw new CliExit(2, `polity: unknown command ${head}; the commands are ${known} (polity --help describes each)`);
    }
    const list = await commandList(head);
    if (helpFor || sub === "--help" || sub === "-h") {
      console.log(
        `usage: polity ${head} <subcommand> [options]\n\n${list}\n\npolity ${head} <subcommand> --help shows its options.`,
      );
      return 0;
    }
    throw new CliExit(
      2,
      `polity ${head}: ${sub === undefined ? "name a subcommand" : `unknown subcommand ${sub}`}; one of:\n${list}`,
    );
  }
  if (helpFor) {
    console.log(commandUsage(await COMMANDS[found.name]!.spec()));
    return 0;
  }
  const command = COMMANDS[found.name]!;
  // Parse before anything runs: --help and usage errors end here, before the stack is resolved.
  parseCommandArgs(await command.spec(), found.args);
  let config: PolityConfig | undefined;
  return command.run(found.args, () => (config ??= loadConfig()));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    if (e instanceof CliExit) process.exit(reportCliExit(e));
    // A driver's message may quote a connection URL: its password is printed as "***".
    console.error(`error: ${redact(e.message)}`);
    process.exit(1);
  },
);
