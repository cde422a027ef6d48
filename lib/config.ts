/**
 * The one typed configuration module. Every process (the stack tool, `npm start`, tests, and later
 * the processors, projections and gateway) reads its settings here, from the environment, with
 * typed defaults. Nothing else reads process.env for these names: a module that needs a setting
 * takes it as a parameter, and its caller passes the value from loadConfig().
 */
import { isIP } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Where the infrastructure comes from; `auto` tries env URLs, then Docker, then the native stack. */
export type InfraMode = "auto" | "env" | "docker" | "native";

/** The four endpoints every Polity process talks to. */
export interface InfraUrls {
  /** Kafka bootstrap servers, host:port. */
  kafkaBrokers: string[];
  /** Base URL of a Confluent-compatible schema registry API. */
  schemaRegistryUrl: string;
  /** MongoDB connection string (real MongoDB or the FerretDB wire store), database included. */
  mongoUrl: string;
  /** PostgreSQL connection string, database included. */
  databaseUrl: string;
}

/** Settings of the no-Docker local stack that infra/native runs. */
export interface NativeStackConfig {
  /** Data, logs and pid files: one ignored folder in the repo. */
  home: string;
  /** Downloaded and built server distributions, shared by every clone on the machine. */
  cacheDir: string;
  kafkaPort: number;
  kafkaControllerPort: number;
  registryPort: number;
  mongoPort: number;
  postgresPort: number;
  kafkaHeap: string;
  registryHeap: string;
  kafkaVersion: string;
  apicurioVersion: string;
  /** The registry release used where no Java 21 runtime is found. */
  apicurioVersionJava17: string;
  ferretdbVersion: string;
}

export interface PolityConfig {
  repoRoot: string;
  infraMode: InfraMode;
  /** The URLs given explicitly in the environment; a component missing here is resolved. */
  explicitUrls: Partial<InfraUrls>;
  native: NativeStackConfig;
  /** Used as the Kafka client id prefix and in log lines. */
  clientId: string;
  /**
   * Put before every topic, consumer group and transactional id name, so that several Polity
   * deployments (or test runs) can share one Kafka cluster without reading each other's data.
   */
  topicPrefix: string;
  /** Where `npm start` serves Prometheus metrics (GET /metrics on 127.0.0.1). */
  metricsPort: number;
  /** Where `npm start` serves the gateway (GraphQL, REST, /health, /ready, /metrics), on gatewayHost. */
  gatewayPort: number;
  /**
   * The address the gateway listens on (POLITY_GATEWAY_HOST): 127.0.0.1 by default, so a fresh
   * machine exposes nothing; 0.0.0.0 (or ::) serves every interface, e.g. in a container.
   */
  gatewayHost: string;
  /** Whether the gateway serves the web dashboard (/ui), GraphiQL and the API docs page (/api-docs). */
  gatewayUi: boolean;
  /** POLITY_TENANT_PLANS as given: JSON from tenant to plan, parsed by gateway/plans.ts; null when unset. */
  tenantPlans: string | null;
  /** POLITY_TOPOLOGY_FILE: the hierarchies to run (processors/topology.ts reads and checks it). */
  topologyFile: string;
  /**
   * POLITY_READ_MODELS: the read models `npm start` runs, as named (projections/run.ts checks the
   * names against the models it knows).
   */
  readModels: string[];
  /** POLITY_JWT_SECRET: the gateway's HS256 secret; null means the development secret under native.home. */
  jwtSecret: string | null;
}

/** The environment variable that carries each URL, for every process and error message. */
export const URL_ENV: Record<keyof InfraUrls, string> = {
  kafkaBrokers: "KAFKA_BROKERS",
  schemaRegistryUrl: "SCHEMA_REGISTRY_URL",
  mongoUrl: "MONGO_URL",
  databaseUrl: "DATABASE_URL",
};

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The topology `npm start` runs when POLITY_TOPOLOGY_FILE is not set. */
export const DEFAULT_TOPOLOGY_FILE = path.join(repoRoot, "processors", "config", "topology.json");

export class ConfigError extends Error {
  override name = "ConfigError";
}

function port(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new ConfigError(`${name}=${raw} is not a TCP port; give a whole number from 1 to 65535.`);
  }
  return n;
}

function text(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = env[name];
  return raw === undefined || raw === "" ? fallback : raw;
}

/** A listen address: an IPv4 or IPv6 literal or a host name (no scheme, no port). */
function host(env: NodeJS.ProcessEnv, name: string, fallback: string): string {
  const raw = text(env, name, fallback).trim();
  const bare = raw.replace(/^\[(.*)\]$/, "$1");
  const hostName =
    /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
  if (isIP(bare) === 0 && (!hostName.test(raw) || /^[\d.]+$/.test(raw)))
    throw new ConfigError(
      `${name}=${raw} is not a listen address; give an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, without scheme or port.`,
    );
  return bare;
}

function infraMode(env: NodeJS.ProcessEnv): InfraMode {
  const raw = text(env, "POLITY_INFRA", "auto");
  if (raw === "auto" || raw === "env" || raw === "docker" || raw === "native") return raw;
  throw new ConfigError(`POLITY_INFRA=${raw} is not one of auto, env, docker, native.`);
}

function explicitUrls(env: NodeJS.ProcessEnv): Partial<InfraUrls> {
  const urls: Partial<InfraUrls> = {};
  if (env.KAFKA_BROKERS) {
    urls.kafkaBrokers = env.KAFKA_BROKERS.split(",")
      .map((b) => b.trim())
      .filter(Boolean);
  }
  if (env.SCHEMA_REGISTRY_URL) urls.schemaRegistryUrl = env.SCHEMA_REGISTRY_URL;
  if (env.MONGO_URL) urls.mongoUrl = env.MONGO_URL;
  if (env.DATABASE_URL) urls.databaseUrl = env.DATABASE_URL;
  return urls;
}

function topicPrefix(env: NodeJS.ProcessEnv): string {
  const raw = text(env, "POLITY_TOPIC_PREFIX", "");
  if (!/^[a-zA-Z0-9._-]*$/.test(raw)) {
    throw new ConfigError(
      `POLITY_TOPIC_PREFIX=${raw} may only hold letters, digits, '.', '_' and '-' (Kafka topic characters).`,
    );
  }
  return raw;
}

function onOff(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = text(env, name, fallback ? "on" : "off").toLowerCase();
  if (["on", "true", "1", "yes"].includes(raw)) return true;
  if (["off", "false", "0", "no"].includes(raw)) return false;
  throw new ConfigError(`${name}=${env[name]} is neither on nor off.`);
}

function list(env: NodeJS.ProcessEnv, name: string, fallback: string): string[] {
  return text(env, name, fallback)
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): PolityConfig {
  return {
    repoRoot,
    infraMode: infraMode(env),
    explicitUrls: explicitUrls(env),
    clientId: text(env, "POLITY_CLIENT_ID", "polity"),
    topicPrefix: topicPrefix(env),
    metricsPort: port(env, "POLITY_METRICS_PORT", 9464),
    gatewayPort: port(env, "POLITY_GATEWAY_PORT", 4000),
    gatewayHost: host(env, "POLITY_GATEWAY_HOST", "127.0.0.1"),
    gatewayUi: onOff(env, "POLITY_GATEWAY_UI", true),
    tenantPlans: env.POLITY_TENANT_PLANS || null,
    topologyFile: path.resolve(text(env, "POLITY_TOPOLOGY_FILE", DEFAULT_TOPOLOGY_FILE)),
    readModels: list(env, "POLITY_READ_MODELS", "analytics,state"),
    // Its length is checked where it is used (gateway/auth.ts), so that a process without a gateway runs.
    jwtSecret: env.POLITY_JWT_SECRET || null,
    native: {
      home: path.resolve(text(env, "POLITY_HOME", path.join(repoRoot, ".polity"))),
      cacheDir: path.resolve(
        text(env, "POLITY_CACHE_DIR", path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "polity")),
      ),
      kafkaPort: port(env, "POLITY_KAFKA_PORT", 19092),
      kafkaControllerPort: port(env, "POLITY_KAFKA_CONTROLLER_PORT", 19093),
      registryPort: port(env, "POLITY_REGISTRY_PORT", 18081),
      mongoPort: port(env, "POLITY_MONGO_PORT", 27117),
      postgresPort: port(env, "POLITY_PG_PORT", 15432),
      kafkaHeap: text(env, "POLITY_KAFKA_HEAP", "768m"),
      registryHeap: text(env, "POLITY_REGISTRY_HEAP", "512m"),
      kafkaVersion: "3.9.1",
      apicurioVersion: "3.3.3",
      apicurioVersionJava17: "3.0.9",
      ferretdbVersion: "1.24.2",
    },
  };
}

/** The URLs of the native stack for a given configuration (what `stack up` serves). */
export function nativeUrls(native: NativeStackConfig): InfraUrls {
  return {
    kafkaBrokers: [`127.0.0.1:${native.kafkaPort}`],
    schemaRegistryUrl: `http://127.0.0.1:${native.registryPort}/apis/ccompat/v7`,
    mongoUrl: `mongodb://127.0.0.1:${native.mongoPort}/polity`,
    databaseUrl: `postgres://polity@127.0.0.1:${native.postgresPort}/polity`,
  };
}

/** The environment a child process needs to find the same infrastructure. */
export function urlsToEnv(urls: InfraUrls): Record<string, string> {
  return {
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    SCHEMA_REGISTRY_URL: urls.schemaRegistryUrl,
    MONGO_URL: urls.mongoUrl,
    DATABASE_URL: urls.databaseUrl,
  };
}

/** Reads all four URLs from the environment or fails naming the missing ones (for tests and workers). */
export function requireUrls(env: NodeJS.ProcessEnv = process.env): InfraUrls {
  const urls = explicitUrls(env);
  const missing = Object.values(URL_ENV).filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new ConfigError(
      `${missing.join(", ")} not set. Run through \`npm test\` / \`npm start\`, which resolve the infrastructure, or export them.`,
    );
  }
  return urls as InfraUrls;
}
