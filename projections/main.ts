/**
 * Runs read models as a process of its own:
 *
 *   node --import tsx projections/main.ts [--models analytics,state] [--help]
 *
 * (`polity projections`, the container image's command, runs the same.) Reads the four URLs, the
 * topic prefix and POLITY_READ_MODELS (the default of --models) from lib/config.ts. With
 * POLITY_PROBE_PORT set it serves /health, /ready and /metrics there (lib/probe-server.ts).
 * Several processes of one read model share its partitions. SIGINT/SIGTERM stop it cleanly.
 */
import { defineCommand, parseArgvOrExit, parseCommandArgs } from "../lib/cli-args.js";
import { loadConfig, requireUrls, type InfraUrls } from "../lib/config.js";
import { kafkaClient } from "../lib/kafka.js";
import { serveProbes, untilSignal, withProbes } from "../lib/probe-server.js";
import { logLine, runIfMain, stopOnSignal } from "../lib/process.js";
import { Codec } from "../schemas/codec.js";
import { parseReadModels, PROJECTED_TOPICS, startProjections, type RunningProjections } from "./run.js";

export const PROJECTIONS_COMMAND = defineCommand({
  name: "projections",
  summary: "run read models as a process of its own (node --import tsx projections/main.ts)",
  options: {
    models: {
      type: "string",
      value: "model,...",
      help: `the read models to run: ${Object.keys(PROJECTED_TOPICS).join(", ")} (comma-separated); default POLITY_READ_MODELS`,
    },
  },
});

/** Runs the read models with their probe server (when POLITY_PROBE_PORT is set) until stopped. */
export async function serveProjections(
  urls: InfraUrls,
  models: string | undefined,
  log: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const config = loadConfig();
  const names = models === undefined ? parseReadModels(config.readModels) : parseReadModels(models, "--models");
  let running: RunningProjections | undefined;
  let stopping = false;
  const probes =
    config.probePort === null
      ? undefined
      : await serveProbes({
          name: `read models: ${names.join(", ")}`,
          port: config.probePort,
          host: config.probeHost,
          // startProjections resolves once every consumer is connected, subscribed and running.
          ready: () =>
            stopping
              ? { ok: false, detail: "stopping" }
              : running
                ? { ok: true, detail: `running: ${running.hosts.map((h) => h.name).join(", ")}` }
                : { ok: false, detail: "starting: migrating and connecting the read models" },
          log,
        });
  const served = await withProbes(
    probes,
    async () =>
      (running = await startProjections({
        models: names,
        kafka: kafkaClient(urls.kafkaBrokers, `${config.clientId}-projection-${names.join("-")}`),
        codec: Codec.forUrl(urls.schemaRegistryUrl),
        urls,
        topicPrefix: config.topicPrefix,
        log,
      })),
  );
  console.log(`projections ready: ${names.join(", ")}`);
  return {
    async stop() {
      stopping = true;
      await served.stop();
    },
  };
}

/** `polity projections [--models ...]` (infra/cli.ts): runs until SIGINT or SIGTERM. */
export async function runProjectionsCommand(urls: InfraUrls, args: string[]): Promise<number> {
  const served = await serveProjections(urls, parseCommandArgs(PROJECTIONS_COMMAND, args).values.models, logLine);
  await untilSignal();
  logLine("stopping");
  await served.stop();
  return 0;
}

async function main(): Promise<void> {
  const { values } = parseArgvOrExit(PROJECTIONS_COMMAND);
  const served = await serveProjections(requireUrls(), values.models, logLine);
  stopOnSignal(() => served.stop());
}

runIfMain(import.meta.url, main);
