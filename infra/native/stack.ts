/**
 * The native local stack: PostgreSQL, Kafka, Apicurio Registry and FerretDB as plain processes on
 * 127.0.0.1, with data and logs in one ignored folder (POLITY_HOME, default .polity/). `up` is
 * idempotent: it installs what is missing, starts only what is down, and waits on each server
 * until it really answers. With POLITY_KAFKA_NODES=3 Kafka is three servers, kafka-1..kafka-3,
 * each started and stopped on its own; "kafka" then names all of them.
 */
import fs from "node:fs";
import { loadConfig, type PolityConfig } from "../../lib/config.js";
import { ferretdbServer } from "./ferretdb.js";
import { kafkaServers } from "./kafka.js";
import { postgresServer } from "./postgres.js";
import { say, StackError } from "./process.js";
import { registryServer } from "./registry.js";
import type { NativeServer, ServerName } from "./server.js";

/** The single-node stack's servers. */
export const SERVER_NAMES: ServerName[] = ["postgres", "kafka", "registry", "mongo"];

/** The servers of this configuration: SERVER_NAMES, with kafka-1..kafka-n for "kafka" in a cluster. */
export function serverNames(config: PolityConfig): ServerName[] {
  return SERVER_NAMES.flatMap((name) =>
    name === "kafka" ? kafkaServers(config.native, config.repoRoot).map((s) => s.name) : [name],
  );
}

export function nativeServers(config: PolityConfig): Record<ServerName, NativeServer> {
  const servers = {
    postgres: postgresServer(config.native),
    registry: registryServer(config.native),
    mongo: ferretdbServer(config.native),
  } as Record<ServerName, NativeServer>;
  for (const kafka of kafkaServers(config.native, config.repoRoot)) servers[kafka.name] = kafka;
  return servers;
}

/** Names as given, with "kafka" standing for every node of a cluster. */
function expandNames(config: PolityConfig, names: ServerName[]): ServerName[] {
  const all = serverNames(config);
  const out = names.flatMap((name) => (name === "kafka" ? all.filter((n) => n.startsWith("kafka")) : [name]));
  return [...new Set(out)];
}

export function parseNames(args: string[], config: PolityConfig = loadConfig()): ServerName[] {
  const known = serverNames(config);
  const accepted: string[] = known.includes("kafka") ? known : [...known, "kafka"];
  for (const a of args) {
    if (!accepted.includes(a)) {
      const all = known.includes("kafka") ? known.join(", ") : `${known.join(", ")} (kafka: every node)`;
      throw new StackError(`unknown server "${a}"; the stack has ${all}.`);
    }
  }
  return args.length > 0 ? expandNames(config, args as ServerName[]) : known;
}

/** The wanted servers plus everything they depend on, dependencies first. */
function withDependencies(servers: Record<ServerName, NativeServer>, names: ServerName[]): ServerName[] {
  const ordered: ServerName[] = [];
  const visit = (name: ServerName) => {
    if (ordered.includes(name)) return;
    servers[name].dependsOn.forEach(visit);
    ordered.push(name);
  };
  names.forEach(visit);
  return ordered;
}

export async function stackUp(config: PolityConfig, names: ServerName[] = serverNames(config)): Promise<void> {
  const servers = nativeServers(config);
  const wanted = withDependencies(servers, expandNames(config, names));
  fs.mkdirSync(config.native.home, { recursive: true });
  const t0 = Date.now();
  // Installs are independent downloads and builds: run them side by side.
  await Promise.all(wanted.map((n) => servers[n].install()));
  // Start each server as soon as its dependencies answer.
  const started = new Map<ServerName, Promise<void>>();
  const start = (name: ServerName): Promise<void> => {
    let p = started.get(name);
    if (!p) {
      p = (async () => {
        await Promise.all(servers[name].dependsOn.map(start));
        const server = servers[name];
        const wasRunning = await server.isRunning();
        if (!wasRunning) say(`${name}: starting ${server.title} on 127.0.0.1:${server.port} (log: ${server.logFile})`);
        const s0 = Date.now();
        await server.start();
        say(`${name}: ${wasRunning ? "already up" : `up in ${((Date.now() - s0) / 1000).toFixed(1)}s`}`);
      })();
      started.set(name, p);
    }
    return p;
  };
  const results = await Promise.allSettled(wanted.map(start));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length > 0) {
    throw new StackError(failures.map((f) => (f.reason as Error).message).join("\n\n"));
  }
  say(`stack up (${wanted.join(", ")}) in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

export async function stackDown(config: PolityConfig, names: ServerName[] = serverNames(config)): Promise<void> {
  const servers = nativeServers(config);
  const wanted = expandNames(config, names);
  // Dependents first: the registry before the PostgreSQL it stores into.
  const order = withDependencies(servers, serverNames(config))
    .reverse()
    .filter((n) => wanted.includes(n));
  const stop = async (name: ServerName) => {
    const server = servers[name];
    if (await server.isRunning()) {
      say(`${name}: stopping`);
      await server.stop();
    }
    say(`${name}: down`);
  };
  // A cluster's nodes go down together: the last of them stopped alone would wait out its
  // controlled shutdown for a quorum that is gone.
  const nodes = order.filter((n) => n.startsWith("kafka-"));
  for (const name of order) {
    if (!name.startsWith("kafka-")) await stop(name);
    else if (name === nodes[0]) await Promise.all(nodes.map(stop));
  }
}

export interface ServerStatus {
  name: ServerName;
  title: string;
  state: "up" | "down" | "not answering";
  port: number;
  detail: string;
  dataDir: string;
  logFile: string;
}

export async function stackStatus(config: PolityConfig): Promise<ServerStatus[]> {
  const servers = nativeServers(config);
  return Promise.all(
    serverNames(config).map(async (name): Promise<ServerStatus> => {
      const s = servers[name];
      const base = { name, title: s.title, port: s.port, dataDir: s.dataDir, logFile: s.logFile };
      if (!(await s.isRunning())) return { ...base, state: "down", detail: "" };
      try {
        return { ...base, state: "up", detail: await s.probe() };
      } catch (e) {
        return { ...base, state: "not answering", detail: (e as Error).message };
      }
    }),
  );
}
