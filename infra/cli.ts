/**
 * `npm start`, `npm test` and `npm run stack -- up|down|status|logs [server...]`.
 * Reached through infra/bootstrap.mjs, which has installed the node modules.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { loadConfig, urlsToEnv, type PolityConfig } from "../lib/config.js";
import { say, tail } from "./native/process.js";
import { nativeServers, parseNames, stackDown, stackStatus, stackUp } from "./native/stack.js";
import { resolveInfrastructure, type ResolvedInfra } from "./resolve.js";
import { writeGenerated } from "../schemas/codegen.js";
import { runSchemaCommand } from "../schemas/tools.js";

const USAGE = `usage:
  npm start [-- --tiers a,b]         resolve the infrastructure and run the hierarchy (all tiers)
  npm run demo [-- --attach] [--dgm] submit a sample project and follow it to the end
  npm test [-- file.test.ts ...]     typecheck, resolve the infrastructure, run the tests
  npm run test:faults [-- file.test.ts ...] [--test-name-pattern=<regex>] [--keep-stack]
                                     fault-injection suite on a stack of its own (.polity/faults-stack)
  npm run stack -- up [server...]    install and start the native stack (idempotent)
  npm run stack -- down [server...]  stop it
  npm run stack -- status            each server: state, port, version, data dir
  npm run stack -- logs [server] [-n LINES]
  npm run schemas:gen                TypeScript types and AsyncAPI document from schemas/avro
  npm run schemas:check              refuse a schema change the registered versions cannot follow
  npm run schemas:register           create the catalog's topics, register every schema
  npm run token -- --role R [--tenant T] [--sub S] [--agent A]
                                     print a development bearer token for the gateway (and a
                                     dashboard link with it, on stderr); R is platform-admin,
                                     admin, operator, viewer or agent (platform-admin: tenant platform)
  npm run ui:build [-- --force] [--check]
                                     build the dashboard (ui/) into dist/ui when stale (npm start
                                     and npm test do it too); --check typechecks ui/ first
  npm run rebuild [-- --models analytics,state] [--swap] [--keep]
                                     rebuild read models from offset 0, compare with the live ones
  npm run audit -- goal <id> [--from ISO] [--json] | state --at ISO [--goal id] | verify | rebuild
                                     replay the log: a goal's causal timeline, state as of a time,
                                     the hash chain checked, read models rebuilt and compared
  npm run bench [-- --quick] [--only flow,scaling] [--reps R] [--help]
                                     every benchmark beside its baseline, the scaling and goal-size
                                     curves; bench/results/<date>.json, .md, .svg (about 30 min)
  npm run bench:replay [-- --goals G --copies K --reps R]
                                     audit replay (decode + evolve) next to a bare kafkajs consume
  npm run bench:gateway              gateway goal query vs a bare express route; subscription latency
  npm run bench:codec                codec and writer throughput next to raw avsc and bare kafkajs
  npm run bench:flow [-- --goals N --tasks M]
                                     hierarchy throughput next to a bare kafkajs transactional loop
  npm run bench:projections [-- --goals N --reps R]
                                     read model events/s next to bare batched inserts of the same rows
  npm run bench:models [-- --goals N --plan-goals P --concurrency C --quick]
                                     orchestration overhead per model task (embedded runtime, tiny
                                     GGUF) beside the model call's own time, and the plan step's
servers: postgres, kafka, registry, mongo`;

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

async function start(config: PolityConfig, args: string[]): Promise<number> {
  const { runProcessors, parseTiers } = await import("../processors/main.js");
  const i = args.indexOf("--tiers");
  const roles = parseTiers(i >= 0 ? args[i + 1] : undefined);
  return withInfra(config, async (infra) => {
    say(`starting the hierarchy: ${roles.join(", ")}`);
    const hierarchy = await runProcessors(infra.urls, roles, (line) => console.log(`[hierarchy] ${line}`));
    const { startProjections, readModelsFromEnv } = await import("../projections/run.js");
    const { kafkaClient } = await import("../lib/kafka.js");
    const { Codec } = await import("../schemas/codec.js");
    const projections = await startProjections({
      models: readModelsFromEnv(),
      kafka: kafkaClient(infra.urls.kafkaBrokers, `${config.clientId}-projections`),
      codec: Codec.forUrl(infra.urls.schemaRegistryUrl),
      urls: infra.urls,
      topicPrefix: config.topicPrefix,
      log: (line) => console.log(`[read models] ${line}`),
    });
    const { serveMetrics } = await import("../lib/metrics.js");
    const metrics = await serveMetrics(config.metricsPort, (line) => console.log(`[metrics] ${line}`));
    if (config.gatewayUi) await (await import("./ui-build.js")).ensureUi((line) => console.log(`[ui] ${line}`));
    const { startGateway } = await import("../gateway/main.js");
    const gateway = await startGateway({
      urls: infra.urls,
      port: config.gatewayPort,
      home: config.native.home,
      topicPrefix: config.topicPrefix,
      clientId: config.clientId,
      log: (line) => console.log(`[gateway] ${line}`),
    });
    console.log("Polity ready");
    console.log(
      `  gateway: ${gateway.url}/graphql (GraphiQL), ${gateway.url}/api/v1, token: npm run token -- --role operator`,
    );
    if (config.gatewayUi)
      console.log(
        `  dashboard: ${gateway.url}/ui (npm run token prints a link that signs in), API docs: ${gateway.url}/api-docs`,
      );
    for (const [name, value] of Object.entries(urlsToEnv(infra.urls))) console.log(`  ${name}=${value}`);
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

function logs(config: PolityConfig, args: string[]): number {
  let lines = 40;
  const n = args.indexOf("-n");
  if (n >= 0) {
    lines = Number(args[n + 1]);
    args.splice(n, 2);
  }
  const servers = nativeServers(config);
  for (const name of parseNames(args)) {
    console.log(`==> ${servers[name].logFile} <==`);
    console.log(tail(servers[name].logFile, lines));
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const config = loadConfig();
  const [command, ...rest] = argv;
  if (command === "test") return test(config, rest);
  if (command === "start") return start(config, rest);
  if (command === "demo") {
    const { runDemo } = await import("../processors/demo.js");
    return withInfra(config, (infra) => runDemo(infra.urls, rest));
  }
  if (command === "schemas") {
    const [sub] = rest;
    if (sub === "gen") {
      console.log(`wrote ${writeGenerated().join(", ")}`);
      return 0;
    }
    if (sub === "check" || sub === "register") {
      return withInfra(config, (infra) => runSchemaCommand(sub, infra.urls));
    }
  }
  if (command === "token") {
    const { runToken } = await import("../gateway/token.js");
    return runToken(rest);
  }
  if (command === "ui") {
    const { runUiBuild } = await import("./ui-build.js");
    return runUiBuild(rest);
  }
  if (command === "rebuild") {
    const { runRebuild } = await import("../projections/rebuild-command.js");
    return withInfra(config, (infra) => runRebuild(infra.urls, rest));
  }
  if (command === "audit") {
    const { runAudit } = await import("../projections/audit/command.js");
    return withInfra(config, (infra) => runAudit(infra.urls, rest));
  }
  if (command === "bench" && (rest[0] === undefined || rest[0] === "all" || rest[0].startsWith("--"))) {
    const { runAllBenches } = await import("../bench/all.js");
    const args = rest[0] === "all" ? rest.slice(1) : rest;
    return withInfra(config, async (infra) => {
      const native = Object.values(infra.sources).includes("native");
      const servers = native ? await stackStatus(config).catch(() => []) : [];
      return runAllBenches(infra.urls, args, {
        sources: infra.sources,
        servers: servers.map((s) => ({ name: s.name, state: s.state, version: s.title, detail: s.detail })),
      });
    });
  }
  if (command === "bench" && rest[0] === "replay") {
    const { runReplayBench } = await import("../bench/replay.js");
    return withInfra(config, (infra) => runReplayBench(infra.urls, rest.slice(1)));
  }
  if (command === "bench" && rest[0] === "codec") {
    const { runCodecBench } = await import("../bench/codec.js");
    return withInfra(config, (infra) => runCodecBench(infra.urls, rest.slice(1)));
  }
  if (command === "bench" && rest[0] === "gateway") {
    const { runGatewayBench } = await import("../bench/gateway.js");
    return withInfra(config, (infra) => runGatewayBench(infra.urls, rest.slice(1)));
  }
  if (command === "bench" && rest[0] === "flow") {
    const { runFlowBench } = await import("../bench/flow.js");
    return withInfra(config, (infra) => runFlowBench(infra.urls, rest.slice(1)));
  }
  if (command === "bench" && rest[0] === "models") {
    const { runModelsBench } = await import("../bench/models.js");
    return withInfra(config, (infra) => runModelsBench(infra.urls, rest.slice(1)));
  }
  if (command === "bench" && rest[0] === "projections") {
    const { runProjectionsBench } = await import("../bench/projections.js");
    return withInfra(config, (infra) => runProjectionsBench(infra.urls, rest.slice(1)));
  }
  if (command === "soak") {
    const { runSoak } = await import("../bench/soak.js");
    return withInfra(config, (infra) => runSoak(infra.urls, rest));
  }
  if (command === "faults") {
    const { runFaults } = await import("./faults.js");
    return runFaults(rest);
  }
  if (command === "stack") {
    const [sub, ...names] = rest;
    if (sub === "up") return stackUp(config, parseNames(names)).then(() => status(config));
    if (sub === "down") return stackDown(config, parseNames(names)).then(() => 0);
    if (sub === "status") return status(config);
    if (sub === "logs") return logs(config, names);
  }
  console.error(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  },
);
