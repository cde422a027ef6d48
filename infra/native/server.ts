/** What the stack needs to know about each native server; one module per server implements it. */
import path from "node:path";
import type { NativeStackConfig } from "../../lib/config.js";
import { isAlive, runningPid, startDaemon, stopPid, waitUntilAnswers, type DaemonSpec } from "./process.js";

/** A node of a Kafka cluster (POLITY_KAFKA_NODES, at most MAX_KAFKA_NODES of lib/config.ts). */
export type KafkaNodeName = `kafka-${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9}`;

/** "kafka" is the single node; a cluster (POLITY_KAFKA_NODES=3) has kafka-1..kafka-3 instead. */
export type ServerName = "postgres" | "kafka" | "registry" | "mongo" | KafkaNodeName;

export interface NativeServer {
  name: ServerName;
  /** What it is, for status and errors: "Apache Kafka 3.9.1 (KRaft)". */
  title: string;
  port: number;
  dataDir: string;
  logFile: string;
  /** Servers that must be up before this one starts (the registry keeps its schemas in PostgreSQL). */
  dependsOn: ServerName[];
  /** Fetches or builds what is missing; idempotent and cached across clones. */
  install(): Promise<void>;
  isRunning(): Promise<boolean>;
  /** Starts the process and resolves once it really answers. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Throws unless the server answers; returns a one-line description. */
  probe(): Promise<string>;
}

export function stackPaths(native: NativeStackConfig, name: ServerName) {
  return {
    dataDir: path.join(native.home, name),
    logFile: path.join(native.home, "logs", `${name}.log`),
    pidFile: path.join(native.home, "run", `${name}.pid`),
  };
}

/** Shared start/stop/isRunning for servers we run ourselves and track by pid file. */
export function pidFileDaemon(options: {
  name: string;
  home: string;
  pidFile: string;
  logFile: string;
  startTimeoutMs: number;
  stopGraceMs: number;
  spec: () => DaemonSpec;
  probe: () => Promise<string>;
  beforeStart?: () => Promise<void>;
  /** Text the process's command line must contain to be ours; the stack home unless told. */
  marker?: () => string;
  stopSignal?: NodeJS.Signals;
}): Pick<NativeServer, "isRunning" | "start" | "stop"> {
  // Every daemon's command line names the stack home, so a reused pid is not mistaken for ours.
  const pid = () => runningPid(options.pidFile, options.marker?.() ?? options.home);
  return {
    isRunning: () => Promise.resolve(pid() !== null),
    async start() {
      let spawned: number | null = null;
      if (pid() === null) {
        await options.beforeStart?.();
        spawned = startDaemon(options.spec());
      }
      await waitUntilAnswers(options.probe, {
        name: options.name,
        logFile: options.logFile,
        timeoutMs: options.startTimeoutMs,
        // The process we spawned counts too: PostgreSQL replaces its pid file while starting, and
        // for that moment the file names nobody.
        stillRunning: () => pid() !== null || (spawned !== null && isAlive(spawned)),
      });
    },
    async stop() {
      const p = pid();
      if (p !== null) await stopPid(p, options.stopGraceMs, options.stopSignal);
    },
  };
}
