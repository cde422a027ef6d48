/**
 * `npm run rebuild -- [--models analytics,state] [--swap] [--keep]` (also `polity audit rebuild`): rebuilds the read models from
 * offset zero into fresh targets, prints whether each equals the live one, and swaps on request.
 * Exit code 0 when every model is equal (or was swapped in), 1 otherwise.
 */
import { MongoClient } from "mongodb";
import type { InfraUrls } from "../lib/config.js";
import { loadConfig } from "../lib/config.js";
import { kafkaClient } from "../lib/kafka.js";
import { Codec } from "../schemas/codec.js";
import { rebuild } from "./rebuild.js";
import { parseReadModels, readModelTargets } from "./run.js";
import { pgPool } from "../lib/pg.js";
import { defineCommand, parseCommandArgs, type CommandSpec } from "../lib/cli-args.js";

const REBUILD_OPTIONS = {
  models: {
    type: "string",
    value: "analytics,state",
    help: "the read models to rebuild (default: POLITY_READ_MODELS, which defaults to analytics,state)",
  },
  swap: { type: "boolean", help: "swap each rebuilt model in for the live one (the replaced one is kept)" },
  keep: { type: "boolean", help: "keep the rebuilt models beside the live ones after comparing" },
} as const;

export const REBUILD_COMMAND = defineCommand({
  name: "rebuild",
  summary: "rebuild read models from offset 0 into fresh targets and compare them with the live ones",
  options: REBUILD_OPTIONS,
  notes: "Exit code 0 when every model is equal (or was swapped in), 1 otherwise.",
});

/** The same command as `polity audit rebuild`. */
export const AUDIT_REBUILD_COMMAND = defineCommand({ ...REBUILD_COMMAND, name: "audit rebuild" });

export async function runRebuild(
  urls: InfraUrls,
  args: string[],
  spec: CommandSpec<typeof REBUILD_OPTIONS> = REBUILD_COMMAND,
): Promise<number> {
  const config = loadConfig();
  const { values } = parseCommandArgs(spec, args);
  const models =
    values.models === undefined ? parseReadModels(config.readModels) : parseReadModels(values.models, "--models");
  const { swap, keep } = values;
  const pool = pgPool(urls.databaseUrl, 4);
  const mongo = new MongoClient(urls.mongoUrl);
  try {
    if (models.includes("state")) await mongo.connect();
    const reports = await rebuild({
      models,
      kafka: kafkaClient(urls.kafkaBrokers, `${config.clientId}-rebuild`, true),
      codec: Codec.forUrl(urls.schemaRegistryUrl),
      pool,
      db: models.includes("state") ? mongo.db() : undefined,
      topicPrefix: config.topicPrefix,
      liveSchema: readModelTargets(config.topicPrefix).analyticsSchema,
      liveCollectionPrefix: readModelTargets(config.topicPrefix).collectionPrefix,
      swap,
      keep,
      log: (line) => console.log(`[rebuild] ${line}`),
    });
    let ok = true;
    for (const r of reports) {
      const rate = r.ms > 0 ? Math.round((r.events * 1000) / r.ms) : 0;
      console.log(
        `${r.model}: ${r.equal ? "EQUAL to the live model" : "DIFFERENT from the live model"} ` +
          `(${r.events} events rebuilt in ${(r.ms / 1000).toFixed(1)} s, ${rate} events/s)`,
      );
      if (r.equal) console.log(`  compared at ${r.position}`);
      for (const d of r.differences) console.log(`  - ${d}`);
      if (r.replacedBy) console.log(`  swapped in; the replaced model is kept as ${r.replacedBy}`);
      else if (r.kept) console.log(`  the rebuilt model is kept as ${r.target}`);
      if (!r.equal && !r.replacedBy) ok = false;
    }
    return ok ? 0 : 1;
  } finally {
    await pool.end().catch(() => undefined);
    await mongo.close().catch(() => undefined);
  }
}
