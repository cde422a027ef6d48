/**
 * The PostgreSQL analytics projection on the real stack: the hierarchy runs goals on a unique topic
 * prefix, a ProjectionHost feeds an AnalyticsStore in a fresh schema, and PostgreSQL must hold
 * exactly what the log says, unchanged by redelivery, whole after a restart mid-way.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { Admin } from "kafkajs";
import pg from "pg";
import { ProjectionHost, type Checkpoints, type LoggedEvent, type ProjectionStore } from "../../projections/host.js";
import { AnalyticsStore } from "../../projections/pg/analytics-store.js";
import { checksumOf, loadMigrations, migrate } from "../../projections/pg/migrate.js";
import { submitGoal } from "../../producers/commands.js";
import { physicalTopic } from "../../schemas/catalog.js";
import type {
  Envelope,
  MessageMap,
  MessageTypeName,
  ModelUsage,
  Payload,
  TaskSpec,
} from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { deployment, task, TEN_TASK_DAG, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { urls } from "../support/infra.js";
import { LogWatcher } from "../support/watch.js";

const TOPICS = ["polity.goals.events", "polity.tasks.events", "polity.agents.events"];
const TABLES = [
  "events",
  "checkpoints",
  "goals",
  "tasks",
  "task_dependencies",
  "agents",
  "agent_performance",
  "system_events",
  "goal_snapshots",
  "model_calls",
];
const who = { tenantId: "acme", userId: "alice" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const freshSchema = () => `analytics_${randomUUID().slice(0, 8)}`;

/** Remembers every batch it applies, so a test can deliver them again. */
class RecordingStore implements ProjectionStore {
  readonly name: string;
  readonly batches: { topic: string; partition: number; events: LoggedEvent[]; next: bigint }[] = [];
  constructor(readonly inner: AnalyticsStore) {
    this.name = inner.name;
  }
  checkpoints(): Promise<Checkpoints> {
    return this.inner.checkpoints();
  }
  async apply(topic: string, partition: number, events: LoggedEvent[], next: bigint): Promise<void> {
    await this.inner.apply(topic, partition, events, next);
    this.batches.push({ topic, partition, events, next });
  }
}

describe("PostgreSQL analytics projection", () => {
  let d: TestDeployment;
  let pool: pg.Pool;
  let admin: Admin;
  let watch: LogWatcher;
  const schemas: string[] = [];
  const hosts: ProjectionHost[] = [];
  let live: RecordingStore;
  let goalA = "";

  async function newSchema(): Promise<string> {
    const schema = freshSchema();
    schemas.push(schema);
    await migrate(pool, schema);
    return schema;
  }

  async function startHost(store: ProjectionStore): Promise<ProjectionHost> {
    const host = new ProjectionHost({ kafka: d.kafka, codec: d.codec, store, topics: TOPICS, topicPrefix: d.prefix });
    hosts.push(host);
    await host.start();
    return host;
  }

  /**
   * Waits until the store's checkpoints reach the end of every partition. A partition may end in a
   * transaction marker the host never sees (kafkajs hides control-only batches), so one short of the
   * end counts when it stays so across two polls a second apart.
   */
  async function caughtUp(store: ProjectionStore, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let previous = "";
    let previousAt = 0;
    for (;;) {
      const checkpoints = await store.checkpoints();
      const behind: string[] = [];
      const exact: string[] = [];
      for (const topic of TOPICS) {
        for (const p of await admin.fetchTopicOffsets(physicalTopic(topic, d.prefix))) {
          const high = BigInt(p.high);
          const at = checkpoints.get(`${topic}:${p.partition}`) ?? 0n;
          exact.push(`${topic}:${p.partition}=${at}/${high}`);
          if (at < high - 1n) behind.push(`${topic}:${p.partition} at ${at} of ${high}`);
        }
      }
      const now = exact.join(",");
      if (behind.length === 0) {
        if (now === previous && Date.now() - previousAt >= 1_000) return;
        if (now !== previous) [previous, previousAt] = [now, Date.now()];
      } else {
        previous = "";
      }
      if (Date.now() > deadline)
        throw new Error(`projection did not catch up in ${timeoutMs} ms: ${behind.join("; ")}`);
      await sleep(250);
    }
  }

  async function eventCount(schema: string): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.events`);
    return rows[0]!.n;
  }

  /** Waits until the watcher has read as many events as the schema holds (both read the same topics). */
  async function watcherMatches(schema: string): Promise<void> {
    const n = await eventCount(schema);
    await watch.until(`the watcher to read the ${n} events PostgreSQL holds`, () => watch.seen.length >= n, 30_000);
  }

  /** Row count and an md5 of every row of every table: equal digests mean equal contents. */
  async function digest(schema: string, tables = TABLES): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const table of tables) {
      const { rows } = await pool.query<{ n: number; h: string }>(
        `SELECT count(*)::int AS n, coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS h FROM ${schema}.${table} t`,
      );
      out[table] = `${rows[0]!.n} rows ${rows[0]!.h}`;
    }
    return out;
  }

  function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
    return out;
  }

  before(async () => {
    pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 8 });
    d = await deployment(testTopology(), "pg");
    admin = d.kafka.admin();
    await admin.connect();
    watch = await LogWatcher.start(d.kafka, d.codec, d.prefix, TOPICS);
    live = new RecordingStore(new AnalyticsStore(pool, { schema: await newSchema() }));
    await startHost(live);
  });

  after(async () => {
    await Promise.all(hosts.map((h) => h.stop()));
    await watch?.stop();
    await admin?.disconnect();
    await d?.stop();
    for (const schema of schemas) await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool?.end();
  });

  it("applies versioned migrations once, and refuses an applied file that changed", async () => {
    const schema = freshSchema();
    schemas.push(schema);
    const files = await loadMigrations();
    assert.ok(files.length >= 4, `migration files found: ${files.map((f) => f.file).join(", ")}`);
    const first = await migrate(pool, schema);
    assert.deepEqual(
      first.applied,
      files.map((f) => f.file),
    );
    const again = await migrate(pool, schema);
    assert.deepEqual(again.applied, [], "a second run applies nothing");
    assert.deepEqual(
      again.alreadyApplied,
      files.map((f) => f.file),
    );
    const { rows } = await pool.query<{ version: number; checksum: string }>(
      `SELECT version, checksum FROM ${schema}.schema_migrations ORDER BY version`,
    );
    assert.deepEqual(
      rows,
      files.map((f) => ({ version: f.version, checksum: checksumOf(f.sql) })),
    );
    await pool.query(`UPDATE ${schema}.schema_migrations SET checksum = 'edited' WHERE version = 2`);
    await assert.rejects(migrate(pool, schema), /migration 002_dgm_schema\.sql was changed after it was applied/);
    await assert.rejects(migrate(pool, "Bad-Name"), /invalid analytics schema name "Bad-Name"/);
  });

  it("holds exactly what the log says after a ten-task goal (aamas)", async () => {
    const schema = live.inner.schema;
    const { goalId } = await submitGoal(d.writer, who, {
      title: "DAG into PostgreSQL",
      topology: "aamas",
      tasks: TEN_TASK_DAG,
    });
    goalA = goalId;
    const end = await watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    if (end.type !== "GoalCompleted") return;
    await caughtUp(live);
    await watcherMatches(schema);

    // Counts per type: the events table against what a plain consumer read from the same topics.
    const { rows: types } = await pool.query<{ type: string; n: number }>(
      `SELECT type, count(*)::int AS n FROM ${schema}.events GROUP BY type`,
    );
    const pgTypes = Object.fromEntries(types.map((r) => [r.type, r.n]));
    assert.deepEqual(
      pgTypes,
      countBy(watch.seen, (s) => s.event.type),
    );
    assert.ok((pgTypes["AgentRegistered"] ?? 0) > 0, "the agents topic was projected");

    const { rows: statuses } = await pool.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM ${schema}.tasks WHERE goal_id = $1 GROUP BY status`,
      [goalId],
    );
    assert.deepEqual(statuses, [{ status: "COMPLETED", n: 10 }]);

    // Who completed each task, and how many each agent completed, as the log says.
    const completions = watch.seen.flatMap((s) => (s.event.type === "TaskCompleted" ? [s.event.value] : []));
    const { rows: workers } = await pool.query<{ task_id: string; worker_id: string }>(
      `SELECT task_id, worker_id FROM ${schema}.tasks WHERE goal_id = $1 ORDER BY task_id`,
      [goalId],
    );
    assert.deepEqual(
      workers,
      completions
        .filter((c) => c.goalId === goalId)
        .map((c) => ({ task_id: c.taskId, worker_id: c.agentId }))
        .sort((a, b) => a.task_id.localeCompare(b.task_id)),
    );
    const { rows: perf } = await pool.query<{ agent_id: string; tasks_completed: number }>(
      `SELECT agent_id, tasks_completed FROM ${schema}.agent_performance WHERE tasks_completed > 0`,
    );
    assert.deepEqual(
      Object.fromEntries(perf.map((r) => [r.agent_id, r.tasks_completed])),
      countBy(completions, (c) => c.agentId),
    );

    const { rows: goal } = await pool.query(
      `SELECT status, kind, topology, tasks_completed, total_cost::text AS total_cost, title FROM ${schema}.goals WHERE goal_id = $1`,
      [goalId],
    );
    assert.deepEqual(goal, [
      {
        status: "COMPLETED",
        kind: "GOAL",
        topology: "aamas",
        tasks_completed: 10,
        total_cost: end.value.totalCost,
        title: "DAG into PostgreSQL",
      },
    ]);
    const { rows: deps } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${schema}.task_dependencies WHERE goal_id = $1`,
      [goalId],
    );
    assert.equal(
      deps[0]!.n,
      TEN_TASK_DAG.reduce((n, t) => n + t.dependsOn.length, 0),
    );

    const { rows: progress } = await pool.query(
      `SELECT status, total_tasks, completed_tasks, running_tasks, pending_tasks, percent_complete::text AS percent
       FROM ${schema}.get_goal_progress($1)`,
      [goalId],
    );
    assert.deepEqual(progress, [
      {
        status: "COMPLETED",
        total_tasks: 10,
        completed_tasks: 10,
        running_tasks: 0,
        pending_tasks: 0,
        percent: "100.00",
      },
    ]);

    // A worker that completed tasks: its workload agrees with the log and its registration.
    const busiest = Object.entries(countBy(completions, (c) => c.agentId)).sort((a, b) => b[1] - a[1])[0]!;
    const registered = watch.seen.find(
      (s) => s.event.type === "AgentRegistered" && s.event.value.agentId === busiest[0],
    );
    assert.ok(registered && registered.event.type === "AgentRegistered", `${busiest[0]} was registered`);
    const { rows: workload } = await pool.query(
      `SELECT tier, capacity, open_tasks, completed_tasks, failed_tasks, utilization::text AS utilization
       FROM ${schema}.get_agent_workload($1)`,
      [busiest[0]],
    );
    assert.deepEqual(workload, [
      {
        tier: "WORKER",
        capacity: registered.event.value.capacity,
        open_tasks: 0,
        completed_tasks: busiest[1],
        failed_tasks: 0,
        utilization: "0.0000",
      },
    ]);
  });

  it("changes nothing when every batch is delivered again", async () => {
    assert.ok(goalA, "runs after the ten-task goal");
    const schema = live.inner.schema;
    const before = await digest(schema);
    const batches = [...live.batches];
    assert.ok(
      batches.some((b) => b.events.length > 5),
      "recorded batches to replay",
    );
    for (const b of batches) await live.inner.apply(b.topic, b.partition, b.events, b.next);
    // Redelivered with other boundaries: the first half of the largest batch, with an older checkpoint.
    const largest = batches.reduce((a, b) => (b.events.length > a.events.length ? b : a));
    const half = largest.events.slice(0, Math.ceil(largest.events.length / 2));
    await live.inner.apply(largest.topic, largest.partition, half, half[half.length - 1]!.offset + 1n);
    assert.deepEqual(await digest(schema), before);
  });

  it("replaces a consumer that stands still behind the log, and loses nothing", async () => {
    const schema = await newSchema();
    const store = new AnalyticsStore(pool, { schema, name: "analytics-stalled" });
    const lines: string[] = [];
    const host = new ProjectionHost({
      kafka: d.kafka,
      codec: d.codec,
      store,
      topics: TOPICS,
      topicPrefix: d.prefix,
      stallMs: 2_000,
      log: (line) => lines.push(line),
    });
    hosts.push(host);
    await host.start();
    await caughtUp(store);
    // Stands still as kafkajs left a consumer after a broker restart: in the group, handed nothing.
    const consumer = (host as unknown as { consumer: import("kafkajs").Consumer }).consumer;
    consumer.pause(TOPICS.map((t) => ({ topic: physicalTopic(t, d.prefix) })));
    const { goalId } = await submitGoal(d.writer, who, {
      title: "Behind a still consumer",
      topology: "dgm",
      tasks: TEN_TASK_DAG,
    });
    assert.equal((await watch.final(goalId, 90_000)).type, "GoalCompleted");

    await caughtUp(store);
    assert.ok(
      lines.some((l) => /has read nothing for \d+ s while .* behind; starting a new one/.test(l)),
      `the host says why it replaced its consumer: ${JSON.stringify(lines)}`,
    );
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${schema}.tasks WHERE goal_id = $1 AND status = 'COMPLETED'`,
      [goalId],
    );
    assert.equal(rows[0]!.n, 10, "every task of the goal reached PostgreSQL once the new consumer read on");
    await watcherMatches(schema);
    assert.equal(await eventCount(schema), watch.seen.length, "every event once");
  });

  it("loses and doubles nothing when the projection is stopped mid-way and a new host resumes", async () => {
    const schema = await newSchema();
    // Its own projection name: under the live store's name the hosts would share a consumer group.
    const store = new AnalyticsStore(pool, { schema, name: "analytics-resume" });
    const first = await startHost(store);
    // Slow tasks, so the goal is still running when the first host stops.
    const slow: TaskSpec[] = TEN_TASK_DAG.map((t) => ({ ...t, estimatedEffortMs: 250 }));
    const { goalId } = await submitGoal(d.writer, who, { title: "Interrupted", topology: "dgm", tasks: slow });
    const completedIn = async () =>
      (
        await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM ${schema}.tasks WHERE goal_id = $1 AND status = 'COMPLETED'`,
          [goalId],
        )
      ).rows[0]!.n;
    const deadline = Date.now() + 60_000;
    while ((await completedIn()) === 0) {
      if (Date.now() > deadline) throw new Error(`no task of ${goalId} reached schema ${schema} within 60 s`);
      await sleep(20);
    }
    await first.stop();
    const atStop = await completedIn();
    assert.ok(atStop > 0 && atStop < 10, `stopped mid-way: ${atStop} of 10 tasks completed in PostgreSQL`);

    const end = await watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    assert.equal(await completedIn(), atStop, "nothing is applied while no host runs");
    await startHost(new AnalyticsStore(pool, { schema, name: "analytics-resume" }));
    await caughtUp(store);
    await caughtUp(live);

    // The resumed schema equals the one the live host built without interruption, table by table
    // (checkpoints aside: they name the projection, and where a batch ended may differ by a marker).
    const data = TABLES.filter((t) => t !== "checkpoints");
    assert.deepEqual(await digest(schema, data), await digest(live.inner.schema, data));
    await watcherMatches(schema);
    assert.equal(await eventCount(schema), watch.seen.length, "every event once");
    assert.equal(await completedIn(), 10);
  });

  it("answers the functions and views exactly on a hand-made data set", async () => {
    const schema = await newSchema();
    const store = new AnalyticsStore(pool, { schema });
    const log = new HandMadeLog();
    const t0 = Date.parse("2030-01-01T10:00:00Z");
    const at = (minutes: number) => new Date(t0 + minutes * 60_000);
    const spec = (id: string, dependsOn: string[] = []) =>
      task(id, "backend", "api", dependsOn, { phase: "DEVELOPMENT" });
    const agents = log.batch("polity.agents.events", [
      log.event("AgentRegistered", at(0), { type: "AGENT", id: "w1" }, agentPayload("w1", 4)),
      log.event("AgentRegistered", at(0), { type: "AGENT", id: "w2" }, agentPayload("w2", 2)),
    ]);
    const goal = { type: "GOAL" as const, id: "g1" };
    const goals = log.batch("polity.goals.events", [
      log.event("GoalSubmitted", at(0), goal, {
        goalId: "g1",
        commandId: randomUUID(),
        kind: "PROJECT",
        title: "Hand-made",
        description: "Hand-made",
        priority: 7,
        constraints: {},
        deadline: null,
        domainHints: ["backend"],
        topology: "dgm",
        tasks: null,
        budget: "100.0000",
      }),
      log.event("PhaseTransitioned", at(1), goal, {
        goalId: "g1",
        fromPhase: null,
        toPhase: "DESIGN",
        requestId: null,
        phaseDurationMs: null,
      }),
      log.event("PhaseTransitioned", at(31), goal, {
        goalId: "g1",
        fromPhase: "DESIGN",
        toPhase: "DEVELOPMENT",
        requestId: null,
        phaseDurationMs: 30 * 60_000,
      }),
      log.event("GoalSnapshotTaken", at(32), goal, {
        goalId: "g1",
        asOfVersion: 3,
        status: "RUNNING",
        currentPhase: "DEVELOPMENT",
        progress: 0.25,
        tasksTotal: 4,
        tasksCompleted: 1,
        tasksFailed: 0,
        tasksInFlight: 2,
        openEscalations: 0,
        costSoFar: "1.5000",
        state: '{"v":1}',
      }),
    ]);
    const tk = (id: string) => ({ type: "TASK" as const, id });
    const created = ["t1", "t2", "t3", "t4"].map((id, i) =>
      log.event("TaskCreated", at(2), tk(id), {
        goalId: "g1",
        task: spec(id, i === 3 ? ["t1", "t2"] : []),
        priority: 7,
        maxAttempts: 3,
        parentTaskId: null,
        deadline: null,
      }),
    );
    const assigned = (id: string, worker: string, attempt: number, minute: number) =>
      log.event("TaskAssigned", at(minute), tk(id), {
        goalId: "g1",
        taskId: id,
        assigneeId: worker,
        assigneeTier: "WORKER",
        assignedBy: "sub-master-backend",
        attempt,
        task: spec(id),
        priority: 7,
        timeoutMs: null,
      });
    const tasks = log.batch("polity.tasks.events", [
      ...created,
      assigned("t1", "w1", 1, 3),
      log.event("TaskStarted", at(4), tk("t1"), {
        goalId: "g1",
        taskId: "t1",
        agentId: "w1",
        attempt: 1,
        executor: "simulated",
      }),
      log.event("TaskCompleted", at(5), tk("t1"), {
        goalId: "g1",
        taskId: "t1",
        agentId: "w1",
        attempt: 1,
        result: "ok",
        durationMs: 100,
        outputs: {},
        cost: "1.5000",
        exitCode: null,
        usage: null,
      }),
      assigned("t2", "w2", 1, 3),
      log.event("TaskFailed", at(6), tk("t2"), {
        goalId: "g1",
        taskId: "t2",
        agentId: "w2",
        attempt: 1,
        reason: "boom",
        failureKind: "EXECUTION_ERROR",
        retryable: true,
        exitCode: null,
        output: null,
        durationMs: 50,
        usage: null,
      }),
      log.event("TaskRetried", at(7), tk("t2"), {
        goalId: "g1",
        taskId: "t2",
        attempt: 2,
        maxAttempts: 3,
        reason: "boom",
        backoffMs: 0,
        excludeAgentIds: ["w2"],
      }),
      assigned("t2", "w1", 2, 8),
      assigned("t3", "w2", 1, 8),
      log.event("TaskAccepted", at(9), tk("t3"), {
        goalId: "g1",
        taskId: "t3",
        agentId: "w2",
        tier: "WORKER",
        attempt: 1,
      }),
    ]);
    const governance = log.batch("polity.governance.events", [
      log.event("PolicyEvaluated", at(10), goal, policyEvaluated("DENY")),
      log.event("PolicyEvaluated", at(10), goal, policyEvaluated("ALLOW")),
      log.event("ResourceDenied", at(11), goal, {
        requestId: "r1",
        goalId: "g1",
        taskId: "t2",
        requesterId: "w1",
        kind: "BUDGET",
        requestedAmount: "500.0000",
        unit: "USD",
        availableAmount: null,
        reasons: ["over budget"],
        consultedPolicies: [{ policyId: "budget", version: 1 }],
      }),
      log.event("ConstitutionalViolationDetected", at(12), goal, {
        violationId: "v1",
        goalId: "g1",
        taskId: null,
        agentId: "w2",
        policyId: "constitution",
        policyVersion: 2,
        principle: "no secrets in outputs",
        description: "printed a token",
        severity: "CRITICAL",
        enforcement: "BLOCKED",
      }),
    ]);
    for (const b of [agents, goals, tasks, governance]) await store.apply(b.topic, 0, b.events, b.next);

    const one = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows;
    assert.deepEqual(
      await one(
        `SELECT status, current_phase, total_tasks, completed_tasks, failed_tasks, running_tasks, pending_tasks,
           percent_complete::text AS percent, task_cost::text AS cost FROM ${schema}.get_goal_progress('g1')`,
      ),
      [
        {
          status: "SUBMITTED",
          current_phase: "DEVELOPMENT",
          total_tasks: 4,
          completed_tasks: 1,
          failed_tasks: 0,
          running_tasks: 2,
          pending_tasks: 1,
          percent: "25.00",
          cost: "1.5000",
        },
      ],
    );
    const workload = (agent: string) =>
      one(
        `SELECT capacity, open_tasks, completed_tasks, failed_tasks, utilization::text AS utilization,
           avg_duration_ms::text AS avg FROM ${schema}.get_agent_workload($1)`,
        [agent],
      );
    assert.deepEqual(await workload("w1"), [
      { capacity: 4, open_tasks: 1, completed_tasks: 1, failed_tasks: 0, utilization: "0.2500", avg: "100.0" },
    ]);
    assert.deepEqual(await workload("w2"), [
      { capacity: 2, open_tasks: 1, completed_tasks: 0, failed_tasks: 1, utilization: "0.5000", avg: null },
    ]);
    assert.deepEqual(
      await one(`SELECT agent_id, open_tasks, success_rate::text AS rate FROM ${schema}.agent_utilization ORDER BY 1`),
      [
        { agent_id: "w1", open_tasks: 1, rate: "1.0000" },
        { agent_id: "w2", open_tasks: 1, rate: "0.0000" },
      ],
    );
    assert.deepEqual(await one(`SELECT hour_utc::text AS hour, tasks_completed FROM ${schema}.throughput_per_hour`), [
      { hour: "2030-01-01 10:00:00", tasks_completed: 1 },
    ]);
    assert.deepEqual(await one(`SELECT goal_id, phase, duration_ms::int AS ms FROM ${schema}.phase_durations`), [
      { goal_id: "g1", phase: "DESIGN", ms: 1_800_000 },
    ]);
    assert.deepEqual(
      await one(
        `SELECT tasks_created, escalations_raised, escalations_per_task::text AS rate FROM ${schema}.escalation_rates`,
      ),
      [{ tasks_created: 4, escalations_raised: 0, rate: "0.0000" }],
    );
    assert.deepEqual(
      await one(`SELECT type, policy_id, subject_id FROM ${schema}.policy_denials ORDER BY occurred_at`),
      [
        { type: "PolicyEvaluated", policy_id: "tenant-budget", subject_id: "g1" },
        { type: "ResourceDenied", policy_id: "budget", subject_id: "r1" },
      ],
    );
    assert.deepEqual(
      await one(`SELECT violation_id, agent_id, severity, enforcement FROM ${schema}.constitutional_violations`),
      [{ violation_id: "v1", agent_id: "w2", severity: "CRITICAL", enforcement: "BLOCKED" }],
    );
    assert.deepEqual(await one(`SELECT type, severity FROM ${schema}.system_events`), [
      { type: "ConstitutionalViolationDetected", severity: "CRITICAL" },
    ]);
    assert.deepEqual(
      await one(`SELECT as_of_version, cost_so_far::text AS cost, state FROM ${schema}.goal_snapshots`),
      [{ as_of_version: 3, cost: "1.5000", state: { v: 1 } }],
    );
    const { rows: payload } = await pool.query<{ payload: Record<string, unknown> }>(
      `SELECT payload FROM ${schema}.events WHERE type = 'GoalSubmitted'`,
    );
    assert.equal(payload[0]!.payload["budget"], "100.0000", "decimals stay strings");
    assert.equal("envelope" in payload[0]!.payload, false, "the envelope is spread over columns");

    // The same events again, in other batches: nothing changes.
    const before = await digest(schema);
    await store.apply(tasks.topic, 0, tasks.events.slice(3), tasks.next);
    await store.apply(goals.topic, 0, goals.events.slice(0, 2), goals.events[2]!.offset);
    assert.deepEqual(await digest(schema), before);
    assert.deepEqual(
      await store.checkpoints(),
      new Map([
        ["polity.agents.events:0", agents.next],
        ["polity.goals.events:0", goals.next],
        ["polity.tasks.events:0", tasks.next],
        ["polity.governance.events:0", governance.next],
      ]),
    );
  });

  it("records every model call of plans and task attempts, totals them per model, goal and tenant, and backfills them on migration", async () => {
    const schema = await newSchema();
    const store = new AnalyticsStore(pool, { schema });
    const log = new HandMadeLog();
    const t0 = Date.parse("2030-02-01T09:00:00Z");
    const at = (seconds: number) => new Date(t0 + seconds * 1000);
    const openai = (tokensIn: number, tokensOut: number, calls: number, latencyMs: number): ModelUsage => ({
      model: "openai:gpt-4o-mini",
      tokensIn,
      tokensOut,
      calls,
      latencyMs,
      promptDigest: `p${tokensIn}`.padEnd(64, "0"),
      answerDigest: `a${tokensOut}`.padEnd(64, "0"),
    });
    const tiny: ModelUsage = {
      model: "embedded:tiny.gguf",
      tokensIn: 300,
      tokensOut: 50,
      calls: 1,
      latencyMs: 2000,
      promptDigest: null,
      answerDigest: null,
    };
    const goal = (id: string) => ({ type: "GOAL" as const, id });
    const submitted = (goalId: string): Payload<"GoalSubmitted"> => ({
      goalId,
      commandId: randomUUID(),
      kind: "GOAL",
      title: `Planned ${goalId}`,
      description: `Planned ${goalId}`,
      priority: 5,
      constraints: {},
      deadline: null,
      domainHints: ["backend"],
      topology: "aamas",
      tasks: null,
      budget: null,
    });
    const requested = (goalId: string, attempt: number, feedback: string[] = []): Payload<"PlanRequested"> => ({
      goalId,
      requestId: `${goalId}:goal:${attempt}`,
      phase: null,
      attempt,
      maxAttempts: 2,
      planner: "model",
      model: "fast",
      domains: ["backend"],
      specializations: { backend: ["api"] },
      feedback,
    });
    const proposed = (
      goalId: string,
      attempt: number,
      accepted: boolean,
      usage: ModelUsage | null,
      more: Partial<Payload<"PlanProposed">> = {},
    ): Payload<"PlanProposed"> => ({
      goalId,
      requestId: `${goalId}:goal:${attempt}`,
      phase: null,
      attempt,
      planner: "model/v1",
      usage,
      tasks: accepted ? [task("a", "backend", "api"), task("b", "backend", "api", ["a"])] : [],
      error: null,
      accepted,
      problems: accepted ? [] : ['task "x": domain "ops" is not one of the goal\'s domains (backend)'],
      ...more,
    });
    const m1 = { correlationId: "m1" };
    const m3 = { correlationId: "m3" };
    const globex = { tenantId: "globex", correlationId: "m2" };
    const goals = log.batch("polity.goals.events", [
      log.event("GoalSubmitted", at(0), goal("m1"), submitted("m1"), m1),
      log.event("GoalValidated", at(1), goal("m1"), { goalId: "m1", consultedPolicies: [], warnings: [] }, m1),
      log.event("PlanRequested", at(2), goal("m1"), requested("m1", 1), m1),
      log.event("PlanProposed", at(3), goal("m1"), proposed("m1", 1, false, openai(1000, 200, 1, 800)), m1),
      log.event("PlanRequested", at(4), goal("m1"), requested("m1", 2, ["task x: unknown domain"]), m1),
      log.event("PlanProposed", at(5), goal("m1"), proposed("m1", 2, true, openai(1100, 250, 2, 900)), m1),
      log.event(
        "GoalDecomposed",
        at(5),
        goal("m1"),
        { goalId: "m1", planner: "model/v1", phase: null, tasks: [task("a", "backend", "api")] },
        m1,
      ),
      log.event("GoalSubmitted", at(6), goal("m2"), submitted("m2"), globex),
      log.event("PlanProposed", at(7), goal("m2"), proposed("m2", 1, true, openai(50, 10, 1, 100)), globex),
      log.event("GoalSubmitted", at(8), goal("m3"), submitted("m3"), m3),
      log.event("GoalValidated", at(8), goal("m3"), { goalId: "m3", consultedPolicies: [], warnings: [] }, m3),
      log.event("PlanRequested", at(9), goal("m3"), requested("m3", 1), m3),
      log.event(
        "PlanProposed",
        at(10),
        goal("m3"),
        proposed("m3", 1, false, null, { error: "the model call timed out", problems: [] }),
        m3,
      ),
      log.event(
        "GoalRejected",
        at(11),
        goal("m3"),
        {
          goalId: "m3",
          commandId: randomUUID(),
          code: "PLANNING_FAILED",
          reasons: ["plan attempt 1: the model call timed out", "no valid plan after 1 attempt(s)"],
          violatedPolicies: [],
        },
        m3,
      ),
    ]);
    const tk = (id: string) => ({ type: "TASK" as const, id });
    const tasks = log.batch("polity.tasks.events", [
      ...["a", "b"].map((id) =>
        log.event(
          "TaskCreated",
          at(6),
          tk(id),
          {
            goalId: "m1",
            task: task(id, "backend", "api"),
            priority: 5,
            maxAttempts: 3,
            parentTaskId: null,
            deadline: null,
          },
          m1,
        ),
      ),
      log.event(
        "TaskFailed",
        at(12),
        tk("a"),
        {
          goalId: "m1",
          taskId: "a",
          agentId: "w-tiny",
          attempt: 1,
          reason: "the answer was cut off at 50 tokens",
          failureKind: "INVALID_OUTPUT",
          retryable: true,
          exitCode: null,
          output: null,
          durationMs: 2100,
          usage: tiny,
        },
        m1,
      ),
      log.event(
        "TaskCompleted",
        at(14),
        tk("a"),
        {
          goalId: "m1",
          taskId: "a",
          agentId: "w-openai",
          attempt: 2,
          result: "done",
          durationMs: 700,
          outputs: {},
          cost: "0.0123",
          exitCode: null,
          usage: openai(400, 120, 1, 600),
        },
        m1,
      ),
      log.event(
        "TaskCompleted",
        at(15),
        tk("b"),
        {
          goalId: "m1",
          taskId: "b",
          agentId: "w-sim",
          attempt: 1,
          result: "done",
          durationMs: 20,
          outputs: {},
          cost: "0.5000",
          exitCode: null,
          usage: null,
        },
        m1,
      ),
    ]);
    for (const b of [goals, tasks]) await store.apply(b.topic, 0, b.events, b.next);

    const rows = async (sql: string) => (await pool.query(sql)).rows;
    assert.deepEqual(
      await rows(
        `SELECT goal_id, task_id, kind, event_type, attempt, agent_id, outcome, model, tokens_in::int AS tin,
           tokens_out::int AS tout, calls, latency_ms::int AS ms, cost::text AS cost, answer_digest IS NOT NULL AS digest
         FROM ${schema}.model_calls ORDER BY topic, "offset"`,
      ),
      [
        {
          goal_id: "m1",
          task_id: null,
          kind: "plan",
          event_type: "PlanProposed",
          attempt: 1,
          agent_id: null,
          outcome: "REFUSED",
          model: "openai:gpt-4o-mini",
          tin: 1000,
          tout: 200,
          calls: 1,
          ms: 800,
          cost: null,
          digest: true,
        },
        {
          goal_id: "m1",
          task_id: null,
          kind: "plan",
          event_type: "PlanProposed",
          attempt: 2,
          agent_id: null,
          outcome: "ACCEPTED",
          model: "openai:gpt-4o-mini",
          tin: 1100,
          tout: 250,
          calls: 2,
          ms: 900,
          cost: null,
          digest: true,
        },
        {
          goal_id: "m2",
          task_id: null,
          kind: "plan",
          event_type: "PlanProposed",
          attempt: 1,
          agent_id: null,
          outcome: "ACCEPTED",
          model: "openai:gpt-4o-mini",
          tin: 50,
          tout: 10,
          calls: 1,
          ms: 100,
          cost: null,
          digest: true,
        },
        {
          goal_id: "m1",
          task_id: "a",
          kind: "task",
          event_type: "TaskFailed",
          attempt: 1,
          agent_id: "w-tiny",
          outcome: "FAILED",
          model: "embedded:tiny.gguf",
          tin: 300,
          tout: 50,
          calls: 1,
          ms: 2000,
          cost: null,
          digest: false,
        },
        {
          goal_id: "m1",
          task_id: "a",
          kind: "task",
          event_type: "TaskCompleted",
          attempt: 2,
          agent_id: "w-openai",
          outcome: "COMPLETED",
          model: "openai:gpt-4o-mini",
          tin: 400,
          tout: 120,
          calls: 1,
          ms: 600,
          cost: "0.0123",
          digest: true,
        },
      ],
      "one row per event with a usage: the refused plan and the failed attempt too; none for m3's planner error or b's simulated attempt",
    );
    assert.deepEqual(
      await rows(
        `SELECT tenant_id, model, records, calls::int, plan_calls::int, task_calls::int, tokens_in::int, tokens_out::int,
           tokens_total::int, latency_ms::int, avg_latency_ms::text AS avg, cost::text AS cost, goals
         FROM ${schema}.model_usage_by_model ORDER BY tenant_id, model`,
      ),
      [
        {
          tenant_id: "acme",
          model: "embedded:tiny.gguf",
          records: 1,
          calls: 1,
          plan_calls: 0,
          task_calls: 1,
          tokens_in: 300,
          tokens_out: 50,
          tokens_total: 350,
          latency_ms: 2000,
          avg: "2000.0",
          cost: "0.0000",
          goals: 1,
        },
        {
          tenant_id: "acme",
          model: "openai:gpt-4o-mini",
          records: 3,
          calls: 4,
          plan_calls: 3,
          task_calls: 1,
          tokens_in: 2500,
          tokens_out: 570,
          tokens_total: 3070,
          latency_ms: 2300,
          avg: "575.0",
          cost: "0.0123",
          goals: 1,
        },
        {
          tenant_id: "globex",
          model: "openai:gpt-4o-mini",
          records: 1,
          calls: 1,
          plan_calls: 1,
          task_calls: 0,
          tokens_in: 50,
          tokens_out: 10,
          tokens_total: 60,
          latency_ms: 100,
          avg: "100.0",
          cost: "0.0000",
          goals: 1,
        },
      ],
    );
    assert.deepEqual(
      await rows(
        `SELECT tenant_id, goal_id, models, calls::int, tokens_in::int, tokens_out::int, cost::text AS cost, tasks
         FROM ${schema}.model_usage_by_goal ORDER BY goal_id`,
      ),
      [
        {
          tenant_id: "acme",
          goal_id: "m1",
          models: ["embedded:tiny.gguf", "openai:gpt-4o-mini"],
          calls: 5,
          tokens_in: 2800,
          tokens_out: 620,
          cost: "0.0123",
          tasks: 1,
        },
        {
          tenant_id: "globex",
          goal_id: "m2",
          models: ["openai:gpt-4o-mini"],
          calls: 1,
          tokens_in: 50,
          tokens_out: 10,
          cost: "0.0000",
          tasks: 0,
        },
      ],
    );
    assert.deepEqual(
      await rows(
        `SELECT tenant_id, models, calls::int, tokens_total::int, cost::text AS cost, goals, first_at, last_at
         FROM ${schema}.model_usage_by_tenant ORDER BY tenant_id`,
      ),
      [
        {
          tenant_id: "acme",
          models: ["embedded:tiny.gguf", "openai:gpt-4o-mini"],
          calls: 5,
          tokens_total: 3420,
          cost: "0.0123",
          goals: 1,
          first_at: at(3),
          last_at: at(14),
        },
        {
          tenant_id: "globex",
          models: ["openai:gpt-4o-mini"],
          calls: 1,
          tokens_total: 60,
          cost: "0.0000",
          goals: 1,
          first_at: at(7),
          last_at: at(7),
        },
      ],
    );
    // The plan events are in the event log; the goals show their planner, and a goal given up for want
    // of a plan after it was accepted is REJECTED with every reason.
    assert.deepEqual(
      await rows(
        `SELECT type, count(*)::int AS n FROM ${schema}.events WHERE type LIKE 'Plan%' GROUP BY type ORDER BY type`,
      ),
      [
        { type: "PlanProposed", n: 4 },
        { type: "PlanRequested", n: 3 },
      ],
    );
    assert.deepEqual(await rows(`SELECT goal_id, status, planner, end_reason FROM ${schema}.goals ORDER BY goal_id`), [
      { goal_id: "m1", status: "RUNNING", planner: "model/v1", end_reason: null },
      { goal_id: "m2", status: "SUBMITTED", planner: null, end_reason: null },
      {
        goal_id: "m3",
        status: "REJECTED",
        planner: null,
        end_reason: "PLANNING_FAILED: plan attempt 1: the model call timed out; no valid plan after 1 attempt(s)",
      },
    ]);

    // Delivered again, whole and split: nothing changes.
    const before = await digest(schema);
    await store.apply(goals.topic, 0, goals.events.slice(2), goals.next);
    await store.apply(tasks.topic, 0, tasks.events, tasks.next);
    assert.deepEqual(await digest(schema), before);

    // Migration 005 on a schema projected before it existed fills model_calls and goals.planner from
    // the event log exactly as the projection does: undone here, then applied again.
    await pool.query(
      `DROP VIEW ${schema}.model_usage_by_model, ${schema}.model_usage_by_goal, ${schema}.model_usage_by_tenant;
       DROP TABLE ${schema}.model_calls;
       ALTER TABLE ${schema}.goals DROP COLUMN planner;
       DELETE FROM ${schema}.schema_migrations WHERE version = 5`,
    );
    assert.deepEqual((await migrate(pool, schema)).applied, ["005_model_usage.sql"]);
    assert.deepEqual(await digest(schema), before);
  });

  it("answers the DGM's own columns of get_agent_workload and get_goal_progress, and has the DGM composite indexes", async () => {
    const schema = await newSchema();
    const store = new AnalyticsStore(pool, { schema });
    const log = new HandMadeLog();
    const t0 = Date.parse("2030-05-01T10:00:00Z");
    const at = (seconds: number) => new Date(t0 + seconds * 1000);
    const goal = { type: "GOAL" as const, id: "g9" };
    const on = { correlationId: "g9" };
    const tk = (id: string) => ({ type: "TASK" as const, id });
    const spec = (id: string) => task(id, "backend", "api");
    const agents = log.batch("polity.agents.events", [
      log.event("AgentRegistered", at(0), { type: "AGENT", id: "w9" }, agentPayload("w9", 4), on),
      log.event(
        "AgentRegistered",
        at(0),
        { type: "AGENT", id: "gov9" },
        { ...agentPayload("gov9", 10), tier: "GOVERNOR", superiorId: null },
        on,
      ),
    ]);
    const goals = log.batch("polity.goals.events", [
      log.event(
        "GoalSubmitted",
        at(0),
        goal,
        {
          goalId: "g9",
          commandId: randomUUID(),
          kind: "GOAL",
          title: "DGM columns",
          description: "DGM columns",
          priority: 5,
          constraints: {},
          deadline: null,
          domainHints: ["backend"],
          topology: "aamas",
          tasks: null,
          budget: null,
        },
        on,
      ),
    ]);
    const assigned = (id: string, assigneeId: string, tier: "GOVERNOR" | "WORKER", attempt = 1) =>
      log.event(
        "TaskAssigned",
        at(2),
        tk(id),
        {
          goalId: "g9",
          taskId: id,
          assigneeId,
          assigneeTier: tier,
          assignedBy: "test",
          attempt,
          task: spec(id),
          priority: 5,
          timeoutMs: null,
        },
        on,
      );
    const tasks = log.batch("polity.tasks.events", [
      ...["t1", "t2", "t3", "t4", "t5"].map((id) =>
        log.event(
          "TaskCreated",
          at(1),
          tk(id),
          { goalId: "g9", task: spec(id), priority: 5, maxAttempts: 3, parentTaskId: null, deadline: null },
          on,
        ),
      ),
      ...["t1", "t2", "t3", "t4"].map((id) => assigned(id, "gov9", "GOVERNOR")),
      assigned("t1", "w9", "WORKER"),
      log.event(
        "TaskCompleted",
        at(3),
        tk("t1"),
        {
          goalId: "g9",
          taskId: "t1",
          agentId: "w9",
          attempt: 1,
          result: "ok",
          durationMs: 100,
          outputs: {},
          cost: "0.1000",
          exitCode: null,
          usage: null,
        },
        on,
      ),
      assigned("t2", "w9", "WORKER"),
      log.event(
        "TaskFailed",
        at(4),
        tk("t2"),
        {
          goalId: "g9",
          taskId: "t2",
          agentId: "w9",
          attempt: 1,
          reason: "boom",
          failureKind: "EXECUTION_ERROR",
          retryable: true,
          exitCode: null,
          output: null,
          durationMs: 40,
          usage: null,
        },
        on,
      ),
      log.event(
        "TaskRetried",
        at(5),
        tk("t2"),
        { goalId: "g9", taskId: "t2", attempt: 2, maxAttempts: 3, reason: "boom", backoffMs: 0, excludeAgentIds: [] },
        on,
      ),
      assigned("t3", "w9", "WORKER"),
      log.event(
        "TaskStarted",
        at(6),
        tk("t3"),
        { goalId: "g9", taskId: "t3", agentId: "w9", attempt: 1, executor: "simulated" },
        on,
      ),
      assigned("t4", "w9", "WORKER"),
    ]);
    for (const b of [agents, goals, tasks]) await store.apply(b.topic, 0, b.events, b.next);

    const one = async (sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows;
    const workload = (agent: string) =>
      one(
        `SELECT open_tasks, pending_tasks, active_tasks, avg_duration_ms::text AS avg_ms,
           avg_execution_time::text AS avg_time, success_rate::text AS success_rate
         FROM ${schema}.get_agent_workload($1)`,
        [agent],
      );
    // The worker holds t3 (running) and t4 (assigned); t1 completed in 100 ms, t2 failed once.
    assert.deepEqual(await workload("w9"), [
      {
        open_tasks: 2,
        pending_tasks: 1,
        active_tasks: 1,
        avg_ms: "100.0",
        avg_time: "00:00:00.1",
        success_rate: "0.5000",
      },
    ]);
    // The governor holds every task it was given until it completes: t2 (waiting for its retry), t3, t4.
    assert.deepEqual(await workload("gov9"), [
      { open_tasks: 3, pending_tasks: 2, active_tasks: 1, avg_ms: null, avg_time: null, success_rate: null },
    ]);
    assert.deepEqual(await workload("nobody"), [
      { open_tasks: 0, pending_tasks: 0, active_tasks: 0, avg_ms: null, avg_time: null, success_rate: null },
    ]);
    // The columns 003 gave the functions are all still there, in their order, the DGM's after them.
    const columns = async (fn: string) =>
      (
        await one(
          `SELECT unnest(proargnames) AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = $1 AND p.proname = $2`,
          [schema, fn],
        )
      ).map((r) => r.name as string);
    assert.deepEqual(await columns("get_agent_workload"), [
      "agent_id",
      "tier",
      "status",
      "capacity",
      "open_tasks",
      "completed_tasks",
      "failed_tasks",
      "utilization",
      "avg_duration_ms",
      "last_task_at",
      "pending_tasks",
      "active_tasks",
      "avg_execution_time",
      "success_rate",
    ]);
    assert.deepEqual(await columns("get_goal_progress"), [
      "goal_id",
      "status",
      "current_phase",
      "total_tasks",
      "completed_tasks",
      "failed_tasks",
      "cancelled_tasks",
      "running_tasks",
      "pending_tasks",
      "percent_complete",
      "task_cost",
      "submitted_at",
      "ended_at",
      "progress_percentage",
    ]);
    assert.deepEqual(
      await one(
        `SELECT total_tasks, completed_tasks, failed_tasks, progress_percentage::text AS progress,
           percent_complete::text AS percent FROM ${schema}.get_goal_progress('g9')`,
      ),
      [{ total_tasks: 5, completed_tasks: 1, failed_tasks: 0, progress: "20.00", percent: "20.00" }],
    );

    // The DGM composite indexes, on this schema's column names.
    const { rows: indexes } = await pool.query<{ indexname: string; indexdef: string }>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = ANY($2) ORDER BY indexname`,
      [schema, ["tasks_status_priority_idx", "tasks_domain_status_idx", "agent_performance_agent_recent_idx"]],
    );
    assert.deepEqual(
      indexes.map((i) => [i.indexname, i.indexdef.replace(/^.* USING btree /, "")]),
      [
        ["agent_performance_agent_recent_idx", "(agent_id, last_task_at DESC)"],
        ["tasks_domain_status_idx", "(domain, status)"],
        ["tasks_status_priority_idx", "(status, priority DESC)"],
      ],
    );
  });
});

function agentPayload(agentId: string, capacity: number): Payload<"AgentRegistered"> {
  return {
    agentId,
    name: agentId,
    tier: "WORKER",
    topology: "dgm",
    domain: "backend",
    specialization: "api",
    superiorId: "sub-master-backend",
    capacity,
    executor: "simulated",
    labels: {},
    heartbeatIntervalMs: 1_000,
    commandId: null,
  };
}

function policyEvaluated(decision: "ALLOW" | "DENY"): Payload<"PolicyEvaluated"> {
  return {
    goalId: "g1",
    subject: { type: "SubmitGoal", id: "g1", agentId: null },
    category: "RESOURCE_ALLOCATION",
    policyId: decision === "DENY" ? "tenant-budget" : "tenant-quota",
    policyVersion: 1,
    decision,
    consultedPolicies: [],
    reasons: [decision === "DENY" ? "budget exceeded" : "within quota"],
  };
}

/** Builds events as a projection sees them, numbering offsets per topic from zero. */
class HandMadeLog {
  private readonly offsets = new Map<string, bigint>();
  private version = 0;

  event<T extends MessageTypeName>(
    type: T,
    occurredAt: Date,
    aggregate: { type: Envelope["aggregate"]["type"]; id: string },
    payload: Payload<T>,
    on: { tenantId?: string; correlationId?: string } = {},
  ): PolityEvent {
    const envelope: Envelope = {
      eventId: randomUUID(),
      type,
      occurredAt,
      tenantId: on.tenantId ?? "acme",
      correlationId: on.correlationId ?? "g1",
      causationId: null,
      actor: { id: "test", tier: "SYSTEM" },
      aggregate: { ...aggregate, version: ++this.version },
    };
    return { type, value: { envelope, ...payload } as MessageMap[T] } as PolityEvent;
  }

  batch(topic: string, events: PolityEvent[]): { topic: string; events: LoggedEvent[]; next: bigint } {
    let offset = this.offsets.get(topic) ?? 0n;
    const logged = events.map((event) => ({
      event,
      topic,
      partition: 0,
      offset: offset++,
      timestamp: (event.value as { envelope: Envelope }).envelope.occurredAt,
    }));
    this.offsets.set(topic, offset);
    return { topic, events: logged, next: offset };
  }
}
