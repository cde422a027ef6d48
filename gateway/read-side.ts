/**
 * Everything the gateway reads: the MongoDB state model (goals, tasks, agents, escalations,
 * policies) and the PostgreSQL analytics model (functions, views, the event table). Tenant
 * filtering happens here, in the queries, so no caller can forget it: every goal, task and
 * escalation read takes the reader's tenant. Agents and policies belong to a tenant or to the
 * platform (their `tenantId`, null for platform-wide); which of them a caller sees is decided in
 * visibility.ts. An agent's current tasks are filtered by tenant where they are shown.
 *
 * `loaders()` makes per-request DataLoaders, so a GraphQL query listing fifty goals with their tasks
 * makes one tasks query, not fifty.
 */
import DataLoader from "dataloader";
import type { Db, Filter } from "mongodb";
import type pg from "pg";
import type { AgentDoc, EscalationDoc, GoalDoc, PolicyDoc, TaskDoc } from "../projections/mongo/state-store.js";
import { stateCollections } from "../projections/mongo/state-store.js";
import { findEach } from "../projections/mongo/find-each.js";
import { DEFAULT_SCHEMA, schemaIdent } from "../projections/pg/migrate.js";
import { invalid } from "./errors.js";

/** One event of a goal as the analytics event table holds it. */
export interface TrailEvent {
  type: string;
  occurredAt: Date;
  actorId: string;
  actorTier: string;
  eventId: string;
  causationId: string | null;
  topic: string;
  partition: number;
  offset: string;
  payload: unknown;
}

export interface Page<T> {
  items: T[];
  /** Cursor of the last item, for `after`. */
  endCursor: string | null;
  hasNextPage: boolean;
  totalCount: number;
}

export interface GoalFilter {
  status?: string | null;
  kind?: string | null;
  topology?: string | null;
}

export interface AgentFilter {
  tier?: string | null;
  domain?: string | null;
  status?: string | null;
  topology?: string | null;
}

export const MAX_PAGE = 100;

/** How model usage totals are grouped (one analytics view each). */
export const MODEL_USAGE_GROUPINGS = ["MODEL", "GOAL", "TENANT"] as const;
export type ModelUsageGrouping = (typeof MODEL_USAGE_GROUPINGS)[number];

function encodeCursor(parts: (string | number)[]): string {
  return Buffer.from(JSON.stringify(parts)).toString("base64url");
}

/** The cursor of a goal in goals(): `after` it continues with the next goal of the same order. */
export function goalCursor(g: GoalDoc): string {
  return encodeCursor([(g.submittedAt ?? new Date(0)).toISOString(), g._id]);
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const parts = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(parts) && parts.length === 2 && parts.every((p) => typeof p === "string"))
      return parts as [string, string];
  } catch {
    /* reported below */
  }
  throw invalid("after", "is not a cursor this API returned; pass a pageInfo.endCursor");
}

function pageSize(first: number | null | undefined): number {
  const n = first ?? 20;
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) throw invalid("first", `must be an integer from 1 to ${MAX_PAGE}`);
  return n;
}

export class ReadSide {
  readonly names: ReturnType<typeof stateCollections>;
  readonly collectionPrefix: string;
  readonly analyticsSchema: string;
  private readonly schema: string;

  constructor(
    readonly db: Db,
    readonly pool: pg.Pool,
    options: { analyticsSchema?: string; collectionPrefix?: string } = {},
  ) {
    this.collectionPrefix = options.collectionPrefix ?? "";
    this.analyticsSchema = options.analyticsSchema ?? DEFAULT_SCHEMA;
    this.names = stateCollections(this.collectionPrefix);
    this.schema = schemaIdent(this.analyticsSchema);
  }

  private get goalsCol() {
    return this.db.collection<GoalDoc>(this.names.goals);
  }
  private get tasksCol() {
    return this.db.collection<TaskDoc>(this.names.tasks);
  }
  private get agentsCol() {
    return this.db.collection<AgentDoc>(this.names.agents);
  }

  // --- goals and tasks ----------------------------------------------------------------------

  async goal(tenantId: string, goalId: string): Promise<GoalDoc | null> {
    return this.goalsCol.findOne({ _id: goalId, tenantId });
  }

  /** Newest first (by submission time, then id), cursor-paginated. */
  async goals(
    tenantId: string,
    filter: GoalFilter,
    first?: number | null,
    after?: string | null,
  ): Promise<Page<GoalDoc>> {
    const size = pageSize(first);
    const base: Filter<GoalDoc> = { tenantId };
    if (filter.status) base.status = filter.status as GoalDoc["status"];
    if (filter.kind) base.kind = filter.kind as GoalDoc["kind"];
    if (filter.topology) base.topology = filter.topology as GoalDoc["topology"];
    let query: Filter<GoalDoc> = base;
    if (after) {
      const [at, id] = decodeCursor(after);
      const when = new Date(at);
      query = { ...base, $or: [{ submittedAt: { $lt: when } }, { submittedAt: when, _id: { $lt: id } }] };
    }
    const [docs, totalCount] = await Promise.all([
      this.goalsCol
        .find(query)
        .sort({ submittedAt: -1, _id: -1 })
        .limit(size + 1)
        .toArray(),
      this.goalsCol.countDocuments(base),
    ]);
    const items = docs.slice(0, size);
    const last = items.at(-1);
    return {
      items,
      endCursor: last ? goalCursor(last) : null,
      hasNextPage: docs.length > size,
      totalCount,
    };
  }

  /** Goals of the tenant not yet over (for the plan's maxConcurrentGoals, gateway/plans.ts). */
  async runningGoals(tenantId: string): Promise<number> {
    return this.goalsCol.countDocuments({
      tenantId,
      status: { $nin: ["COMPLETED", "FAILED", "STOPPED", "REJECTED"] },
    } as Filter<GoalDoc>);
  }

  async tasksOf(tenantId: string, goalId: string): Promise<TaskDoc[]> {
    return this.tasksCol.find({ goalId, tenantId }).sort({ _id: 1 }).toArray();
  }

  async task(tenantId: string, goalId: string, taskId: string): Promise<TaskDoc | null> {
    return this.tasksCol.findOne({ _id: `${goalId}/${taskId}`, tenantId });
  }

  // --- agents ---------------------------------------------------------------------------------

  async agent(agentId: string): Promise<AgentDoc | null> {
    return this.agentsCol.findOne({ _id: agentId, tier: { $ne: null } });
  }

  async agents(filter: AgentFilter): Promise<AgentDoc[]> {
    const query: Filter<AgentDoc> = { tier: { $ne: null } };
    if (filter.tier) query.tier = filter.tier as AgentDoc["tier"];
    if (filter.domain) query.domain = filter.domain;
    if (filter.status) query.status = filter.status;
    if (filter.topology) query.topology = filter.topology as AgentDoc["topology"];
    return this.agentsCol.find(query).sort({ _id: 1 }).toArray();
  }

  /** The agent and everything below it, following superiorId. */
  async subtree(agentId: string): Promise<Set<string>> {
    const all = await this.agentsCol.find({ tier: { $ne: null } }, { projection: { _id: 1, superiorId: 1 } }).toArray();
    const below = new Map<string, string[]>();
    for (const a of all) if (a.superiorId) below.set(a.superiorId, [...(below.get(a.superiorId) ?? []), a._id]);
    const out = new Set<string>();
    const walk = (id: string) => {
      if (out.has(id)) return;
      out.add(id);
      for (const c of below.get(id) ?? []) walk(c);
    };
    walk(agentId);
    return out;
  }

  // --- governance ------------------------------------------------------------------------------

  async escalations(
    tenantId: string,
    filter: { goalId?: string | null; status?: string | null },
  ): Promise<EscalationDoc[]> {
    // Escalations carry no tenant; they belong to goals, which do.
    const goalIds = filter.goalId
      ? (await this.goal(tenantId, filter.goalId))
        ? [filter.goalId]
        : []
      : (await this.goalsCol.find({ tenantId }, { projection: { _id: 1 } }).toArray()).map((g) => g._id);
    if (goalIds.length === 0) return [];
    const extra: Filter<EscalationDoc> = {};
    if (filter.status) extra.status = filter.status as EscalationDoc["status"];
    const found = await findEach(this.db.collection<EscalationDoc>(this.names.escalations), "goalId", goalIds, extra);
    const time = (e: EscalationDoc) => e.raisedAt?.getTime() ?? 0;
    return found.sort((a, b) => time(b) - time(a) || (a._id < b._id ? -1 : 1)).slice(0, 500);
  }

  async policies(filter: { category?: string | null; status?: string | null }): Promise<PolicyDoc[]> {
    const query: Filter<PolicyDoc> = {};
    if (filter.category) query.category = filter.category as PolicyDoc["category"];
    if (filter.status) query.status = filter.status as PolicyDoc["status"];
    return this.db.collection<PolicyDoc>(this.names.policies).find(query).sort({ _id: 1 }).toArray();
  }

  // --- health -----------------------------------------------------------------------------------

  async counts(tenantId: string | null): Promise<{
    agentsByStatus: Record<string, number>;
    tasksByStatus: Record<string, number>;
    goalsByStatus: Record<string, number>;
  }> {
    const group = async (col: string, match: Document) => {
      const rows = await this.db
        .collection(col)
        .aggregate<{ _id: string | null; n: number }>([
          { $match: match },
          { $group: { _id: "$status", n: { $sum: 1 } } },
        ])
        .toArray();
      return Object.fromEntries(rows.map((r) => [r._id ?? "UNKNOWN", r.n]));
    };
    const tenant = tenantId ? { tenantId } : {};
    const [agentsByStatus, tasksByStatus, goalsByStatus] = await Promise.all([
      group(this.names.agents, { tier: { $ne: null } }),
      group(this.names.tasks, tenant),
      group(this.names.goals, tenant),
    ]);
    return { agentsByStatus, tasksByStatus, goalsByStatus };
  }

  // --- analytics (PostgreSQL) -----------------------------------------------------------------

  async agentWorkload(agentId: string): Promise<Record<string, unknown> | null> {
    const { rows } = await this.pool.query(`SELECT * FROM ${this.schema}.get_agent_workload($1)`, [agentId]);
    return rows[0] ?? null;
  }

  async goalProgress(tenantId: string, goalId: string): Promise<Record<string, unknown> | null> {
    const { rows: owned } = await this.pool.query(
      `SELECT 1 FROM ${this.schema}.goals WHERE goal_id = $1 AND tenant_id = $2`,
      [goalId, tenantId],
    );
    if (owned.length === 0) return null;
    const { rows } = await this.pool.query(`SELECT * FROM ${this.schema}.get_goal_progress($1)`, [goalId]);
    return rows[0] ?? null;
  }

  async throughput(hours: number): Promise<Record<string, unknown>[]> {
    const { rows } = await this.pool.query(
      `SELECT * FROM ${this.schema}.throughput_per_hour WHERE hour_utc >= (now() AT TIME ZONE 'UTC') - make_interval(hours => $1) ORDER BY hour_utc`,
      [hours],
    );
    return rows;
  }

  async utilization(): Promise<Record<string, unknown>[]> {
    const { rows } = await this.pool.query(`SELECT * FROM ${this.schema}.agent_utilization ORDER BY agent_id`);
    return rows;
  }

  /** Rows of the view policy_denials or constitutional_violations of one tenant, newest first. */
  async governanceRecords(
    tenantId: string,
    view: "policy_denials" | "constitutional_violations",
    limit: number,
  ): Promise<Record<string, unknown>[]> {
    const { rows } = await this.pool.query(
      `SELECT * FROM ${this.schema}.${view} WHERE tenant_id = $1 ORDER BY occurred_at DESC, event_id LIMIT $2`,
      [tenantId, limit],
    );
    return rows;
  }

  /**
   * Model usage totals of one tenant, from the views model_usage_by_model, model_usage_by_goal and
   * model_usage_by_tenant (every view row belongs to one tenant, so the filter is in the query).
   * MODEL rows in model order, GOAL rows most recently used first, TENANT the tenant's one row.
   */
  async modelUsage(
    tenantId: string,
    by: ModelUsageGrouping,
    filter: { goalId?: string | null; model?: string | null; limit?: number } = {},
  ): Promise<Record<string, unknown>[]> {
    const view = { MODEL: "model_usage_by_model", GOAL: "model_usage_by_goal", TENANT: "model_usage_by_tenant" }[by];
    const params: unknown[] = [tenantId];
    const where = ["tenant_id = $1"];
    if (filter.goalId) {
      params.push(filter.goalId);
      where.push(`goal_id = $${params.length}`);
    }
    if (filter.model) {
      params.push(filter.model);
      where.push(by === "MODEL" ? `model = $${params.length}` : `$${params.length} = ANY(models)`);
    }
    params.push(filter.limit ?? 100);
    const order = { MODEL: "model", GOAL: "last_at DESC, goal_id", TENANT: "tenant_id" }[by];
    const { rows } = await this.pool.query(
      `SELECT * FROM ${this.schema}.${view} WHERE ${where.join(" AND ")} ORDER BY ${order} LIMIT $${params.length}`,
      params,
    );
    return rows;
  }

  /**
   * The goal's events in log order (correlationId is the goal id on every event of a goal): offset
   * order within each partition, and partitions merged by time. occurred_at alone is not log order
   * (events are appended in commit order, not in the order their producers stamped them), so each
   * event is placed at the latest occurred_at up to it in its partition.
   */
  async eventTrail(tenantId: string, goalId: string, limit = 1000): Promise<TrailEvent[]> {
    const { rows } = await this.pool.query(
      `SELECT topic, partition, "offset", event_id, type, occurred_at, actor_id, actor_tier, causation_id, payload
       FROM (
         SELECT *, max(occurred_at) OVER (PARTITION BY topic, partition ORDER BY "offset") AS log_time
         FROM ${this.schema}.events WHERE correlation_id = $1 AND tenant_id = $2
       ) e
       ORDER BY log_time, topic, partition, "offset" LIMIT $3`,
      [goalId, tenantId, limit],
    );
    return rows.map((r) => ({
      type: r.type,
      occurredAt: r.occurred_at,
      actorId: r.actor_id,
      actorTier: r.actor_tier,
      eventId: r.event_id,
      causationId: r.causation_id,
      topic: r.topic,
      partition: r.partition,
      offset: String(r.offset),
      payload: r.payload,
    }));
  }

  /**
   * The tasks of one tenant a governor (or sub-master) holds or held, by outcome, from the analytics
   * tasks table (GET /governors/{id}/performance): counts, mean duration of the completed, cost.
   */
  async governorTasks(tenantId: string, governorId: string): Promise<Record<string, unknown>> {
    const { rows } = await this.pool.query(
      `SELECT count(*)::integer AS total,
              count(*) FILTER (WHERE status = 'COMPLETED')::integer AS completed,
              count(*) FILTER (WHERE status IN ('FAILED', 'TIMED_OUT'))::integer AS failed,
              count(*) FILTER (WHERE status = 'CANCELLED')::integer AS cancelled,
              count(*) FILTER (WHERE status NOT IN ('COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED'))::integer AS open,
              round(avg(duration_ms) FILTER (WHERE status = 'COMPLETED'), 1) AS avg_duration_ms,
              coalesce(sum(cost), 0) AS cost,
              coalesce(sum(failures), 0)::integer AS failed_attempts
       FROM ${this.schema}.tasks WHERE tenant_id = $1 AND governor_id = $2`,
      [tenantId, governorId],
    );
    return rows[0]!;
  }

  /** One tenant's goal budgets (analytics goals) and what its tasks cost so far (analytics tasks). */
  async tenantBudget(tenantId: string): Promise<Record<string, unknown>> {
    const { rows } = await this.pool.query(
      `SELECT count(*)::integer AS goals,
              count(budget)::integer AS goals_with_budget,
              coalesce(sum(budget), 0) AS budget,
              coalesce(sum(budget) FILTER (WHERE ended_at IS NULL), 0) AS open_budget,
              (SELECT coalesce(sum(cost), 0) FROM ${this.schema}.tasks WHERE tenant_id = $1) AS cost
       FROM ${this.schema}.goals WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0]!;
  }

  // --- batching ---------------------------------------------------------------------------------

  /**
   * Per-request loaders; a loader never outlives its request, so it never serves stale data. Each
   * batch is one equality find per key (projections/mongo/find-each.ts: FerretDB scans for `$in`).
   */
  loaders(tenantId: string) {
    const byKey = <T extends { _id: string }>(docs: T[], key: (d: T) => unknown, ids: readonly string[]) =>
      ids.map((id) => docs.filter((d) => key(d) === id).sort((a, b) => (a._id < b._id ? -1 : 1)));
    return {
      tasksByGoal: new DataLoader<string, TaskDoc[]>(async (goalIds) =>
        byKey(await findEach(this.tasksCol, "goalId", goalIds, { tenantId }), (d) => d.goalId, goalIds),
      ),
      agent: new DataLoader<string, AgentDoc | null>(async (ids) =>
        byKey(await findEach(this.agentsCol, "_id", ids), (d) => d._id, ids).map((l) => l[0] ?? null),
      ),
      subordinates: new DataLoader<string, AgentDoc[]>(async (ids) =>
        byKey(await findEach(this.agentsCol, "superiorId", ids, { tier: { $ne: null } }), (d) => d.superiorId, ids),
      ),
      goal: new DataLoader<string, GoalDoc | null>(async (ids) =>
        byKey(await findEach(this.goalsCol, "_id", ids, { tenantId }), (d) => d._id, ids).map((l) => l[0] ?? null),
      ),
    };
  }
}

export type Loaders = ReturnType<ReadSide["loaders"]>;
type Document = Record<string, unknown>;
