/**
 * Runs tiers of the hierarchy as a process of its own:
 *
 *   node --import tsx processors/main.ts [--tiers president,governor,mayor,worker] [--help]
 *
 * Reads KAFKA_BROKERS and SCHEMA_REGISTRY_URL (as `npm start` and `npm test` set them), the
 * topology file (POLITY_TOPOLOGY_FILE) and POLITY_TOPIC_PREFIX. Start more processes with the same
 * tiers to scale them out: they share the tiers' partitions. SIGINT/SIGTERM stop it cleanly. With
 * POLITY_PROBE_PORT set (the container image sets it) it serves /health, /ready and /metrics there;
 * `polity processors` (infra/cli.ts, the image's command) runs the same.
 */
import { defineCommand, parseArgvOrExit, parseCommandArgs } from "../lib/cli-args.js";
import { logLine, runIfMain, stopOnSignal } from "../lib/process.js";
import { loadConfig, requireUrls, type InfraUrls } from "../lib/config.js";
import { serveProbes, untilSignal, withProbes, type ProbeResult } from "../lib/probe-server.js";
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

/**
 * Liveness and readiness of this process's tier hosts: each host's consumer runs and has not
 * crashed for good (kafkajs does not restart it then, so only a new process brings the tier back).
 */
export function hierarchyProbe(running: RunningHierarchy | undefined): ProbeResult {
  if (!running) return { ok: false, detail: "starting: connecting the tier hosts" };
  const down = running.hosts.filter((h) => !h.up).map((h) => h.role);
  if (down.length > 0) return { ok: false, detail: `consumer not running: ${down.join(", ")}` };
  return {
    ok: true,
    detail: running.hosts.map((h) => `${h.role}: ${h.livePartitions} live partition(s)`).join(", "),
  };
}

/** Runs the tiers with their probe server (when POLITY_PROBE_PORT is set) until stopped. */
export async function serveProcessors(
  urls: Pick<InfraUrls, "kafkaBrokers" | "schemaRegistryUrl">,
  roles: Role[],
  log: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const config = loadConfig();
  let running: RunningHierarchy | undefined;
  const probes =
    config.probePort === null
      ? undefined
      : await serveProbes({
          name: `processors: ${roles.join(", ")}`,
          port: config.probePort,
          host: config.probeHost,
          ready: () => hierarchyProbe(running),
          // Alive while starting; once started, a crashed consumer makes the process not alive.
          live: () => (running ? hierarchyProbe(running) : { ok: true, detail: "starting" }),
          log,
        });
  const served = await withProbes(probes, async () => (running = await runProcessors(urls, roles, log)));
  console.log(`processors ready: ${roles.join(", ")}`);
  return served;
}

/** `polity processors [--tiers ...]` (infra/cli.ts): runs until SIGINT or SIGTERM. */
export async function runProcessorsCommand(urls: InfraUrls, args: string[]): Promise<number> {
  const roles = parseTiers(parseCommandArgs(PROCESSORS_COMMAND, args).values.tiers);
  const served = await serveProcessors(urls, roles, logLine);
  await untilSignal();
  logLine("stopping");
  await served.stop();
  return 0;
}

async function main(): Promise<void> {
  const { values } = parseArgvOrExit(PROCESSORS_COMMAND);
  const roles = parseTiers(values.tiers);
  const served = await serveProcessors(requireUrls(), roles, logLine);
  stopOnSignal(() => served.stop());
}

runIfMain(import.meta.url, main);
