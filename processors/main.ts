/**
 * Runs tiers of the hierarchy as a process of its own:
 *
 *   node --import tsx processors/main.ts [--tiers president,governor,mayor,worker] [--help]
 *
 * Reads KAFKA_BROKERS and SCHEMA_REGISTRY_URL (as `npm start` and `npm test` set them), the
 * topology file (POLITY_TOPOLOGY_FILE) and POLITY_TOPIC_PREFIX. Start more processes with the same
 * tiers to scale them out: they share the tiers' partitions. SIGINT/SIGTERM stop it cleanly.
 */
import { defineCommand, parseArgvOrExit } from "../lib/cli-args.js";
import { logLine, runIfMain, stopOnSignal } from "../lib/process.js";
import { loadConfig, requireUrls, type InfraUrls } from "../lib/config.js";
import { kafkaClient } from "../lib/kafka.js";
import { Codec } from "../schemas/codec.js";
import type { Role } from "./domain/directory.js";
import { ROLES, startHierarchy, type RunningHierarchy } from "./hierarchy.js";
import { loadTopology, type TopologyConfig } from "./topology.js";

/** The `--tiers` flag of `npm start` and of this script. */
export const TIERS_OPTION = {
  type: "string",
  value: "tier,...",
  default: "all",
  help: `the tiers to run in this process: ${ROLES.join(", ")} (comma-separated) or all`,
} as const;

export const PROCESSORS_COMMAND = defineCommand({
  name: "processors",
  summary: "run tiers of the hierarchy as a process of its own (node --import tsx processors/main.ts)",
  options: { tiers: TIERS_OPTION },
});

export function parseTiers(value: string | undefined): Role[] {
  if (!value || value === "all") return [...ROLES];
  const tiers = value.split(",").map((t) => t.trim());
  const unknown = tiers.filter((t) => !ROLES.includes(t as Role));
  if (unknown.length > 0) throw new Error(`unknown tier(s) ${unknown.join(", ")}: use ${ROLES.join(", ")} or all`);
  return tiers as Role[];
}

export async function runProcessors(
  urls: Pick<InfraUrls, "kafkaBrokers" | "schemaRegistryUrl">,
  roles: Role[],
  log: (line: string) => void,
  topology?: TopologyConfig,
): Promise<RunningHierarchy> {
  const config = loadConfig();
  return startHierarchy({
    kafka: kafkaClient(urls.kafkaBrokers, `${config.clientId}-${roles.join("-")}`),
    codec: Codec.forUrl(urls.schemaRegistryUrl),
    topology: topology ?? loadTopology(config.topologyFile),
    roles,
    topicPrefix: config.topicPrefix,
    log,
  });
}

async function main(): Promise<void> {
  const { values } = parseArgvOrExit(PROCESSORS_COMMAND);
  const roles = parseTiers(values.tiers);
  const log = logLine;
  const running = await runProcessors(requireUrls(), roles, log);
  console.log(`processors ready: ${roles.join(", ")}`);
  stopOnSignal(() => running.stop());
}

runIfMain(import.meta.url, main);
