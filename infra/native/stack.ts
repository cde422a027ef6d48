/**
 * The native local stack: PostgreSQL, Kafka, Apicurio Registry and FerretDB as plain processes on
 * 127.0.0.1, with data and logs in one ignored folder (POLITY_HOME, default .polity/). `up` is
 * idempotent: it installs what is missing, starts only what is down, and waits on each server
 * until it really answers.
 */
import fs from "node:fs";
import type { PolityConfig } from "../../lib/config.js";
import { ferretdbServer } from "./ferretdb.js";
import { kafkaServer } from "./kafka.js";
import { postgresServer } from "./postgres.js";
import { say, StackError } from "./process.js";
import { registryServer } from "./registry.js";
import type { NativeServer, ServerName } from "./server.js";

export const SERVER_NAMES: ServerName[] = ["postgres", "kafka", "registry", "mongo"];

export function nativeServers(config: PolityConfig): Record<ServerName, NativeServer> {
  return {
    postgres: postgresServer(config.native),
    kafka: kafkaServer(config.native, config.repoRoot),
    registry: registryServer(config.native),
    mongo: ferretdbServer(config.native),
  };
}

export function parseNames(args: string[]): ServerName[] {
  for (const a of args) {
    if (!SERVER_NAMES.includes(a as ServerName)) {
      throw new StackError(`unknown server "${a}"; the stack has ${SERVER_NAMES.join(", ")}.`);
    }
  }
  return args.length > 0 ? (args as ServerName[]) : SERVER_NAMES;
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

export async function stackUp(config: PolityConfig, names: ServerName[] = SERVER_NAMES): Promise<void> {
  const servers = nativeServers(config);
  const wanted = withDependencies(servers, names);
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

export async function stackDown(config: PolityConfig, names: ServerName[] = SERVER_NAMES): Promise<void> {
  const servers = nativeServers(config);
  // Dependents first: the registry before the PostgreSQL it stores into.
  const order = withDependencies(servers, SERVER_NAMES)
    .reverse()
    .filter((n) => names.includes(n));
  for (const name of order) {
    const server = servers[name];
    if (await server.isRunning()) {
      say(`${name}: stopping`);
      await server.stop();
    }
    say(`${name}: down`);
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
    SERVER_NAMES.map(async (name): Promise<ServerStatus> => {
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
