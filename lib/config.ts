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
import fs from "node:fs";
import { Secret, type BasicAuth } from "./redact.js";

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
  /** Node 1's listener and KRaft controller ports; node i listens on these plus i - 1. */
  kafkaPort: number;
  kafkaControllerPort: number;
  /** POLITY_KAFKA_NODES: combined broker+controller nodes, 1 or 3 and more (a quorum of 2 survives no loss). */
  kafkaNodes: number;
  /** Replication factor and min.insync.replicas of the stack's topics, internal ones included. */
  kafkaReplicationFactor: number;
  kafkaMinInsyncReplicas: number;
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
  /**
   * What Polity's topics are created with (POLITY_TOPIC_REPLICATION_FACTOR, POLITY_TOPIC_MIN_ISR);
   * null leaves it to the broker's default (a cluster given in KAFKA_BROKERS with neither set).
   */
  topicReplicationFactor: number | null;
  topicMinInsyncReplicas: number | null;
  /** Where `npm start` serves Prometheus metrics (GET /metrics on 127.0.0.1). */
  metricsPort: number;
  /**
   * POLITY_PROBE_PORT: where a processors or read-models process started on its own (a container)
   * serves /health, /ready and /metrics (lib/probe-server.ts); null (unset) serves nothing, so
   * several such processes on one machine do not fight over a port.
   */
  probePort: number | null;
  /** POLITY_PROBE_HOST: the address of that server; 127.0.0.1 unless a container sets 0.0.0.0. */
  probeHost: string;
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
  /**
   * POLITY_TEMPORAL_PEER: the Temporal peer of `npm run bench` (its README says how it runs); by
   * default ../shared/peers/temporal beside the repository. The bench skips the step, saying why,
   * where the folder or Go is missing.
   */
  temporalPeerDir: string;
  /** How every Kafka client connects: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*. */
  kafkaSecurity: KafkaSecurity;
  /** SCHEMA_REGISTRY_USERNAME / SCHEMA_REGISTRY_PASSWORD(_FILE), or null (credentials may also be in the URL). */
  schemaRegistryAuth: BasicAuth | null;
}

export type KafkaSecurityProtocol = "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL";
export const KAFKA_SECURITY_PROTOCOLS: readonly KafkaSecurityProtocol[] = [
  "PLAINTEXT",
  "SSL",
  "SASL_PLAINTEXT",
  "SASL_SSL",
];
export type KafkaSaslMechanism = "SCRAM-SHA-256" | "SCRAM-SHA-512" | "PLAIN";
export const KAFKA_SASL_MECHANISMS: readonly KafkaSaslMechanism[] = ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"];

/**
 * Kafka client security, as the Java client names it. Passwords and keys are `Secret`s: printing
 * the configuration shows "***".
 */
export interface KafkaSecurity {
  protocol: KafkaSecurityProtocol;
  /** Set on SASL_PLAINTEXT and SASL_SSL, null otherwise. */
  sasl: { mechanism: KafkaSaslMechanism; username: string; password: Secret } | null;
  /** Set on SSL and SASL_SSL, null otherwise. */
  tls: {
    /** PEM of the CA(s) to trust (KAFKA_SSL_CA_FILE); null: the system's. */
    ca: string | null;
    caFile: string | null;
    /** Client certificate and key (KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE), for mutual TLS. */
    cert: string | null;
    certFile: string | null;
    key: Secret | null;
    keyFile: string | null;
    /** KAFKA_SSL_REJECT_UNAUTHORIZED (default on): off accepts any broker certificate. */
    rejectUnauthorized: boolean;
  } | null;
}

/** No authentication, no encryption: the native and Docker stacks' Kafka. */
export const PLAINTEXT_SECURITY: KafkaSecurity = { protocol: "PLAINTEXT", sasl: null, tls: null };

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

/** The most Kafka nodes the native stack runs on loopback (ports node 1's plus 0..n-1). */
export const MAX_KAFKA_NODES = 9;

function atLeastOne(env: NodeJS.ProcessEnv, name: string): number | null {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${name}=${raw} is not a whole number of at least 1.`);
  return n;
}

interface KafkaClusterSettings {
  nodes: number;
  /** For the native stack's topics and internal topics. */
  nativeReplicationFactor: number;
  nativeMinInsyncReplicas: number;
  /** For ensureTopics; null: the broker's default. */
  topicReplicationFactor: number | null;
  topicMinInsyncReplicas: number | null;
}

/**
 * POLITY_KAFKA_NODES, POLITY_TOPIC_REPLICATION_FACTOR and POLITY_TOPIC_MIN_ISR, refused when they
 * cannot hold. Two nodes are refused: a KRaft quorum of two voters needs both, so losing either
 * stops the metadata log, and replication factor 2 with min ISR 2 stops writes too. The replication
 * factor is checked against the node count only for the native stack; a cluster given in
 * KAFKA_BROKERS is checked against the brokers it reports when topics are created (ensureTopics).
 */
function kafkaCluster(env: NodeJS.ProcessEnv): KafkaClusterSettings {
  const nodes = atLeastOne(env, "POLITY_KAFKA_NODES") ?? 1;
  if (nodes === 2)
    throw new ConfigError(
      "POLITY_KAFKA_NODES=2 cannot survive the loss of a node: a KRaft quorum of 2 voters needs both, " +
        "and replication factor 2 with min.insync.replicas 2 stops writes too; use 1 or 3.",
    );
  if (nodes > MAX_KAFKA_NODES)
    throw new ConfigError(`POLITY_KAFKA_NODES=${nodes} is more than the ${MAX_KAFKA_NODES} the native stack runs.`);
  const givenRf = atLeastOne(env, "POLITY_TOPIC_REPLICATION_FACTOR");
  const givenIsr = atLeastOne(env, "POLITY_TOPIC_MIN_ISR");
  const external = Boolean(env.KAFKA_BROKERS?.trim());
  const rf = givenRf ?? Math.min(3, nodes);
  const isr = givenIsr ?? Math.min(2, rf);
  if (!external && rf > nodes)
    throw new ConfigError(
      `POLITY_TOPIC_REPLICATION_FACTOR=${rf} is more than the ${nodes} broker(s) of the cluster; ` +
        `set POLITY_KAFKA_NODES=${Math.max(3, rf)} or a replication factor of at most ${nodes}.`,
    );
  // Against the replication factor in effect: given, or (native stack) the default for its nodes.
  const rfInEffect = givenRf ?? (external ? null : rf);
  if (givenIsr !== null && rfInEffect !== null && givenIsr > rfInEffect)
    throw new ConfigError(
      `POLITY_TOPIC_MIN_ISR=${givenIsr} is more than the replication factor ${rfInEffect}` +
        `${givenRf === null ? ` (the default for POLITY_KAFKA_NODES=${nodes})` : ""}: no write could ever be ` +
        `acknowledged; give at most ${rfInEffect}.`,
    );
  return {
    nodes,
    nativeReplicationFactor: rf,
    nativeMinInsyncReplicas: isr,
    topicReplicationFactor: external ? givenRf : rf,
    topicMinInsyncReplicas: external ? (givenIsr ?? (givenRf === null ? null : Math.min(2, givenRf))) : isr,
  };
}

/** The native Kafka's ports, each node's listener and controller, refused when they collide. */
function checkKafkaPorts(native: NativeStackConfig): void {
  const uses: [string, number][] = [];
  for (const node of kafkaNodes(native)) {
    uses.push(
      [`Kafka node ${node.id}'s listener`, node.port],
      [`Kafka node ${node.id}'s controller`, node.controllerPort],
    );
  }
  uses.push(
    ["the registry", native.registryPort],
    ["the registry's management interface", native.registryPort + 1],
    ["FerretDB", native.mongoPort],
    ["PostgreSQL", native.postgresPort],
  );
  const high = uses.find(([, p]) => p > 65535);
  if (high)
    throw new ConfigError(
      `${high[0]} would get port ${high[1]}: POLITY_KAFKA_PORT and POLITY_KAFKA_CONTROLLER_PORT plus ${native.kafkaNodes - 1} must stay below 65536.`,
    );
  for (let i = 0; i < uses.length; i++)
    for (let j = i + 1; j < uses.length; j++)
      if (uses[i]![1] === uses[j]![1] && (i < 2 * native.kafkaNodes || j < 2 * native.kafkaNodes))
        throw new ConfigError(
          `${uses[i]![0]} and ${uses[j]![0]} would both take port ${uses[i]![1]} ` +
            `(POLITY_KAFKA_NODES=${native.kafkaNodes}: node i listens on POLITY_KAFKA_PORT + i - 1, its controller on ` +
            `POLITY_KAFKA_CONTROLLER_PORT + i - 1); move one of them.`,
        );
}

/** The native stack's Kafka nodes: id (1..n), listener and controller port. */
export function kafkaNodes(native: NativeStackConfig): { id: number; port: number; controllerPort: number }[] {
  return Array.from({ length: native.kafkaNodes }, (_, i) => ({
    id: i + 1,
    port: native.kafkaPort + i,
    controllerPort: native.kafkaControllerPort + i,
  }));
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

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/**
 * A password from NAME or from the file NAME_FILE names (its trailing newline dropped), or null.
 * Error messages name the variable and the file, never the value.
 */
function secret(env: NodeJS.ProcessEnv, name: string): Secret | null {
  const fileName = `${name}_FILE`;
  const file = env[fileName];
  if (env[name] && file) throw new ConfigError(`${name} and ${fileName} are both set; give the password once.`);
  if (file) {
    let value: string;
    try {
      value = fs.readFileSync(file, "utf8").replace(/\r?\n$/, "");
    } catch (e) {
      throw new ConfigError(`${fileName}=${file} cannot be read (${errorCode(e)}).`);
    }
    if (value === "") throw new ConfigError(`${fileName}=${file} is empty.`);
    return new Secret(value);
  }
  return env[name] ? new Secret(env[name]) : null;
}

/** The text of the PEM file NAME names, checked to hold a `BEGIN <what>` block; null when unset. */
function pemFile(
  env: NodeJS.ProcessEnv,
  name: string,
  what: RegExp,
  meant: string,
): { file: string; pem: string } | null {
  const raw = env[name];
  if (!raw) return null;
  const file = path.resolve(raw);
  let pem: string;
  try {
    pem = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = errorCode(e);
    throw new ConfigError(`${name}=${raw}: ${code === "ENOENT" ? "no such file" : `cannot be read (${code})`}.`);
  }
  if (!new RegExp(`-----BEGIN ${what.source}-----`).test(pem)) {
    throw new ConfigError(`${name}=${raw} holds no PEM ${meant} (a "-----BEGIN ...-----" block).`);
  }
  return { file, pem };
}

const KAFKA_SASL_ENV = [
  "KAFKA_SASL_MECHANISM",
  "KAFKA_SASL_USERNAME",
  "KAFKA_SASL_PASSWORD",
  "KAFKA_SASL_PASSWORD_FILE",
];
const KAFKA_TLS_ENV = [
  "KAFKA_SSL_CA_FILE",
  "KAFKA_SSL_CERT_FILE",
  "KAFKA_SSL_KEY_FILE",
  "KAFKA_SSL_REJECT_UNAUTHORIZED",
];

/** KAFKA_SECURITY_PROTOCOL and the SASL and TLS settings it uses, checked (loadConfig().kafkaSecurity). */
export function kafkaSecurity(env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const given = text(env, "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT");
  const protocol = given.trim().toUpperCase() as KafkaSecurityProtocol;
  if (!KAFKA_SECURITY_PROTOCOLS.includes(protocol)) {
    throw new ConfigError(`KAFKA_SECURITY_PROTOCOL=${given} is not one of ${KAFKA_SECURITY_PROTOCOLS.join(", ")}.`);
  }
  const usesSasl = protocol === "SASL_PLAINTEXT" || protocol === "SASL_SSL";
  const usesTls = protocol === "SSL" || protocol === "SASL_SSL";
  // A setting of a layer the protocol leaves out would be ignored: a password never sent, a CA never checked.
  const unused = [...(usesSasl ? [] : KAFKA_SASL_ENV), ...(usesTls ? [] : KAFKA_TLS_ENV)].filter((name) => env[name]);
  if (unused.length > 0) {
    throw new ConfigError(
      `${unused.join(", ")} ${unused.length > 1 ? "are" : "is"} set but KAFKA_SECURITY_PROTOCOL=${protocol} does not use ` +
        `${unused.length > 1 ? "them" : "it"}: SASL settings need SASL_PLAINTEXT or SASL_SSL, KAFKA_SSL_* settings SSL or SASL_SSL.`,
    );
  }

  let sasl: KafkaSecurity["sasl"] = null;
  if (usesSasl) {
    const givenMechanism = text(env, "KAFKA_SASL_MECHANISM", "SCRAM-SHA-512");
    const mechanism = givenMechanism.trim().toUpperCase() as KafkaSaslMechanism;
    if (!KAFKA_SASL_MECHANISMS.includes(mechanism)) {
      throw new ConfigError(
        `KAFKA_SASL_MECHANISM=${givenMechanism} is not a SASL mechanism Polity speaks; use one of ${KAFKA_SASL_MECHANISMS.join(", ")}.`,
      );
    }
    const username = env.KAFKA_SASL_USERNAME ?? "";
    const password = secret(env, "KAFKA_SASL_PASSWORD");
    if (username === "") {
      throw new ConfigError(
        `KAFKA_SECURITY_PROTOCOL=${protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE).`,
      );
    }
    if (password === null) {
      throw new ConfigError(
        `KAFKA_SASL_USERNAME=${username} has no password: set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE.`,
      );
    }
    sasl = { mechanism, username, password };
  }

  let tls: KafkaSecurity["tls"] = null;
  if (usesTls) {
    const ca = pemFile(env, "KAFKA_SSL_CA_FILE", /CERTIFICATE/, "certificate");
    const cert = pemFile(env, "KAFKA_SSL_CERT_FILE", /CERTIFICATE/, "certificate");
    const key = pemFile(env, "KAFKA_SSL_KEY_FILE", /(?:[A-Z]+ )?PRIVATE KEY/, "private key");
    if ((cert === null) !== (key === null)) {
      throw new ConfigError(
        `mutual TLS needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE; only ${cert ? "the certificate" : "the key"} is set.`,
      );
    }
    tls = {
      ca: ca?.pem ?? null,
      caFile: ca?.file ?? null,
      cert: cert?.pem ?? null,
      certFile: cert?.file ?? null,
      key: key ? new Secret(key.pem) : null,
      keyFile: key?.file ?? null,
      rejectUnauthorized: onOff(env, "KAFKA_SSL_REJECT_UNAUTHORIZED", true),
    };
  }
  return { protocol, sasl, tls };
}

/** SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD(_FILE): HTTP basic auth, or null. */
export function schemaRegistryAuth(env: NodeJS.ProcessEnv = process.env): BasicAuth | null {
  const username = env.SCHEMA_REGISTRY_USERNAME ?? "";
  const password = secret(env, "SCHEMA_REGISTRY_PASSWORD");
  if (username === "" && password === null) return null;
  if (username === "") throw new ConfigError("SCHEMA_REGISTRY_PASSWORD is set without SCHEMA_REGISTRY_USERNAME.");
  if (password === null) {
    throw new ConfigError(
      `SCHEMA_REGISTRY_USERNAME=${username} has no password: set SCHEMA_REGISTRY_PASSWORD or SCHEMA_REGISTRY_PASSWORD_FILE.`,
    );
  }
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(env.SCHEMA_REGISTRY_URL ?? "")) {
    throw new ConfigError(
      "SCHEMA_REGISTRY_URL carries credentials and SCHEMA_REGISTRY_USERNAME is set too; give them once.",
    );
  }
  return { username, password };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): PolityConfig {
  const cluster = kafkaCluster(env);
  const kafkaPort = port(env, "POLITY_KAFKA_PORT", 19092);
  const config: PolityConfig = {
    repoRoot,
    infraMode: infraMode(env),
    explicitUrls: explicitUrls(env),
    clientId: text(env, "POLITY_CLIENT_ID", "polity"),
    topicPrefix: topicPrefix(env),
    topicReplicationFactor: cluster.topicReplicationFactor,
    topicMinInsyncReplicas: cluster.topicMinInsyncReplicas,
    metricsPort: port(env, "POLITY_METRICS_PORT", 9464),
    probePort: env.POLITY_PROBE_PORT ? port(env, "POLITY_PROBE_PORT", 0) : null,
    probeHost: host(env, "POLITY_PROBE_HOST", "127.0.0.1"),
    gatewayPort: port(env, "POLITY_GATEWAY_PORT", 4000),
    gatewayHost: host(env, "POLITY_GATEWAY_HOST", "127.0.0.1"),
    gatewayUi: onOff(env, "POLITY_GATEWAY_UI", true),
    tenantPlans: env.POLITY_TENANT_PLANS || null,
    topologyFile: path.resolve(text(env, "POLITY_TOPOLOGY_FILE", DEFAULT_TOPOLOGY_FILE)),
    readModels: list(env, "POLITY_READ_MODELS", "analytics,state"),
    // Its length is checked where it is used (gateway/auth.ts), so that a process without a gateway runs.
    jwtSecret: env.POLITY_JWT_SECRET || null,
    temporalPeerDir: path.resolve(
      text(env, "POLITY_TEMPORAL_PEER", path.join(repoRoot, "..", "shared", "peers", "temporal")),
    ),
    kafkaSecurity: kafkaSecurity(env),
    schemaRegistryAuth: schemaRegistryAuth(env),
    native: {
      home: path.resolve(text(env, "POLITY_HOME", path.join(repoRoot, ".polity"))),
      cacheDir: path.resolve(
        text(env, "POLITY_CACHE_DIR", path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "polity")),
      ),
      kafkaPort,
      // One node keeps 19093; a cluster's controllers default to 100 above its listeners.
      kafkaControllerPort: port(env, "POLITY_KAFKA_CONTROLLER_PORT", cluster.nodes === 1 ? 19093 : kafkaPort + 100),
      kafkaNodes: cluster.nodes,
      kafkaReplicationFactor: cluster.nativeReplicationFactor,
      kafkaMinInsyncReplicas: cluster.nativeMinInsyncReplicas,
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
  checkKafkaPorts(config.native);
  return config;
}

/** The URLs of the native stack for a given configuration (what `stack up` serves). */
export function nativeUrls(native: NativeStackConfig): InfraUrls {
  return {
    kafkaBrokers: kafkaNodes(native).map((node) => `127.0.0.1:${node.port}`),
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
