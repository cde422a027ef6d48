/**
 * The PostgreSQL analytics read model: the full event log as a table plus the DGM tables derived
 * from it (goals, tasks, task_dependencies, agents, agent_performance, system_events,
 * goal_snapshots) and model_calls (every recorded use of a language model: a task attempt's
 * TaskCompleted or TaskFailed usage, a planner's PlanProposed usage), in one schema built by
 * ./migrate.ts.
 *
 * Each batch is one transaction: the events go into `events` with one multi-row insert that skips
 * rows already present, the DGM tables change only for the rows that insert reports as new, and the
 * checkpoint moves in the same transaction. A redelivered batch therefore inserts nothing and
 * changes nothing, and a crash at any point leaves data and checkpoint in agreement.
 *
 * The DGM tables are not changed statement by statement: apply() reads the goal, task and agent rows
 * the new events name (one SELECT per table), applies the events to them in memory in log order with
 * project(), and writes each table once with multi-row statements. The result is the same as
 * applying the events one at a time, whatever the batch boundaries.
 *
 * Every value written is taken from events (never now()), so a rebuild from offset zero into a
 * fresh schema reproduces the live schema exactly.
 */
import type pg from "pg";
import { checkpointKey, type Checkpoints, type LoggedEvent, type ProjectionStore } from "../host.js";
import type { Envelope, GoalStatus, ModelUsage, Severity, TaskStatus } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { sumCosts } from "../../processors/domain/kernel/costs.js";
import { GOAL_RANK, TASK_RANK } from "../../processors/domain/kernel/status.js";
import { DEFAULT_SCHEMA, schemaIdent } from "./migrate.js";

export interface AnalyticsStoreOptions {
  /** PostgreSQL schema migrated by migrate(); "analytics" unless a test or a rebuild uses a fresh one. */
  schema?: string;
  /** Rows per insert statement; a huge batch is split so no statement grows without bound. */
  chunkSize?: number;
  /**
   * Projection name: the host's consumer group and the checkpoint rows. "analytics" by default; a
   * rebuild running beside the live store needs another, or the two hosts share one consumer group
   * and split the partitions between them.
   */
  name?: string;
}

/** Plain JSON for a JSONB column: Dates as ISO strings, Buffers as base64, bigints as strings. */
export function toJson(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString("base64");
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v);
    return out;
  }
  return value;
}

/** The event's fields without its envelope, which the events table spreads over columns. */
function payloadOf(value: object): unknown {
  const { envelope: _envelope, ...rest } = value as { envelope?: unknown };
  return toJson(rest);
}

function envelopeOf(e: LoggedEvent): Envelope {
  const envelope = (e.event.value as { envelope?: Envelope }).envelope;
  if (!envelope) {
    throw new Error(
      `analytics cannot project ${e.event.type} at ${e.topic}:${e.partition}@${e.offset}: it has no envelope; only catalog event topics (not polity.deadletters) can be projected`,
    );
  }
  return envelope;
}

/** What one batch adds to an agent's performance row; summed in memory and written once per agent. */
interface PerformanceDelta {
  completed: number;
  failed: number;
  durationMs: number;
  costs: string[];
  first: Date;
  last: Date;
}

/** One recorded use of a model (model_calls): a task attempt's or a plan's. */
interface ModelCallRow {
  topic: string;
  partition: number;
  offset: string;
  eventId: string;
  eventType: string;
  at: Date;
  tenantId: string;
  goalId: string;
  taskId: string | null;
  kind: "plan" | "task";
  attempt: number;
  phase: string | null;
  agentId: string | null;
  outcome: "COMPLETED" | "FAILED" | "ACCEPTED" | "REFUSED";
  usage: ModelUsage;
  cost: string | null;
}

interface SystemEventRow {
  eventId: string;
  at: Date;
  type: string;
  severity: Severity;
  tenantId: string;
  agentId: string | null;
  goalId: string | null;
  message: string;
}

export class AnalyticsStore implements ProjectionStore {
  readonly name: string;
  readonly schema: string;
  private readonly ident: string;
  private readonly chunkSize: number;

  constructor(
    private readonly pool: pg.Pool,
    options: AnalyticsStoreOptions = {},
  ) {
    this.name = options.name ?? "analytics";
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    this.ident = schemaIdent(this.schema);
    this.chunkSize = options.chunkSize ?? 2_000;
  }

  async checkpoints(): Promise<Checkpoints> {
    const { rows } = await this.pool.query<{ topic: string; partition: number; next_offset: string }>(
      `SELECT topic, partition, next_offset FROM ${this.ident}.checkpoints WHERE projection = $1`,
      [this.name],
    );
    return new Map(rows.map((r) => [checkpointKey(r.topic, r.partition), BigInt(r.next_offset)]));
  }

  async apply(topic: string, partition: number, events: LoggedEvent[], next: bigint): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Unqualified names below resolve to this store's schema; LOCAL reverts at commit or rollback.
      // One round trip for both (a simple query may hold several statements).
      await client.query(`BEGIN; SET LOCAL search_path TO ${this.ident}`);
      // 1. The events, skipping those already stored: only the new ones change the DGM tables.
      const fresh: LoggedEvent[] = [];
      for (let i = 0; i < events.length; i += this.chunkSize) {
        fresh.push(...(await this.insertEvents(client, topic, partition, events.slice(i, i + this.chunkSize))));
      }
      // 2. The goal, task and agent rows those events touch, read once per table (and locked).
      const changes = await this.loadRows(client, fresh);
      // 3. Every new event applied in log order to those rows in memory, as project() describes.
      for (const e of fresh) project(changes, e);
      // 4. Each table written once: the rows that changed, and the rows to add.
      await this.writeRows(client, GOALS, changes.goals);
      await this.writeRows(client, TASKS, changes.tasks);
      await this.writeRows(client, AGENTS, changes.agents);
      await this.writeDependencies(client, changes.dependencies);
      await this.writeSnapshots(client, changes.snapshots);
      await this.writePerformance(client, changes.performance);
      await this.writeSystemEvents(client, changes.system);
      await this.writeModelCalls(client, changes.modelCalls);
      await client.query(
        `INSERT INTO checkpoints AS c (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
         ON CONFLICT (projection, topic, partition)
         DO UPDATE SET next_offset = GREATEST(c.next_offset, excluded.next_offset)`,
        [this.name, topic, partition, next.toString()],
      );
      await client.query("COMMIT");
    } catch (e) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw new Error(
        `analytics (schema ${this.schema}): applying ${events.length} event(s) of ${topic}:${partition} up to offset ${next} failed and was rolled back; the batch will be read again: ${(e as Error).message}`,
        { cause: e },
      );
    } finally {
      client.release();
    }
  }

  /** One multi-row insert (arrays unnested, so the parameter count does not grow); returns the new rows in log order. */
  private async insertEvents(
    client: pg.PoolClient,
    topic: string,
    partition: number,
    events: LoggedEvent[],
  ): Promise<LoggedEvent[]> {
    if (events.length === 0) return [];
    const cols: unknown[][] = Array.from({ length: 16 }, () => []);
    for (const e of events) {
      const env = envelopeOf(e);
      const row = [
        topic,
        partition,
        e.offset.toString(),
        env.eventId,
        e.event.type,
        env.occurredAt,
        e.timestamp,
        env.tenantId,
        env.correlationId,
        env.causationId,
        env.actor.id,
        env.actor.tier,
        env.aggregate.type,
        env.aggregate.id,
        env.aggregate.version,
        JSON.stringify(payloadOf(e.event.value)),
      ];
      row.forEach((v, i) => cols[i]!.push(v));
    }
    const { rows } = await client.query<{ offset: string }>(
      `INSERT INTO events (topic, partition, "offset", event_id, type, occurred_at, logged_at, tenant_id,
         correlation_id, causation_id, actor_id, actor_tier, aggregate_type, aggregate_id, aggregate_version, payload)
       SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::uuid[], $5::text[], $6::timestamptz[],
         $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
         $15::integer[], $16::jsonb[])
       ON CONFLICT DO NOTHING
       RETURNING "offset"`,
      cols,
    );
    const inserted = new Set(rows.map((r) => r.offset));
    return events.filter((e) => inserted.has(e.offset.toString()));
  }

  /**
   * Reads, with one SELECT ... FOR UPDATE per table, the current goal, task and agent rows the new
   * events name. The lock keeps another transaction from changing them between this read and the
   * write; the catalog keys each of these tables' events by the row's own key on one topic, so in
   * practice no other partition writes them anyway.
   */
  private async loadRows(client: pg.PoolClient, fresh: LoggedEvent[]): Promise<BatchChanges> {
    const changes = newBatchChanges();
    const goalKeys = new Set<string>();
    const taskKeys = new Set<string>();
    const agentKeys = new Set<string>();
    for (const { event } of fresh) {
      const v = event.value as { goalId?: unknown; taskId?: unknown; task?: { id: string }; agentId?: unknown };
      if (GOAL_EVENTS.has(event.type)) goalKeys.add(rowKey([v.goalId as string]));
      if (TASK_EVENTS.has(event.type)) {
        taskKeys.add(rowKey([v.goalId as string, event.type === "TaskCreated" ? v.task!.id : (v.taskId as string)]));
      }
      if (AGENT_EVENTS.has(event.type)) agentKeys.add(rowKey([v.agentId as string]));
    }
    await this.readRows(client, GOALS, goalKeys, changes.goals);
    await this.readRows(client, TASKS, taskKeys, changes.tasks);
    await this.readRows(client, AGENTS, agentKeys, changes.agents);
    return changes;
  }

  private async readRows(client: pg.PoolClient, table: TableSpec, keys: Set<string>, into: Rows): Promise<void> {
    if (keys.size === 0) return;
    const sorted = [...keys].sort();
    const keyColumns = table.key.map((_, i) => sorted.map((k) => splitKey(k)[i]));
    const select = table.columns.map(([name, type]) => {
      // As text where the driver would round (numeric, jsonb numbers) or cut (microseconds) the value.
      if (type === "text" || type === "integer") return name;
      if (type === "text[]") return `to_json(${name})::text AS ${name}`;
      return `${name}::text AS ${name}`;
    });
    const { rows } = await client.query<Row>(
      `SELECT ${select.join(", ")} FROM ${table.name}
       WHERE (${table.key.join(", ")}) IN (SELECT * FROM unnest(${table.key.map((_, i) => `$${i + 1}::text[]`).join(", ")}))
       ORDER BY ${table.key.join(", ")} FOR UPDATE`,
      keyColumns,
    );
    for (const row of rows) into.loaded.set(rowKey(table.key.map((k) => row[k] as string)), row);
  }

  /**
   * Writes the rows of one table that the batch changed: one UPDATE for those that were read, one
   * INSERT for those it created, each over unnested arrays. Every value goes as text and is cast to
   * its column's type in SQL, exactly as a parameter of the per-event statements would be.
   */
  private async writeRows(client: pg.PoolClient, table: TableSpec, rows: Rows): Promise<void> {
    const inputs = [...table.columns.map(([name]) => name), ...(table.inputs ?? [])];
    const params = (keys: string[]) =>
      inputs.map((name) => keys.map((k) => (rows.loaded.get(k) ?? rows.added.get(k))![name] ?? null));
    const from = `unnest(${inputs.map((_, i) => `$${i + 1}::text[]`).join(", ")}) AS u(${inputs.join(", ")})`;
    const value = (name: string, type: string) =>
      table.values?.[name] ??
      (type === "text[]" ? `ARRAY(SELECT json_array_elements_text(u.${name}::json))` : `u.${name}::${type}`);

    const changed = [...rows.changed].filter((k) => rows.loaded.has(k)).sort();
    if (changed.length > 0) {
      const sets = table.columns.filter(([name]) => !table.key.includes(name));
      await client.query(
        `UPDATE ${table.name} AS t SET ${sets.map(([name, type]) => `${name} = ${value(name, type)}`).join(", ")}
         FROM ${from} WHERE ${table.key.map((k) => `t.${k} = u.${k}`).join(" AND ")}`,
        params(changed),
      );
    }
    const added = [...rows.added.keys()].sort();
    if (added.length > 0) {
      const { rowCount } = await client.query(
        `INSERT INTO ${table.name} (${table.columns.map(([name]) => name).join(", ")})
         SELECT ${table.columns.map(([name, type]) => value(name, type)).join(", ")} FROM ${from}
         ON CONFLICT DO NOTHING`,
        params(added),
      );
      if (rowCount !== added.length) {
        // Another transaction created one of these rows after loadRows found it missing; rolling back
        // and reading the batch again applies its events to that row instead of overwriting it.
        throw new Error(`${added.length - (rowCount ?? 0)} ${table.name} row(s) were created concurrently`);
      }
    }
  }

  private async writeDependencies(client: pg.PoolClient, rows: DependencyRow[]): Promise<void> {
    if (rows.length === 0) return;
    await client.query(
      `INSERT INTO task_dependencies (goal_id, task_id, depends_on)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
      [rows.map((r) => r.goalId), rows.map((r) => r.taskId), rows.map((r) => r.dependsOn)],
    );
  }

  /** In log order, so of two snapshots of one version the first wins, as it would one by one. */
  private async writeSnapshots(client: pg.PoolClient, rows: SnapshotRow[]): Promise<void> {
    if (rows.length === 0) return;
    const column = (name: keyof SnapshotRow) => rows.map((r) => r[name]);
    await client.query(
      `INSERT INTO goal_snapshots (goal_id, as_of_version, taken_at, status, current_phase, progress, tasks_total,
         tasks_completed, tasks_failed, tasks_in_flight, open_escalations, cost_so_far, state)
       SELECT * FROM unnest($1::text[], $2::integer[], $3::timestamptz[], $4::text[], $5::text[],
         $6::double precision[], $7::integer[], $8::integer[], $9::integer[], $10::integer[], $11::integer[],
         $12::numeric[], $13::jsonb[])
       ON CONFLICT (goal_id, as_of_version) DO NOTHING`,
      [
        column("goalId"),
        column("asOfVersion"),
        column("takenAt"),
        column("status"),
        column("currentPhase"),
        column("progress"),
        column("tasksTotal"),
        column("tasksCompleted"),
        column("tasksFailed"),
        column("tasksInFlight"),
        column("openEscalations"),
        column("costSoFar"),
        column("state"),
      ],
    );
  }

  /** One upsert for the batch, in agent id order, so concurrent partitions lock rows in the same order. */
  private async writePerformance(client: pg.PoolClient, deltas: Map<string, PerformanceDelta>): Promise<void> {
    if (deltas.size === 0) return;
    const ids = [...deltas.keys()].sort();
    const d = ids.map((id) => deltas.get(id)!);
    await client.query(
      `INSERT INTO agent_performance AS p (agent_id, tasks_completed, tasks_failed, total_duration_ms, total_cost,
         first_task_at, last_task_at)
       SELECT * FROM unnest($1::text[], $2::integer[], $3::integer[], $4::bigint[], $5::numeric[], $6::timestamptz[],
         $7::timestamptz[])
       ON CONFLICT (agent_id) DO UPDATE SET
         tasks_completed = p.tasks_completed + excluded.tasks_completed,
         tasks_failed = p.tasks_failed + excluded.tasks_failed,
         total_duration_ms = p.total_duration_ms + excluded.total_duration_ms,
         total_cost = p.total_cost + excluded.total_cost,
         first_task_at = LEAST(p.first_task_at, excluded.first_task_at),
         last_task_at = GREATEST(p.last_task_at, excluded.last_task_at)`,
      [
        ids,
        d.map((x) => x.completed),
        d.map((x) => x.failed),
        d.map((x) => x.durationMs),
        d.map((x) => sumCosts(x.costs)),
        d.map((x) => x.first),
        d.map((x) => x.last),
      ],
    );
  }

  private async writeSystemEvents(client: pg.PoolClient, rows: SystemEventRow[]): Promise<void> {
    if (rows.length === 0) return;
    await client.query(
      `INSERT INTO system_events (event_id, occurred_at, type, severity, tenant_id, agent_id, goal_id, message)
       SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
         $8::text[])
       ON CONFLICT (event_id) DO NOTHING`,
      [
        rows.map((r) => r.eventId),
        rows.map((r) => r.at),
        rows.map((r) => r.type),
        rows.map((r) => r.severity),
        rows.map((r) => r.tenantId),
        rows.map((r) => r.agentId),
        rows.map((r) => r.goalId),
        rows.map((r) => r.message),
      ],
    );
  }

  private async writeModelCalls(client: pg.PoolClient, rows: ModelCallRow[]): Promise<void> {
    if (rows.length === 0) return;
    const column = <T>(f: (r: ModelCallRow) => T) => rows.map(f);
    await client.query(
      `INSERT INTO model_calls (topic, partition, "offset", event_id, event_type, occurred_at, tenant_id, goal_id,
         task_id, kind, attempt, phase, agent_id, outcome, model, tokens_in, tokens_out, calls, latency_ms, cost,
         prompt_digest, answer_digest)
       SELECT * FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::uuid[], $5::text[], $6::timestamptz[],
         $7::text[], $8::text[], $9::text[], $10::text[], $11::integer[], $12::text[], $13::text[], $14::text[],
         $15::text[], $16::bigint[], $17::bigint[], $18::integer[], $19::bigint[], $20::numeric[], $21::text[],
         $22::text[])
       ON CONFLICT DO NOTHING`,
      [
        column((r) => r.topic),
        column((r) => r.partition),
        column((r) => r.offset),
        column((r) => r.eventId),
        column((r) => r.eventType),
        column((r) => r.at),
        column((r) => r.tenantId),
        column((r) => r.goalId),
        column((r) => r.taskId),
        column((r) => r.kind),
        column((r) => r.attempt),
        column((r) => r.phase),
        column((r) => r.agentId),
        column((r) => r.outcome),
        column((r) => r.usage.model),
        column((r) => String(r.usage.tokensIn)),
        column((r) => String(r.usage.tokensOut)),
        column((r) => r.usage.calls),
        column((r) => String(r.usage.latencyMs)),
        column((r) => r.cost),
        column((r) => r.usage.promptDigest),
        column((r) => r.usage.answerDigest),
      ],
    );
  }
}

function addPerformance(
  deltas: Map<string, PerformanceDelta>,
  agentId: string,
  at: Date,
  add: { completed?: number; failed?: number; durationMs?: number; cost?: string },
): void {
  let d = deltas.get(agentId);
  if (!d) deltas.set(agentId, (d = { completed: 0, failed: 0, durationMs: 0, costs: [], first: at, last: at }));
  d.completed += add.completed ?? 0;
  d.failed += add.failed ?? 0;
  d.durationMs += add.durationMs ?? 0;
  if (add.cost !== undefined) d.costs.push(add.cost);
  if (at < d.first) d.first = at;
  if (at > d.last) d.last = at;
}

/** A snapshot's state is a string holding JSON; one that does not parse is kept as a JSON string. */
function jsonDocument(text: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}

/** A column value in memory: as read (see readRows) or as an event gives it; cast to the column's type on write. */
type Value = string | number | Date | null;
type Row = Record<string, Value>;

/** One table's rows in one batch, by rowKey(): those read from the table, and those the batch creates. */
interface Rows {
  loaded: Map<string, Row>;
  added: Map<string, Row>;
  /** Keys of loaded rows the batch changed; only these are written back. */
  changed: Set<string>;
}

interface DependencyRow {
  goalId: string;
  taskId: string;
  dependsOn: string;
}

interface SnapshotRow {
  goalId: string;
  asOfVersion: number;
  takenAt: Date;
  status: string;
  currentPhase: string | null;
  progress: number;
  tasksTotal: number;
  tasksCompleted: number;
  tasksFailed: number;
  tasksInFlight: number;
  openEscalations: number;
  costSoFar: string;
  state: string;
}

/** Everything one batch writes besides the events and the checkpoint. */
interface BatchChanges {
  goals: Rows;
  tasks: Rows;
  agents: Rows;
  dependencies: DependencyRow[];
  snapshots: SnapshotRow[];
  performance: Map<string, PerformanceDelta>;
  system: SystemEventRow[];
  modelCalls: ModelCallRow[];
}

function newBatchChanges(): BatchChanges {
  const rows = (): Rows => ({ loaded: new Map(), added: new Map(), changed: new Set() });
  return {
    goals: rows(),
    tasks: rows(),
    agents: rows(),
    dependencies: [],
    snapshots: [],
    performance: new Map(),
    system: [],
    modelCalls: [],
  };
}

/** A row's primary key as one map key; NUL cannot occur in a PostgreSQL text value. */
function rowKey(parts: string[]): string {
  return parts.join("\u0000");
}
function splitKey(key: string): string[] {
  return key.split("\u0000");
}

/** The row as it stands in this batch (read, or created by an earlier event of it), or undefined. */
function current(rows: Rows, key: string[]): Row | undefined {
  const k = rowKey(key);
  return rows.loaded.get(k) ?? rows.added.get(k);
}

/** The row, to be changed: written back at the end of the batch. */
function changing(rows: Rows, key: string[]): Row | undefined {
  const k = rowKey(key);
  const loaded = rows.loaded.get(k);
  if (loaded) {
    rows.changed.add(k);
    return loaded;
  }
  return rows.added.get(k);
}

function adding(rows: Rows, key: string[], row: Row): Row {
  rows.added.set(rowKey(key), row);
  return row;
}

/**
 * A table's columns and their SQL types, in table order. `inputs` are values written with the rows
 * that are not columns; `values` replaces a column's plain cast by an SQL expression over the
 * unnested row `u`.
 */
interface TableSpec {
  name: string;
  key: string[];
  columns: [name: string, type: string][];
  inputs?: string[];
  values?: Record<string, string>;
}

const GOALS: TableSpec = {
  name: "goals",
  key: ["goal_id"],
  columns: [
    ["goal_id", "text"],
    ["tenant_id", "text"],
    ["kind", "text"],
    ["topology", "text"],
    ["title", "text"],
    ["description", "text"],
    ["priority", "integer"],
    ["constraints", "jsonb"],
    ["domain_hints", "text[]"],
    ["deadline", "timestamptz"],
    ["budget", "numeric"],
    ["status", "text"],
    ["current_phase", "text"],
    ["phase_started_at", "timestamptz"],
    ["submitted_at", "timestamptz"],
    ["ended_at", "timestamptz"],
    ["result", "text"],
    ["end_reason", "text"],
    ["tasks_completed", "integer"],
    ["tasks_failed", "integer"],
    ["total_cost", "numeric"],
    ["duration_ms", "bigint"],
    ["version", "integer"],
    ["planner", "text"],
  ],
};

const TASKS: TableSpec = {
  name: "tasks",
  key: ["goal_id", "task_id"],
  columns: [
    ["goal_id", "text"],
    ["task_id", "text"],
    ["tenant_id", "text"],
    ["title", "text"],
    ["description", "text"],
    ["domain", "text"],
    ["specialization", "text"],
    ["phase", "text"],
    ["priority", "integer"],
    ["max_attempts", "integer"],
    ["parent_task_id", "text"],
    ["estimated_effort_ms", "bigint"],
    ["deadline", "timestamptz"],
    ["status", "text"],
    ["attempt", "integer"],
    ["governor_id", "text"],
    ["mayor_id", "text"],
    ["worker_id", "text"],
    ["created_at", "timestamptz"],
    ["assigned_at", "timestamptz"],
    ["started_at", "timestamptz"],
    ["completed_at", "timestamptz"],
    ["failed_at", "timestamptz"],
    ["cancelled_at", "timestamptz"],
    ["duration_ms", "bigint"],
    ["failures", "integer"],
    ["cost", "numeric"],
    ["result", "text"],
    ["last_failure", "text"],
  ],
  // The completing attempt's cost is added in SQL, with numeric's exact arithmetic and rounding. A
  // task completes at most once (a completed task takes no further completion), so a batch adds at
  // most one cost to a row.
  inputs: ["cost_added"],
  values: { cost: "u.cost::numeric + coalesce(u.cost_added::numeric, 0)" },
};

const AGENTS: TableSpec = {
  name: "agents",
  key: ["agent_id"],
  columns: [
    ["agent_id", "text"],
    ["name", "text"],
    ["tier", "text"],
    ["topology", "text"],
    ["domain", "text"],
    ["specialization", "text"],
    ["superior_id", "text"],
    ["capacity", "integer"],
    ["executor", "text"],
    ["labels", "jsonb"],
    ["heartbeat_interval_ms", "integer"],
    ["status", "text"],
    ["registered_at", "timestamptz"],
    ["failed_at", "timestamptz"],
    ["recovered_at", "timestamptz"],
    ["terminated_at", "timestamptz"],
    ["status_reason", "text"],
  ],
};

/** A new row of `table`: every column null but those given (the table's defaults must be given too). */
function newRow(table: TableSpec, values: Row): Row {
  const row: Row = {};
  for (const [name] of table.columns) row[name] = values[name] ?? null;
  return row;
}

/** The event types that change a goal, task or agent row; loadRows reads the rows they name. */
const GOAL_EVENTS: ReadonlySet<string> = new Set([
  "GoalSubmitted",
  "GoalValidated",
  "GoalDecomposed",
  "GoalCompleted",
  "GoalFailed",
  "GoalStopped",
  "GoalRejected",
  "PhaseTransitioned",
]);
const TASK_EVENTS: ReadonlySet<string> = new Set([
  "TaskCreated",
  "TaskAssigned",
  "TaskAccepted",
  "TaskStarted",
  "TaskCompleted",
  "TaskFailed",
  "TaskTimedOut",
  "TaskRetried",
  "TaskCancelled",
]);
const AGENT_EVENTS: ReadonlySet<string> = new Set([
  "AgentRegistered",
  "AgentFailed",
  "AgentRecovered",
  "AgentTerminated",
]);

/** Lifecycle ranks of processors/domain/kernel/status.ts, as goal_status_rank() and task_status_rank() in 002_dgm_schema.sql. */
const goalRank = (status: Value | undefined) => GOAL_RANK[status as GoalStatus] ?? -1;
const taskRank = (status: Value | undefined) => TASK_RANK[status as TaskStatus] ?? -1;

/**
 * Applies one new event to the batch's rows in memory; status rules mirror processors/domain/kernel/state.ts.
 * A rule that finds no row changes nothing, unless it says it creates one.
 */
function project(changes: BatchChanges, logged: LoggedEvent): void {
  const event: PolityEvent = logged.event;
  const env = envelopeOf(logged);
  const at = env.occurredAt;
  const version = env.aggregate.version;
  const note = (severity: Severity, agentId: string | null, goalId: string | null, message: string) =>
    changes.system.push({
      eventId: env.eventId,
      at,
      type: event.type,
      severity,
      tenantId: env.tenantId,
      agentId,
      goalId,
      message,
    });
  const modelCall = (
    row: Pick<ModelCallRow, "goalId" | "taskId" | "kind" | "attempt" | "phase" | "agentId" | "outcome" | "cost">,
    usage: ModelUsage | null,
  ) => {
    if (!usage) return;
    changes.modelCalls.push({
      topic: logged.topic,
      partition: logged.partition,
      offset: logged.offset.toString(),
      eventId: env.eventId,
      eventType: event.type,
      at,
      tenantId: env.tenantId,
      usage,
      ...row,
    });
  };
  const { goals, tasks, agents } = changes;
  switch (event.type) {
    case "GoalSubmitted": {
      const e = event.value;
      const submitted: Row = {
        tenant_id: env.tenantId,
        kind: e.kind,
        topology: e.topology,
        title: e.title,
        description: e.description,
        priority: e.priority,
        constraints: JSON.stringify(e.constraints),
        domain_hints: JSON.stringify(e.domainHints),
        deadline: e.deadline,
        budget: e.budget,
        submitted_at: at,
      };
      const g = changing(goals, [e.goalId]);
      // A goal known before (from a status event read first, or a repeat) keeps its status.
      if (g) Object.assign(g, submitted, { version: Math.max(g.version as number, version) });
      else adding(goals, [e.goalId], newRow(GOALS, { goal_id: e.goalId, ...submitted, status: "SUBMITTED", version }));
      return;
    }
    case "GoalValidated":
      return goalStatus(goals, event.value.goalId, env, "VALIDATED", {});
    case "GoalDecomposed": {
      // The hierarchy dispatches as soon as it decomposes (state.ts: GoalDecomposed -> RUNNING).
      goalStatus(goals, event.value.goalId, env, "RUNNING", {});
      // The last decomposition's planner (a project's phases may each be planned by another).
      current(goals, [event.value.goalId])!.planner = event.value.planner;
      return;
    }
    case "PlanProposed": {
      const e = event.value;
      modelCall(
        {
          goalId: e.goalId,
          taskId: null,
          kind: "plan",
          attempt: e.attempt,
          phase: e.phase,
          agentId: null,
          outcome: e.accepted ? "ACCEPTED" : "REFUSED",
          cost: null,
        },
        e.usage,
      );
      return;
    }
    case "GoalCompleted": {
      const e = event.value;
      return goalStatus(goals, e.goalId, env, "COMPLETED", {
        ended_at: at,
        result: e.result,
        tasks_completed: e.tasksCompleted,
        total_cost: e.totalCost,
        duration_ms: e.durationMs,
      });
    }
    case "GoalFailed": {
      const e = event.value;
      note("WARNING", null, e.goalId, `goal failed: ${e.reason}`);
      return goalStatus(goals, e.goalId, env, "FAILED", {
        ended_at: at,
        end_reason: e.reason,
        tasks_completed: e.tasksCompleted,
        tasks_failed: e.tasksFailed,
        total_cost: e.totalCost,
      });
    }
    case "GoalStopped": {
      const e = event.value;
      note("CRITICAL", null, e.goalId, `emergency stop: ${e.reason}`);
      return goalStatus(goals, e.goalId, env, "STOPPED", { ended_at: at, end_reason: e.reason });
    }
    case "GoalRejected": {
      const e = event.value;
      // A duplicate submission is refused under the id of a goal that exists: that goal stays as it is.
      if (e.code === "DUPLICATE_GOAL") return;
      return goalStatus(goals, e.goalId, env, "REJECTED", {
        ended_at: at,
        end_reason: `${e.code}: ${e.reasons.join("; ")}`,
      });
    }
    case "PhaseTransitioned": {
      const e = event.value;
      // A repeated transition to the phase the goal is in changes nothing (not even the version).
      if (current(goals, [e.goalId])?.current_phase === e.toPhase) return;
      const g = changing(goals, [e.goalId]);
      if (!g) return;
      g.current_phase = e.toPhase;
      g.phase_started_at = at;
      g.version = Math.max(g.version as number, version);
      return;
    }
    case "GoalSnapshotTaken": {
      const e = event.value;
      changes.snapshots.push({
        goalId: e.goalId,
        asOfVersion: e.asOfVersion,
        takenAt: at,
        status: e.status,
        currentPhase: e.currentPhase,
        progress: e.progress,
        tasksTotal: e.tasksTotal,
        tasksCompleted: e.tasksCompleted,
        tasksFailed: e.tasksFailed,
        tasksInFlight: e.tasksInFlight,
        openEscalations: e.openEscalations,
        costSoFar: e.costSoFar,
        state: jsonDocument(e.state),
      });
      return;
    }
    case "TaskCreated": {
      const e = event.value;
      const t = e.task;
      // The first creation wins; a repeat still adds dependencies the first did not list.
      if (!current(tasks, [e.goalId, t.id])) {
        adding(
          tasks,
          [e.goalId, t.id],
          newRow(TASKS, {
            goal_id: e.goalId,
            task_id: t.id,
            tenant_id: env.tenantId,
            title: t.title,
            description: t.description,
            domain: t.domain,
            specialization: t.specialization,
            phase: t.phase,
            priority: e.priority,
            max_attempts: e.maxAttempts,
            parent_task_id: e.parentTaskId,
            estimated_effort_ms: t.estimatedEffortMs,
            deadline: e.deadline,
            status: "PENDING",
            attempt: 1,
            created_at: at,
            failures: 0,
            cost: "0",
          }),
        );
      }
      for (const dependsOn of t.dependsOn) changes.dependencies.push({ goalId: e.goalId, taskId: t.id, dependsOn });
      return;
    }
    case "TaskAssigned": {
      const e = event.value;
      if (!["GOVERNOR", "SUB_MASTER", "MAYOR", "WORKER"].includes(e.assigneeTier)) return;
      const t = current(tasks, [e.goalId, e.taskId]);
      if (!t || t.status === "COMPLETED" || t.status === "CANCELLED" || e.attempt < (t.attempt as number)) return;
      // A late worker assignment of a finished attempt must not make the worker hold the task again.
      const finished = t.status === "FAILED" || t.status === "TIMED_OUT";
      if (e.assigneeTier === "WORKER" && e.attempt === t.attempt && finished) return;
      changing(tasks, [e.goalId, e.taskId]);
      // A newer attempt resets the status.
      if (e.attempt > (t.attempt as number) || taskRank(t.status) < 2) t.status = "ASSIGNED";
      t.attempt = e.attempt;
      if (e.assigneeTier === "GOVERNOR" || e.assigneeTier === "SUB_MASTER") t.governor_id = e.assigneeId;
      if (e.assigneeTier === "MAYOR") t.mayor_id = e.assigneeId;
      if (e.assigneeTier === "WORKER") t.worker_id = e.assigneeId;
      t.assigned_at = at;
      return;
    }
    case "TaskAccepted":
    case "TaskStarted": {
      const e = event.value;
      const status = event.type === "TaskStarted" ? "RUNNING" : "ACCEPTED";
      const t = current(tasks, [e.goalId, e.taskId]);
      if (!t || ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"].includes(t.status as string)) return;
      if (!(e.attempt > (t.attempt as number) || (e.attempt === t.attempt && taskRank(status) > taskRank(t.status)))) {
        return;
      }
      changing(tasks, [e.goalId, e.taskId]);
      t.status = status;
      t.attempt = e.attempt;
      if (status === "RUNNING") t.started_at = at;
      return;
    }
    case "TaskCompleted": {
      const e = event.value;
      // Every completed attempt counts for its agent, whether or not it completes the task; so do its model calls.
      addPerformance(changes.performance, e.agentId, at, { completed: 1, durationMs: e.durationMs, cost: e.cost });
      modelCall(
        {
          goalId: e.goalId,
          taskId: e.taskId,
          kind: "task",
          attempt: e.attempt,
          phase: null,
          agentId: e.agentId,
          outcome: "COMPLETED",
          cost: e.cost,
        },
        e.usage,
      );
      const t = current(tasks, [e.goalId, e.taskId]);
      // The first success completes the task, whichever attempt it comes from, a late one included
      // (processors/domain/kernel/status.ts taskMovesForward).
      if (!t || t.status === "COMPLETED" || t.status === "CANCELLED") return;
      changing(tasks, [e.goalId, e.taskId]);
      t.status = "COMPLETED";
      t.attempt = e.attempt;
      t.worker_id = e.agentId;
      t.completed_at = at;
      t.duration_ms = e.durationMs;
      t.result = e.result;
      t.cost_added = e.cost; // added to the stored cost on write: see TASKS.values
      t.last_failure = null;
      return;
    }
    case "TaskFailed":
    case "TaskTimedOut": {
      const e = event.value;
      const failed = event.type === "TaskFailed";
      if (failed) addPerformance(changes.performance, e.agentId, at, { failed: 1 });
      if (event.type === "TaskFailed")
        modelCall(
          {
            goalId: e.goalId,
            taskId: e.taskId,
            kind: "task",
            attempt: e.attempt,
            phase: null,
            agentId: e.agentId,
            outcome: "FAILED",
            cost: null,
          },
          event.value.usage,
        );
      const reason = event.type === "TaskFailed" ? event.value.reason : `timed out after ${event.value.elapsedMs} ms`;
      const t = current(tasks, [e.goalId, e.taskId]);
      if (!t || t.status === "COMPLETED" || t.status === "CANCELLED") return;
      if (!(e.attempt > (t.attempt as number) || (e.attempt === t.attempt && taskRank(t.status) < 5))) return;
      changing(tasks, [e.goalId, e.taskId]);
      t.status = failed ? "FAILED" : "TIMED_OUT";
      t.attempt = e.attempt;
      t.failed_at = at;
      t.failures = (t.failures as number) + 1;
      t.last_failure = reason;
      return;
    }
    case "TaskRetried": {
      const e = event.value;
      const t = current(tasks, [e.goalId, e.taskId]);
      if (!t || t.status === "COMPLETED" || t.status === "CANCELLED" || !(e.attempt > (t.attempt as number))) return;
      changing(tasks, [e.goalId, e.taskId]);
      t.status = "READY";
      t.attempt = e.attempt;
      t.worker_id = null;
      t.started_at = null;
      return;
    }
    case "TaskCancelled": {
      const e = event.value;
      const t = current(tasks, [e.goalId, e.taskId]);
      if (!t || t.status === "COMPLETED" || t.status === "CANCELLED") return;
      changing(tasks, [e.goalId, e.taskId]);
      t.status = "CANCELLED";
      t.cancelled_at = at;
      t.last_failure = `${e.cause}: ${e.reason}`;
      return;
    }
    case "EscalationRaised": {
      const e = event.value;
      note(e.severity, e.fromAgentId, e.goalId, `${e.kind} escalated ${e.fromTier} -> ${e.toTier}: ${e.reason}`);
      return;
    }
    case "AgentRegistered": {
      const e = event.value;
      const registered: Row = {
        name: e.name,
        tier: e.tier,
        topology: e.topology,
        domain: e.domain,
        specialization: e.specialization,
        superior_id: e.superiorId,
        capacity: e.capacity,
        executor: e.executor,
        labels: JSON.stringify(e.labels),
        heartbeat_interval_ms: e.heartbeatIntervalMs,
        status: "IDLE",
        registered_at: at,
        status_reason: null,
      };
      // A registration again (a restarted agent) keeps the failure and recovery history.
      const a = changing(agents, [e.agentId]);
      if (a) Object.assign(a, registered);
      else adding(agents, [e.agentId], newRow(AGENTS, { agent_id: e.agentId, ...registered }));
      return;
    }
    case "AgentFailed": {
      const e = event.value;
      note("WARNING", e.agentId, null, `agent failed: ${e.reason} (${e.inFlightTasks.length} task(s) in flight)`);
      if (current(agents, [e.agentId])?.status === "TERMINATED") return;
      const a = changing(agents, [e.agentId]);
      if (!a) return;
      a.status = "FAILED";
      a.failed_at = at;
      a.status_reason = e.reason;
      return;
    }
    case "AgentRecovered": {
      const e = event.value;
      note("INFO", e.agentId, null, `agent recovered after ${e.downtimeMs} ms`);
      if (current(agents, [e.agentId])?.status === "TERMINATED") return;
      const a = changing(agents, [e.agentId]);
      if (!a) return;
      a.status = "IDLE";
      a.recovered_at = at;
      a.status_reason = null;
      return;
    }
    case "AgentTerminated": {
      const e = event.value;
      note("INFO", e.agentId, null, `agent terminated (${e.cause}): ${e.reason}`);
      const a = changing(agents, [e.agentId]);
      if (!a) return;
      a.status = "TERMINATED";
      a.terminated_at = at;
      a.status_reason = `${e.cause}: ${e.reason}`;
      return;
    }
    case "AgentsScaled": {
      const e = event.value;
      const pool = [e.tier, e.domain, e.specialization].filter((p) => p !== null).join("/");
      note("INFO", null, null, `${pool} scaled ${e.previousCount} -> ${e.newCount} (${e.trigger}): ${e.reason}`);
      return;
    }
    case "PerformanceAlert": {
      const e = event.value;
      note(e.severity, e.agentId, e.goalId, e.message);
      return;
    }
    case "ConstitutionalViolationDetected": {
      const e = event.value;
      note(e.severity, e.agentId, e.goalId, `${e.principle}: ${e.description} (${e.enforcement})`);
      return;
    }
    default:
      // Every other type lives only in the events table (and the views that read it).
      return;
  }
}

/**
 * Moves a goal to a later status, setting `extra` columns only when the status really moves, so the
 * first final event wins. A goal known only from this event gets a minimal row, whose status
 * 'UNKNOWN' ranks below every status, so the move always applies to it.
 */
function goalStatus(goals: Rows, goalId: string, env: Envelope, status: string, extra: Row): void {
  const g =
    changing(goals, [goalId]) ??
    adding(
      goals,
      [goalId],
      newRow(GOALS, {
        goal_id: goalId,
        tenant_id: env.tenantId,
        constraints: "{}",
        domain_hints: "[]",
        status: "UNKNOWN",
        version: 0,
      }),
    );
  if (goalRank(status) > goalRank(g.status)) Object.assign(g, extra, { status });
  g.version = Math.max(g.version as number, env.aggregate.version);
}
