/**
 * Starts read models in this process, each behind its own projection host: the PostgreSQL
 * analytics store (migrated first) and the MongoDB state store (indexes ensured first).
 *
 * `npm start` runs only the analytics store for now. Projecting a long log into FerretDB 1.24 with
 * the state store left FerretDB answering no query at all, even after the writer stopped, until it
 * was restarted (seen twice on the development machine, 200k events in the log). Until that is
 * understood, the state store runs in its tests only; POLITY_READ_MODELS=analytics,state opts in.
 */
import type { Kafka } from "kafkajs";
import { loadConfig, type InfraUrls } from "../lib/config.js";
import type { Codec } from "../schemas/codec.js";
import { ProjectionHost } from "./host.js";
import { StateStore } from "./mongo/state-store.js";
import { AnalyticsStore } from "./pg/analytics-store.js";
import { migrate } from "./pg/migrate.js";
import { pgPool } from "../lib/pg.js";
import { watchedMongoClient } from "../lib/mongo.js";

/**
 * The topics each read model folds. Both read polity.governance.events: without it the analytics
 * views policy_denials and constitutional_violations (and constitutional_violations_total on
 * /metrics) stayed empty while the policy engine rejected goals, and the state documents could not
 * show resource allocations or violations. A read model that did not read a topic before starts it
 * from offset 0 (no checkpoint), so an existing deployment catches up by itself.
 */
export const PROJECTED_TOPICS = {
  analytics: ["polity.goals.events", "polity.tasks.events", "polity.agents.events", "polity.governance.events"],
  state: [
    "polity.goals.events",
    "polity.tasks.events",
    "polity.agents.events",
    "polity.policies.events",
    "polity.governance.events",
  ],
} as const;

export interface RunningProjections {
  hosts: ProjectionHost[];
  stop(): Promise<void>;
}

export type ReadModel = keyof typeof PROJECTED_TOPICS;

/**
 * Where a deployment's read models live. The default deployment uses schema `analytics` and the
 * unprefixed collections; a deployment with a topic prefix (POLITY_TOPIC_PREFIX) gets a schema and
 * collections of its own, or it would share checkpoints and rows with the default one.
 */
export function readModelTargets(topicPrefix = ""): { analyticsSchema: string; collectionPrefix: string } {
  if (!topicPrefix) return { analyticsSchema: "analytics", collectionPrefix: "" };
  const tag = topicPrefix
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 24);
  return { analyticsSchema: `analytics_${tag}`, collectionPrefix: `${tag}_` };
}

/**
 * The read models named in `names` (comma-separated text or a list), checked against the ones this
 * module runs. `source` names where they came from, for the error: `npm start` passes
 * loadConfig().readModels (POLITY_READ_MODELS), the rebuild command its --models flag.
 */
export function parseReadModels(names: string | readonly string[], source = "POLITY_READ_MODELS"): ReadModel[] {
  const list = (typeof names === "string" ? names.split(",") : [...names]).map((n) => n.trim()).filter(Boolean);
  const unknown = list.filter((n) => !(n in PROJECTED_TOPICS));
  if (unknown.length > 0)
    throw new Error(
      `${source}: unknown read model(s) ${unknown.join(", ")}; use ${Object.keys(PROJECTED_TOPICS).join(", ")}`,
    );
  return list as ReadModel[];
}

/** The read models of POLITY_READ_MODELS as lib/config.ts reads it, or of `value` when given. */
export function readModelsFromEnv(value?: string): ReadModel[] {
  return value === undefined ? parseReadModels(loadConfig().readModels) : parseReadModels(value);
}

export async function startProjections(options: {
  models: ReadModel[];
  kafka: Kafka;
  codec: Codec;
  urls: Pick<InfraUrls, "mongoUrl" | "databaseUrl">;
  topicPrefix?: string;
  log?: (line: string) => void;
}): Promise<RunningProjections> {
  const log = options.log ?? (() => undefined);
  const pool = pgPool(options.urls.databaseUrl, 8, (line) => log(`analytics: ${line}`));
  const watched = watchedMongoClient(options.urls.mongoUrl, { name: "state projection", log });
  const mongo = watched.client;
  const hosts: ProjectionHost[] = [];
  const stop = async () => {
    await Promise.all(hosts.map((h) => h.stop()));
    await pool.end().catch(() => undefined);
    await watched.close().catch(() => undefined);
  };
  try {
    const targets = readModelTargets(options.topicPrefix);
    const common = { kafka: options.kafka, codec: options.codec, topicPrefix: options.topicPrefix ?? "", log };
    if (options.models.includes("analytics")) {
      const migrated = await migrate(pool, targets.analyticsSchema, { log });
      log(
        `analytics schema: ${migrated.applied.length} migration(s) applied, ${migrated.alreadyApplied.length} already`,
      );
      hosts.push(
        new ProjectionHost({
          ...common,
          store: new AnalyticsStore(pool, { schema: targets.analyticsSchema }),
          topics: [...PROJECTED_TOPICS.analytics],
        }),
      );
    }
    if (options.models.includes("state")) {
      await mongo.connect();
      const state = new StateStore(mongo.db(), { collectionPrefix: targets.collectionPrefix });
      await state.ensureIndexes();
      hosts.push(new ProjectionHost({ ...common, store: state, topics: [...PROJECTED_TOPICS.state] }));
    }
    for (const h of hosts) await h.start();
  } catch (e) {
    await stop();
    throw e;
  }
  log(`read models running: ${options.models.join(", ")}`);
  return { hosts, stop };
}
