/**
 * One way to find the infrastructure, shared by `npm start`, `npm test` and every process:
 *   1. URLs given in the environment (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, MONGO_URL, DATABASE_URL) win;
 *   2. else testcontainers, when a Docker engine answers;
 *   3. else the native stack, started if it is not running.
 * POLITY_INFRA=env|docker|native forces one source.
 */
import { nativeUrls, PLAINTEXT_SECURITY, URL_ENV, type InfraUrls, type PolityConfig } from "../lib/config.js";
import { redact } from "../lib/redact.js";
import { dockerEngineAnswers, startDockerStack } from "./docker.js";
import { stackUp } from "./native/stack.js";
import { say, StackError } from "./native/process.js";
import type { ServerName } from "./native/server.js";
import { probeKafka, probeMongo, probePostgres, probeRegistry } from "./probes.js";

export type InfraSource = "env" | "docker" | "native";

export interface ResolvedInfra {
  urls: InfraUrls;
  /** Where each URL came from. */
  sources: Record<keyof InfraUrls, InfraSource>;
  /** Releases what resolution started for this process only (Docker containers); the native stack stays up. */
  release(): Promise<void>;
}

const COMPONENT_SERVER: Record<keyof InfraUrls, ServerName> = {
  kafkaBrokers: "kafka",
  schemaRegistryUrl: "registry",
  mongoUrl: "mongo",
  databaseUrl: "postgres",
};

/** Checks that every URL answers; the error names the variable and the URL (its password as "***"). */
export async function probeAll(
  urls: InfraUrls,
  credentials: Pick<PolityConfig, "kafkaSecurity" | "schemaRegistryAuth"> = {
    kafkaSecurity: PLAINTEXT_SECURITY,
    schemaRegistryAuth: null,
  },
): Promise<void> {
  const checks: [keyof InfraUrls, Promise<string>][] = [
    ["kafkaBrokers", probeKafka(urls.kafkaBrokers, credentials.kafkaSecurity)],
    ["schemaRegistryUrl", probeRegistry(urls.schemaRegistryUrl, credentials.schemaRegistryAuth)],
    ["mongoUrl", probeMongo(urls.mongoUrl)],
    ["databaseUrl", probePostgres(urls.databaseUrl)],
  ];
  const failures: string[] = [];
  for (const [key, check] of checks) {
    await check.catch((e: Error) => failures.push(redact(`${URL_ENV[key]}=${String(urls[key])}: ${e.message}`)));
  }
  if (failures.length > 0) throw new StackError(`infrastructure not reachable:\n  ${failures.join("\n  ")}`);
}

export async function resolveInfrastructure(config: PolityConfig): Promise<ResolvedInfra> {
  const explicit = config.explicitUrls;
  const keys = Object.keys(URL_ENV) as (keyof InfraUrls)[];
  const missing = keys.filter((k) => explicit[k] === undefined);

  if (config.infraMode === "env" && missing.length > 0) {
    throw new StackError(`POLITY_INFRA=env but ${missing.map((k) => URL_ENV[k]).join(", ")} not set.`);
  }

  // The native and Docker stacks' Kafka speaks PLAINTEXT only: SASL or TLS settings mean a cluster of one's own.
  if (config.kafkaSecurity.protocol !== "PLAINTEXT" && explicit.kafkaBrokers === undefined) {
    throw new StackError(
      `KAFKA_SECURITY_PROTOCOL=${config.kafkaSecurity.protocol} needs KAFKA_BROKERS: the Kafka that \`npm start\` ` +
        "starts (native or Docker) listens on PLAINTEXT only.",
    );
  }

  const sources = {} as Record<keyof InfraUrls, InfraSource>;
  for (const k of keys) if (explicit[k] !== undefined) sources[k] = "env";
  let fill: Partial<InfraUrls> = {};
  let release = async (): Promise<void> => undefined;

  if (missing.length > 0) {
    const useDocker = config.infraMode === "docker" || (config.infraMode === "auto" && (await dockerEngineAnswers()));
    if (useDocker) {
      say("a Docker engine answers: starting the stack with testcontainers");
      const docker = await startDockerStack().catch((e: Error) => {
        throw new StackError(`could not start the Docker stack: ${e.message}`);
      });
      fill = docker.urls;
      release = () => docker.stop();
      for (const k of missing) sources[k] = "docker";
    } else {
      await stackUp(
        config,
        missing.map((k) => COMPONENT_SERVER[k]),
      );
      fill = nativeUrls(config.native);
      for (const k of missing) sources[k] = "native";
    }
  }

  const urls = { ...fill, ...explicit } as InfraUrls;
  await probeAll(urls, config);
  return { urls, sources, release };
}
