/**
 * The PostgreSQL analytics read model: the full event log as a table plus the DGM tables derived
 * from it (goals, tasks, task_dependencies, agents, agent_performance, system_events,
 * goal_snapshots), in one schema built by ./migrate.ts.
 *
 * Each batch is one transaction: the events go into `events` with one multi-row insert that skips
 * rows already present, the DGM tables change only for the rows that insert reports as new, and the
 * checkpoint moves in the same transaction. A redelivered batch therefore inserts nothing and
 * changes nothing, and a crash at any point leaves data and checkpoint in agreement.
 *
 * Every value written is taken from events (never now()), so a rebuild from offset zero into a
 * fresh schema reproduces the live schema exactly.
 */
import type pg from "pg";
import { checkpointKey, type Checkpoints, type LoggedEvent, type ProjectionStore } from "../host.js";
import type { Envelope, Severity } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { sumCosts } from "../../processors/domain/state.js";
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
      await client.query("BEGIN");
      // Unqualified names below resolve to this store's schema; LOCAL reverts at commit or rollback.
      await client.query(`SET LOCAL search_path TO ${this.ident}`);
      const fresh: LoggedEvent[] = [];
      for (let i = 0; i < events.length; i += this.chunkSize) {
        fresh.push(...(await this.insertEvents(client, topic, partition, events.slice(i, i + this.chunkSize))));
      }
      const performance = new Map<string, PerformanceDelta>();
      const system: SystemEventRow[] = [];
      for (const e of fresh) await this.project(client, e, performance, system);
      await this.writePerformance(client, performance);
      await this.writeSystemEvents(client, system);
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

  /** Applies one new event to the DGM tables; status rules mirror processors/domain/state.ts. */
  private async project(
    client: pg.PoolClient,
    logged: LoggedEvent,
    performance: Map<string, PerformanceDelta>,
    system: SystemEventRow[],
  ): Promise<void> {
    const event: PolityEvent = logged.event;
    const env = envelopeOf(logged);
    const at = env.occurredAt;
    const q = (sql: string, params: unknown[]) => client.query(sql, params);
    const note = (severity: Severity, agentId: string | null, goalId: string | null, message: string) =>
      system.push({
        eventId: env.eventId,
        at,
        type: event.type,
        severity,
        tenantId: env.tenantId,
        agentId,
        goalId,
        message,
      });
    switch (event.type) {
      case "GoalSubmitted": {
        const e = event.value;
        await q(
          `INSERT INTO goals AS g (goal_id, tenant_id, kind, topology, title, description, priority, constraints,
             domain_hints, deadline, budget, status, submitted_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'SUBMITTED', $12, $13)
           ON CONFLICT (goal_id) DO UPDATE SET tenant_id = excluded.tenant_id, kind = excluded.kind,
             topology = excluded.topology, title = excluded.title, description = excluded.description,
             priority = excluded.priority, constraints = excluded.constraints, domain_hints = excluded.domain_hints,
             deadline = excluded.deadline, budget = excluded.budget, submitted_at = excluded.submitted_at,
             version = GREATEST(g.version, excluded.version)`,
          [
            e.goalId,
            env.tenantId,
            e.kind,
            e.topology,
            e.title,
            e.description,
            e.priority,
            JSON.stringify(e.constraints),
            e.domainHints,
            e.deadline,
            e.budget,
            at,
            env.aggregate.version,
          ],
        );
        return;
      }
      case "GoalValidated":
        return this.goalStatus(client, event.value.goalId, env, "VALIDATED", {});
      case "GoalDecomposed":
        // The hierarchy dispatches as soon as it decomposes (state.ts: GoalDecomposed -> RUNNING).
        return this.goalStatus(client, event.value.goalId, env, "RUNNING", {});
      case "GoalCompleted": {
        const e = event.value;
        return this.goalStatus(client, e.goalId, env, "COMPLETED", {
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
        return this.goalStatus(client, e.goalId, env, "FAILED", {
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
        return this.goalStatus(client, e.goalId, env, "STOPPED", { ended_at: at, end_reason: e.reason });
      }
      case "GoalRejected": {
        const e = event.value;
        // A duplicate submission is refused under the id of a goal that exists: that goal stays as it is.
        if (e.code === "DUPLICATE_GOAL") return;
        return this.goalStatus(client, e.goalId, env, "REJECTED", {
          ended_at: at,
          end_reason: `${e.code}: ${e.reasons.join("; ")}`,
        });
      }
      case "PhaseTransitioned": {
        const e = event.value;
        await q(
          `UPDATE goals SET current_phase = $2, phase_started_at = $3, version = GREATEST(version, $4::integer)
           WHERE goal_id = $1 AND current_phase IS DISTINCT FROM $2`,
          [e.goalId, e.toPhase, at, env.aggregate.version],
        );
        return;
      }
      case "GoalSnapshotTaken": {
        const e = event.value;
        await q(
          `INSERT INTO goal_snapshots (goal_id, as_of_version, taken_at, status, current_phase, progress, tasks_total,
             tasks_completed, tasks_failed, tasks_in_flight, open_escalations, cost_so_far, state)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (goal_id, as_of_version) DO NOTHING`,
          [
            e.goalId,
            e.asOfVersion,
            at,
            e.status,
            e.currentPhase,
            e.progress,
            e.tasksTotal,
            e.tasksCompleted,
            e.tasksFailed,
            e.tasksInFlight,
            e.openEscalations,
            e.costSoFar,
            jsonDocument(e.state),
          ],
        );
        return;
      }
      case "TaskCreated": {
        const e = event.value;
        const t = e.task;
        await q(
          `INSERT INTO tasks (goal_id, task_id, tenant_id, title, description, domain, specialization, phase, priority,
             max_attempts, parent_task_id, estimated_effort_ms, deadline, status, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'PENDING', $14)
           ON CONFLICT (goal_id, task_id) DO NOTHING`,
          [
            e.goalId,
            t.id,
            env.tenantId,
            t.title,
            t.description,
            t.domain,
            t.specialization,
            t.phase,
            e.priority,
            e.maxAttempts,
            e.parentTaskId,
            t.estimatedEffortMs,
            e.deadline,
            at,
          ],
        );
        if (t.dependsOn.length > 0) {
          await q(
            `INSERT INTO task_dependencies (goal_id, task_id, depends_on)
             SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`,
            [e.goalId, t.id, t.dependsOn],
          );
        }
        return;
      }
      case "TaskAssigned": {
        const e = event.value;
        if (!["GOVERNOR", "SUB_MASTER", "MAYOR", "WORKER"].includes(e.assigneeTier)) return;
        // A newer attempt resets the status; a late worker assignment of a finished attempt must not
        // make the worker hold the task again.
        await q(
          `UPDATE tasks SET
             status = CASE WHEN $3::integer > attempt OR task_status_rank(status) < 2 THEN 'ASSIGNED' ELSE status END,
             attempt = GREATEST(attempt, $3::integer),
             governor_id = CASE WHEN $4::text IN ('GOVERNOR', 'SUB_MASTER') THEN $5 ELSE governor_id END,
             mayor_id = CASE WHEN $4::text = 'MAYOR' THEN $5 ELSE mayor_id END,
             worker_id = CASE WHEN $4::text = 'WORKER' THEN $5 ELSE worker_id END,
             assigned_at = $6
           WHERE goal_id = $1 AND task_id = $2 AND status NOT IN ('COMPLETED', 'CANCELLED') AND $3::integer >= attempt
             AND NOT ($4::text = 'WORKER' AND $3::integer = attempt AND status IN ('FAILED', 'TIMED_OUT'))`,
          [e.goalId, e.taskId, e.attempt, e.assigneeTier, e.assigneeId, at],
        );
        return;
      }
      case "TaskAccepted":
      case "TaskStarted": {
        const e = event.value;
        const status = event.type === "TaskStarted" ? "RUNNING" : "ACCEPTED";
        await q(
          `UPDATE tasks SET status = $3, attempt = $4::integer,
             started_at = CASE WHEN $3::text = 'RUNNING' THEN $5 ELSE started_at END
           WHERE goal_id = $1 AND task_id = $2 AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT')
             AND ($4::integer > attempt OR ($4::integer = attempt AND task_status_rank($3) > task_status_rank(status)))`,
          [e.goalId, e.taskId, status, e.attempt, at],
        );
        return;
      }
      case "TaskCompleted": {
        const e = event.value;
        addPerformance(performance, e.agentId, at, { completed: 1, durationMs: e.durationMs, cost: e.cost });
        await q(
          `UPDATE tasks SET status = 'COMPLETED', attempt = $3::integer, worker_id = $4, completed_at = $5,
             duration_ms = $6, result = $7, cost = cost + $8::numeric, last_failure = NULL
           WHERE goal_id = $1 AND task_id = $2 AND status NOT IN ('COMPLETED', 'CANCELLED')
             AND ($3::integer > attempt OR ($3::integer = attempt AND task_status_rank(status) < 6))`,
          [e.goalId, e.taskId, e.attempt, e.agentId, at, e.durationMs, e.result, e.cost],
        );
        return;
      }
      case "TaskFailed":
      case "TaskTimedOut": {
        const e = event.value;
        const failed = event.type === "TaskFailed";
        if (failed) addPerformance(performance, e.agentId, at, { failed: 1 });
        const reason = event.type === "TaskFailed" ? event.value.reason : `timed out after ${event.value.elapsedMs} ms`;
        await q(
          `UPDATE tasks SET status = $3, attempt = $4::integer, failed_at = $5, failures = failures + 1, last_failure = $6
           WHERE goal_id = $1 AND task_id = $2 AND status NOT IN ('COMPLETED', 'CANCELLED')
             AND ($4::integer > attempt OR ($4::integer = attempt AND task_status_rank(status) < 5))`,
          [e.goalId, e.taskId, failed ? "FAILED" : "TIMED_OUT", e.attempt, at, reason],
        );
        return;
      }
      case "TaskRetried": {
        const e = event.value;
        await q(
          `UPDATE tasks SET status = 'READY', attempt = $3::integer, worker_id = NULL, started_at = NULL
           WHERE goal_id = $1 AND task_id = $2 AND status NOT IN ('COMPLETED', 'CANCELLED') AND $3::integer > attempt`,
          [e.goalId, e.taskId, e.attempt],
        );
        return;
      }
      case "TaskCancelled": {
        const e = event.value;
        await q(
          `UPDATE tasks SET status = 'CANCELLED', cancelled_at = $3, last_failure = $4
           WHERE goal_id = $1 AND task_id = $2 AND status NOT IN ('COMPLETED', 'CANCELLED')`,
          [e.goalId, e.taskId, at, `${e.cause}: ${e.reason}`],
        );
        return;
      }
      case "EscalationRaised": {
        const e = event.value;
        note(e.severity, e.fromAgentId, e.goalId, `${e.kind} escalated ${e.fromTier} -> ${e.toTier}: ${e.reason}`);
        return;
      }
      case "AgentRegistered": {
        const e = event.value;
        await q(
          `INSERT INTO agents AS a (agent_id, name, tier, topology, domain, specialization, superior_id, capacity,
             executor, labels, heartbeat_interval_ms, status, registered_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'IDLE', $12)
           ON CONFLICT (agent_id) DO UPDATE SET name = excluded.name, tier = excluded.tier,
             topology = excluded.topology, domain = excluded.domain, specialization = excluded.specialization,
             superior_id = excluded.superior_id, capacity = excluded.capacity, executor = excluded.executor,
             labels = excluded.labels, heartbeat_interval_ms = excluded.heartbeat_interval_ms, status = 'IDLE',
             registered_at = excluded.registered_at, status_reason = NULL`,
          [
            e.agentId,
            e.name,
            e.tier,
            e.topology,
            e.domain,
            e.specialization,
            e.superiorId,
            e.capacity,
            e.executor,
            JSON.stringify(e.labels),
            e.heartbeatIntervalMs,
            at,
          ],
        );
        return;
      }
      case "AgentFailed": {
        const e = event.value;
        note("WARNING", e.agentId, null, `agent failed: ${e.reason} (${e.inFlightTasks.length} task(s) in flight)`);
        await q(
          `UPDATE agents SET status = 'FAILED', failed_at = $2, status_reason = $3
           WHERE agent_id = $1 AND status <> 'TERMINATED'`,
          [e.agentId, at, e.reason],
        );
        return;
      }
      case "AgentRecovered": {
        const e = event.value;
        note("INFO", e.agentId, null, `agent recovered after ${e.downtimeMs} ms`);
        await q(
          `UPDATE agents SET status = 'IDLE', recovered_at = $2, status_reason = NULL
           WHERE agent_id = $1 AND status <> 'TERMINATED'`,
          [e.agentId, at],
        );
        return;
      }
      case "AgentTerminated": {
        const e = event.value;
        note("INFO", e.agentId, null, `agent terminated (${e.cause}): ${e.reason}`);
        await q(`UPDATE agents SET status = 'TERMINATED', terminated_at = $2, status_reason = $3 WHERE agent_id = $1`, [
          e.agentId,
          at,
          `${e.cause}: ${e.reason}`,
        ]);
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
   * first final event wins. A goal known only from this event gets a minimal row.
   */
  private async goalStatus(
    client: pg.PoolClient,
    goalId: string,
    env: Envelope,
    status: string,
    extra: Record<string, string | number | Date | null>,
  ): Promise<void> {
    // 'UNKNOWN' ranks below every status, so the update below always applies to a new row.
    await client.query(
      `INSERT INTO goals (goal_id, tenant_id, status, version) VALUES ($1, $2, 'UNKNOWN', 0) ON CONFLICT DO NOTHING`,
      [goalId, env.tenantId],
    );
    const moves = "goal_status_rank($2::text) > goal_status_rank(status)";
    const names = Object.keys(extra);
    const sets = names.map((name, i) => `${name} = CASE WHEN ${moves} THEN $${i + 4} ELSE ${name} END`);
    await client.query(
      `UPDATE goals SET ${[`status = CASE WHEN ${moves} THEN $2 ELSE status END`, ...sets].join(", ")},
         version = GREATEST(version, $3::integer)
       WHERE goal_id = $1`,
      [goalId, status, env.aggregate.version, ...names.map((n) => extra[n])],
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
