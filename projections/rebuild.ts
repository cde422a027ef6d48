/**
 * Rebuilds read models from offset zero into fresh targets beside the live ones, then says whether
 * they are equal, and can swap them in:
 *
 * - analytics: a new PostgreSQL schema `<live>_rebuild_<stamp>`, migrated like the live one;
 * - state: new MongoDB collections `rebuild_<stamp>_<name>` in the live database (FerretDB cannot
 *   rename a collection across databases, so a swap has to stay inside one).
 *
 * A rebuild runs its own consumer group, so it never takes partitions from the live projection. It
 * reads until its checkpoints reach the end of the log, then compares at one position: it keeps
 * reading while the live model moves, until both stand at the same offsets, and compares then.
 * A live model that stopped behind the log is reported as such, not waited for.
 *
 * A swap renames in place (schemas in one transaction; collections one by one) and keeps the
 * replaced model as `<live>_replaced_<stamp>`. It refuses while the live projection's consumer group
 * has members: stop `npm start` first, or its next batch would land in the replaced model.
 */
import type { Admin, Kafka } from "kafkajs";
import type { Db } from "mongodb";
import type pg from "pg";
import type { Codec } from "../schemas/codec.js";
import { physicalTopic } from "../schemas/catalog.js";
import { checkpointKey, ProjectionHost, type Checkpoints, type ProjectionStore } from "./host.js";
import { STATE_COLLECTIONS, StateStore, stateCollections, UNORDERED_FIELDS } from "./mongo/state-store.js";
import { AnalyticsStore } from "./pg/analytics-store.js";
import { DEFAULT_SCHEMA, migrate, schemaIdent } from "./pg/migrate.js";
import { PROJECTED_TOPICS, type ReadModel } from "./run.js";
import { topicOffsets } from "../lib/kafka.js";

export interface RebuildOptions {
  models: ReadModel[];
  kafka: Kafka;
  codec: Codec;
  /** Needed for the analytics model. */
  pool?: pg.Pool;
  /** Needed for the state model: the live database. */
  db?: Db;
  topicPrefix?: string;
  /** Swap the rebuilt targets in for the live ones (the live projection must be stopped). */
  swap?: boolean;
  /** Keep the rebuilt targets when not swapping (they are dropped otherwise). */
  keep?: boolean;
  /** The live analytics schema; "analytics" unless a test uses its own. */
  liveSchema?: string;
  /** The live state collections' prefix; "" unless a test uses its own. */
  liveCollectionPrefix?: string;
  /** How long the rebuilt and the live model may take to stand at one position. */
  settleTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface RebuildReport {
  model: ReadModel;
  /** Where the rebuilt model is (or was, when dropped). */
  target: string;
  events: number;
  ms: number;
  /** Equal at the compared position; false when they differ or could not stand at one position. */
  equal: boolean;
  differences: string[];
  /** The log position both models stood at when compared ("topic:partition=next" list). */
  position: string;
  /** Where the replaced live model went, when swapped. */
  replacedBy?: string;
  kept: boolean;
}

/** One read model's fresh target and how to compare, swap and drop it. */
interface Target {
  label: string;
  live: ProjectionStore;
  rebuilt: ProjectionStore;
  compare(): Promise<string[]>;
  /** Renames rebuilt to live, keeping the old live model; returns where it went. */
  swap(): Promise<string>;
  drop(): Promise<void>;
}

function stampNow(): string {
  return new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function same(a: Checkpoints, b: Checkpoints): boolean {
  const keys = new Set([...a.keys(), ...b.keys()]);
  for (const k of keys) if ((a.get(k) ?? 0n) !== (b.get(k) ?? 0n)) return false;
  return true;
}

function describe(c: Checkpoints): string {
  return [...c.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

/** Rebuilds each model in turn (they share the machine's two cores) and reports on each. */
export async function rebuild(options: RebuildOptions): Promise<RebuildReport[]> {
  const log = options.log ?? (() => undefined);
  const admin = options.kafka.admin();
  await admin.connect();
  try {
    const reports: RebuildReport[] = [];
    for (const model of options.models) {
      if (options.swap) await refuseWhileLiveRuns(admin, model, options);
      reports.push(await rebuildOne(admin, model, options, log));
    }
    return reports;
  } finally {
    await admin.disconnect();
  }
}

function liveGroup(model: ReadModel, prefix: string): string {
  return `${prefix}polity-projection-${model}`;
}

async function refuseWhileLiveRuns(admin: Admin, model: ReadModel, options: RebuildOptions): Promise<void> {
  const group = liveGroup(model, options.topicPrefix ?? "");
  const { groups } = await admin.describeGroups([group]);
  const members = groups[0]?.members.length ?? 0;
  if (members > 0) {
    throw new Error(
      `cannot swap the ${model} read model while its projection runs (consumer group ${group} has ${members} member(s)): stop the process running it (npm start), then rebuild with --swap again`,
    );
  }
}

async function logEnds(admin: Admin, topics: readonly string[], prefix: string): Promise<Checkpoints> {
  const ends: Checkpoints = new Map();
  for (const topic of topics) {
    for (const { partition, high } of await topicOffsets(admin, physicalTopic(topic, prefix))) {
      ends.set(checkpointKey(topic, partition), BigInt(high));
    }
  }
  return ends;
}

async function rebuildOne(
  admin: Admin,
  model: ReadModel,
  options: RebuildOptions,
  log: (line: string) => void,
): Promise<RebuildReport> {
  const prefix = options.topicPrefix ?? "";
  const stamp = stampNow();
  const target = model === "analytics" ? await analyticsTarget(options, stamp) : await stateTarget(options, stamp);
  const topics = PROJECTED_TOPICS[model];
  const ends = await logEnds(admin, topics, prefix);
  const total = [...ends.values()].reduce((a, b) => a + b, 0n);
  const groupId = `${prefix}polity-rebuild-${model}-${stamp}`;
  log(`${model}: rebuilding ${total} log records from offset 0 into ${target.label}`);
  const host = new ProjectionHost({
    kafka: options.kafka,
    codec: options.codec,
    store: target.rebuilt,
    topics: [...topics],
    topicPrefix: prefix,
    groupId,
    log,
  });
  const started = Date.now();
  let stopped = false;
  const stopHost = async () => {
    if (stopped) return;
    stopped = true;
    await host.stop();
    await admin.deleteGroups([groupId]).catch(() => undefined);
  };
  try {
    await host.start();
    // 1. Read to the end of the log as it was when the rebuild began, showing progress.
    let lastShown = 0;
    for (;;) {
      const at = await target.rebuilt.checkpoints();
      const behind = [...ends].filter(([k, end]) => (at.get(k) ?? 0n) < end);
      if (behind.length === 0) break;
      if (Date.now() - lastShown >= 2_000) {
        const done = [...ends].reduce((n, [k, end]) => {
          const reached = at.get(k) ?? 0n;
          return n + (reached < end ? reached : end);
        }, 0n);
        log(`${model}: ${done} / ${total} records (${total === 0n ? 100 : Number((done * 100n) / total)}%)`);
        lastShown = Date.now();
      }
      await sleep(250);
    }
    const ms = Date.now() - started;
    const events = host.stats.events;
    log(`${model}: rebuilt ${events} events in ${(ms / 1000).toFixed(1)} s; comparing with the live model`);

    // 2. Stand at one position with the live model, then compare.
    const outcome = await compareAtOnePosition(target, options.settleTimeoutMs ?? 60_000);
    await stopHost();
    let replacedBy: string | undefined;
    if (options.swap) {
      await refuseWhileLiveRuns(admin, model, options);
      replacedBy = await target.swap();
      log(`${model}: swapped in; the replaced model is kept as ${replacedBy}`);
    } else if (!options.keep) {
      await target.drop();
    }
    return {
      model,
      target: target.label,
      events,
      ms,
      equal: outcome.differences.length === 0,
      differences: outcome.differences,
      position: outcome.position,
      replacedBy,
      kept: !options.swap && !!options.keep,
    };
  } catch (e) {
    await stopHost().catch(() => undefined);
    await target.drop().catch(() => undefined);
    throw e;
  } finally {
    await stopHost().catch(() => undefined);
  }
}

/**
 * How long the live model may stand still behind the rebuild before it counts as stopped: longer
 * than a consumer group's rebalance after a broker restart, and than the host's own stall watchdog
 * (projections/host.ts, 20 s), which replaces a consumer that stands still behind the log.
 */
const LIVE_STANDS_MS = 30_000;

/**
 * Waits until the live and the rebuilt checkpoints are equal and compares there; the rebuild host
 * keeps reading meanwhile, so a live model ahead of it is caught up with. A live model that stays
 * put elsewhere (stopped behind the log, or ahead of a log that shrank) is a difference, reported.
 */
async function compareAtOnePosition(
  target: Target,
  timeoutMs: number,
): Promise<{ differences: string[]; position: string }> {
  const deadline = Date.now() + timeoutMs;
  let liveBefore = "";
  let liveSince = Date.now();
  for (;;) {
    const [live, rebuilt] = await Promise.all([target.live.checkpoints(), target.rebuilt.checkpoints()]);
    if (same(live, rebuilt)) {
      const differences = await target.compare();
      const [liveAfter, rebuiltAfter] = await Promise.all([target.live.checkpoints(), target.rebuilt.checkpoints()]);
      // Moved while comparing: the comparison mixed two positions; try again.
      if (differences.length === 0 || (same(live, liveAfter) && same(rebuilt, rebuiltAfter))) {
        return { differences, position: describe(live) };
      }
    } else {
      const now = describe(live);
      if (now !== liveBefore) [liveBefore, liveSince] = [now, Date.now()];
      const stuck = Date.now() - liveSince > LIVE_STANDS_MS;
      if (stuck || Date.now() > deadline) {
        const gaps = [...new Set([...live.keys(), ...rebuilt.keys()])]
          .filter((k) => (live.get(k) ?? 0n) !== (rebuilt.get(k) ?? 0n))
          .map((k) => `${k} live at ${live.get(k) ?? 0n}, rebuilt at ${rebuilt.get(k) ?? 0n}`);
        return {
          differences: [
            `the live model ${stuck ? "stands" : "kept moving"} at another log position than the rebuild (${gaps.join("; ")}); ${stuck ? "is its projection running? start it (npm start) and rebuild again" : "rebuild again when the log is quieter"}`,
          ],
          position: `live ${describe(live)}; rebuilt ${describe(rebuilt)}`,
        };
      }
    }
    await sleep(500);
  }
}

// --- analytics (PostgreSQL) ------------------------------------------------------------------

async function analyticsTarget(options: RebuildOptions, stamp: string): Promise<Target> {
  const pool = options.pool;
  if (!pool) throw new Error("rebuilding the analytics model needs a PostgreSQL pool (DATABASE_URL)");
  const liveSchema = options.liveSchema ?? DEFAULT_SCHEMA;
  const schema = `${liveSchema}_rebuild_${stamp}`.slice(0, 63);
  const live = new AnalyticsStore(pool, { schema: liveSchema });
  await live.checkpoints().catch((e: Error) => {
    throw new Error(
      `the live analytics schema "${liveSchema}" cannot be read (${e.message}); run the read models once (npm start) so there is something to compare with`,
    );
  });
  await migrate(pool, schema);
  const rebuilt = new AnalyticsStore(pool, { schema, name: live.name });
  return {
    label: `PostgreSQL schema ${schema}`,
    live,
    rebuilt,
    compare: () => compareSchemas(pool, liveSchema, schema),
    async swap() {
      const replaced = `${liveSchema}_replaced_${stamp}`.slice(0, 63);
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await client.query(`ALTER SCHEMA ${schemaIdent(liveSchema)} RENAME TO ${schemaIdent(replaced)}`);
        await client.query(`ALTER SCHEMA ${schemaIdent(schema)} RENAME TO ${schemaIdent(liveSchema)}`);
        // Functions pinned their search_path to the schema's name at creation; follow the renames.
        await repinFunctions(client, replaced);
        await repinFunctions(client, liveSchema);
        await client.query("COMMIT");
      } catch (e) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
      return `PostgreSQL schema ${replaced}`;
    },
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schemaIdent(schema)} CASCADE`);
    },
  };
}

async function repinFunctions(client: pg.PoolClient, schema: string): Promise<void> {
  const { rows } = await client.query<{ signature: string }>(
    `SELECT p.oid::regprocedure::text AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = $1 AND EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')`,
    [schema],
  );
  // regprocedure text is schema-qualified only when the schema is not on the search_path.
  for (const { signature } of rows) {
    const qualified = signature.includes(".") ? signature : `${schemaIdent(schema)}.${signature}`;
    await client.query(`ALTER FUNCTION ${qualified} SET search_path = ${schemaIdent(schema)}`);
  }
}

/**
 * Every base table of the live schema (the migration ledger aside), compared by row count and an
 * MD5 of its rows in text form, sorted; where they differ, a few rows found on one side only.
 */
async function compareSchemas(pool: pg.Pool, live: string, rebuilt: string): Promise<string[]> {
  const { rows: tables } = await pool.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
     WHERE table_schema = $1 AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY 1`,
    [live],
  );
  const out: string[] = [];
  const a = schemaIdent(live);
  const b = schemaIdent(rebuilt);
  for (const { table_name } of tables) {
    const t = `"${table_name}"`;
    const digest = (schema: string) =>
      pool
        .query<{ n: number; h: string }>(
          `SELECT count(*)::int AS n, md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) AS h FROM ${schema}.${t} r`,
        )
        .then((r) => r.rows[0]!);
    const [x, y] = await Promise.all([digest(a), digest(b)]);
    if (x.h === y.h) continue;
    const only = async (from: string, other: string) =>
      (
        await pool.query<{ r: string }>(
          `SELECT r::text AS r FROM ${from}.${t} r EXCEPT SELECT r::text FROM ${other}.${t} r ORDER BY 1 LIMIT 3`,
        )
      ).rows.map((r) => (r.r.length > 240 ? `${r.r.slice(0, 240)}…` : r.r));
    const [onlyLive, onlyRebuilt] = await Promise.all([only(a, b), only(b, a)]);
    out.push(
      `table ${table_name}: live ${x.n} row(s), rebuilt ${y.n}` +
        (onlyLive.length ? `; only live has e.g. ${onlyLive.join(" | ")}` : "") +
        (onlyRebuilt.length ? `; only the rebuild has e.g. ${onlyRebuilt.join(" | ")}` : ""),
    );
  }
  return out;
}

// --- state (MongoDB) -------------------------------------------------------------------------

async function stateTarget(options: RebuildOptions, stamp: string): Promise<Target> {
  const db = options.db;
  if (!db) throw new Error("rebuilding the state model needs the MongoDB database (MONGO_URL)");
  const livePrefix = options.liveCollectionPrefix ?? "";
  const prefix = `${livePrefix}rebuild_${stamp}_`;
  const live = new StateStore(db, { collectionPrefix: livePrefix });
  const rebuilt = new StateStore(db, { collectionPrefix: prefix });
  await rebuilt.ensureIndexes();
  const names = (p: string) => stateCollections(p);
  return {
    label: `MongoDB collections ${prefix}* in ${db.databaseName}`,
    live,
    rebuilt,
    compare: () => compareCollections(db, names(livePrefix), names(prefix)),
    async swap() {
      const replaced = `${livePrefix}replaced_${stamp}_`;
      const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
      for (const c of STATE_COLLECTIONS) {
        if (existing.has(names(livePrefix)[c])) await db.renameCollection(names(livePrefix)[c], names(replaced)[c]);
        if (existing.has(names(prefix)[c])) await db.renameCollection(names(prefix)[c], names(livePrefix)[c]);
      }
      return `MongoDB collections ${replaced}* in ${db.databaseName}`;
    },
    async drop() {
      for (const c of STATE_COLLECTIONS) await db.dropCollection(names(prefix)[c]).catch(() => undefined);
    },
  };
}

/**
 * Canonical JSON: keys sorted, so documents written in another field order compare equal, and the
 * sets filled from several partitions (UNORDERED_FIELDS) sorted too.
 */
function canonical(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    const field = (k: string, v: unknown) =>
      (UNORDERED_FIELDS as readonly string[]).includes(k) && Array.isArray(v) ? canonical([...v].sort()) : canonical(v);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${field(k, v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The top-level fields in which two canonical documents differ, each with both values (shortened). */
function fieldDifferences(live: string, rebuilt: string): string {
  const a = JSON.parse(live) as Record<string, unknown>;
  const b = JSON.parse(rebuilt) as Record<string, unknown>;
  const show = (v: unknown) => (v === undefined ? "absent" : JSON.stringify(v).slice(0, 300));
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `${k} live ${show(a[k])} vs rebuilt ${show(b[k])}`)
    .join("; ");
}

async function compareCollections(
  db: Db,
  live: Record<string, string>,
  rebuilt: Record<string, string>,
): Promise<string[]> {
  const out: string[] = [];
  for (const c of STATE_COLLECTIONS) {
    const load = async (name: string) =>
      new Map(
        (await db.collection(name).find({}).toArray()).map((d) => [String(d._id), canonical(d)] as [string, string]),
      );
    const [a, b] = await Promise.all([load(live[c]!), load(rebuilt[c]!)]);
    const onlyLive = [...a.keys()].filter((id) => !b.has(id));
    const onlyRebuilt = [...b.keys()].filter((id) => !a.has(id));
    const differing = [...a.keys()].filter((id) => b.has(id) && a.get(id) !== b.get(id));
    if (onlyLive.length + onlyRebuilt.length + differing.length === 0) continue;
    const sample = (ids: string[]) => ids.slice(0, 3).join(", ") + (ids.length > 3 ? ", …" : "");
    const parts = [`collection ${c}: live ${a.size} document(s), rebuilt ${b.size}`];
    if (onlyLive.length) parts.push(`only live has ${onlyLive.length} (${sample(onlyLive)})`);
    if (onlyRebuilt.length) parts.push(`only the rebuild has ${onlyRebuilt.length} (${sample(onlyRebuilt)})`);
    if (differing.length) {
      const id = differing[0]!;
      parts.push(
        `${differing.length} differ (${sample(differing)}); in ${id}: ${fieldDifferences(a.get(id)!, b.get(id)!)}`,
      );
    }
    out.push(parts.join("; "));
  }
  return out;
}
