/**
 * The GraphQL gateway end to end on the real stack (Kafka, registry, FerretDB, PostgreSQL): goals
 * submitted over HTTP and followed live over SSE and WebSocket (on one and on two gateway
 * instances), the read side after completion (state model, analytics, audit trail), the error
 * contract (validation, limits, authentication, roles, tenants: refused writes write nothing),
 * cursor pagination, and the planning and model-usage fields (plans, tokens, modelUsage analytics,
 * in GraphQL and REST) over read models filled from a hand-made log of model-planned goals.
 *
 * Goal subscriptions replay what the gateway still holds of the goal and wait a few seconds for a
 * goal not visible yet, so both orders work: subscribe to a chosen goalId and then submit it (the
 * SSE and two-instance tests: every event arrives live), or submit and then subscribe (the
 * WebSocket test: the events written in between are replayed, nothing is missed).
 */
import { getIntrospectionQuery, type IntrospectionObjectType, type IntrospectionQuery } from "graphql";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createClient, type Client } from "graphql-ws";
import type { Admin } from "kafkajs";
import WebSocket from "ws";
import { endsWithFinal, type Source } from "../../gateway/graphql/subscriptions.js";
import type { LiveEvent } from "../../gateway/live.js";
import { ReadSide } from "../../gateway/read-side.js";
import type { LoggedEvent } from "../../projections/host.js";
import { StateStore } from "../../projections/mongo/state-store.js";
import { AnalyticsStore } from "../../projections/pg/analytics-store.js";
import { migrate } from "../../projections/pg/migrate.js";
import { physicalTopic } from "../../schemas/catalog.js";
import type {
  Envelope,
  MessageMap,
  MessageTypeName,
  ModelUsage,
  Payload as EventPayload,
  TaskSpec,
} from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { gatewayRig, type GatewayRig, type GraphQLBody } from "../support/gateway.js";
import { TEN_TASK_DAG } from "../support/hierarchy.js";

const DAG = TEN_TASK_DAG.map((t) => ({ ...t, inputs: [] }));

const SUBMIT = `mutation ($input: GoalInput!, $wait: Boolean) {
  submitGoal(input: $input, waitForProjection: $wait) { commandId accepted aggregateId projected outcome }
}`;
const GOAL_PROGRESS = `subscription ($goalId: ID!) {
  goalProgress(goalId: $goalId) { type goalId taskId topic offset replayed loggedAt }
}`;

interface Live {
  type: string;
  goalId: string | null;
  taskId: string | null;
  topic: string;
  offset: string;
  replayed: boolean;
}
interface Payload {
  data?: { goalProgress?: Live } | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something other than undefined. */
async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, ms: number, what: string) {
  const deadline = Date.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last !== undefined) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(150);
  }
}

/**
 * A subscription over SSE (POST with accept: text/event-stream), read with fetch streaming until
 * `event: complete`; every `event: next` data line is one payload.
 */
async function sse(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  token: string,
  { ms = 60_000, stopAfter = Infinity }: { ms?: number; stopAfter?: number } = {},
): Promise<{ status: number; contentType: string | null; payloads: Payload[]; completed: boolean }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`SSE subscription still open after ${ms} ms`)), ms);
  try {
    const res = await fetch(`${url}/graphql`, {
      method: "POST",
      signal: controller.signal,
      headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const payloads: Payload[] = [];
    let completed = false;
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    read: for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "";
        const data: string[] = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (event === "next") payloads.push(JSON.parse(data.join("\n")) as Payload);
        if (event === "complete") {
          completed = true;
          break read;
        }
        if (payloads.length >= stopAfter) break read; // the client goes away
      }
    }
    await reader.cancel().catch(() => undefined);
    controller.abort();
    return { status: res.status, contentType: res.headers.get("content-type"), payloads, completed };
  } finally {
    clearTimeout(timer);
  }
}

/** One subscription over graphql-ws: every `next` payload, then completion or the error it ended with. */
function wsSubscribe(
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  ms = 60_000,
): Promise<{ payloads: Payload[]; error?: unknown }> {
  return new Promise((resolve, reject) => {
    const payloads: Payload[] = [];
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`WebSocket subscription still open after ${ms} ms (${payloads.length} payloads)`));
    }, ms);
    const unsubscribe = client.subscribe<Payload["data"]>(
      { query, variables },
      {
        next: (p) => payloads.push(p as Payload),
        error: (error) => {
          clearTimeout(timer);
          resolve({ payloads, error });
        },
        complete: () => {
          clearTimeout(timer);
          resolve({ payloads });
        },
      },
    );
  });
}

function wsClient(rig: { url: string }, token: string | null): Client {
  return createClient({
    url: `${rig.url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
  });
}

/** The goalProgress events of a finished stream, checked for errors and shape. */
function eventsOf(payloads: Payload[], goalId: string): Live[] {
  return payloads.map((p) => {
    assert.equal(p.errors, undefined, JSON.stringify(p.errors));
    const e = p.data?.goalProgress;
    assert.ok(e, `payload without goalProgress: ${JSON.stringify(p)}`);
    assert.equal(e.goalId, goalId);
    return e;
  });
}

/** Every event of a goal, as a goal stream must deliver them: once each, in log order, complete. */
function assertWholeGoal(events: Live[], tasks: number): void {
  const types = events.map((e) => `${e.topic.split(".")[1]}:${e.type}`).join(", ");
  // Log order holds per topic (partition); across topics Kafka gives none.
  assert.equal(events.find((e) => e.topic === "polity.goals.events")?.type, "GoalSubmitted", types);
  assert.equal(events.at(-1)?.type, "GoalCompleted", types);
  assert.equal(events.filter((e) => e.type === "GoalCompleted").length, 1);
  assert.equal(new Set(events.filter((e) => e.type === "TaskCompleted").map((e) => e.taskId)).size, tasks);
  const keys = events.map((e) => `${e.topic}@${e.offset}`);
  assert.equal(new Set(keys).size, keys.length, "an event was delivered twice");
  assert.ok(events.every((e) => e.topic !== "polity.agents.events"));
  for (const topic of new Set(events.map((e) => e.topic))) {
    const offsets = events.filter((e) => e.topic === topic).map((e) => BigInt(e.offset));
    assert.deepEqual(
      offsets,
      [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
      `${topic} out of log order`,
    );
  }
}

interface TrailEvent {
  type: string;
  topic: string;
  partition: number;
  offset: string;
  eventId: string;
  causationId: string | null;
}
const TRAIL_FIELDS = "type topic partition offset eventId causationId occurredAt";
const STREAMED_TOPICS = ["polity.goals.events", "polity.tasks.events"];
const key = (e: { topic: string; offset: string }) => `${e.topic}@${e.offset}`;

/**
 * The events a goal stream must deliver, from the goal's trail: the goal's events up to its final
 * event and its task events up to the one that caused it. (Events after those, such as a late
 * report or the goal's snapshot, may or may not make it before the stream closes.)
 */
function essential(trail: TrailEvent[]): Set<string> {
  const final = trail.find((e) => e.type === "GoalCompleted");
  assert.ok(final, "no GoalCompleted in the trail");
  const cause = trail.find((e) => e.eventId === final.causationId);
  assert.ok(cause, `the cause of GoalCompleted (${final.causationId}) is not in the trail`);
  const bound = new Map([[final.topic, BigInt(final.offset)]]);
  if (!bound.has(cause.topic)) bound.set(cause.topic, BigInt(cause.offset));
  return new Set(trail.filter((e) => bound.has(e.topic) && BigInt(e.offset) <= bound.get(e.topic)!).map((e) => key(e)));
}

/** A stream against the goal's trail: nothing invented, nothing essential missing, no gaps. */
function assertStreamMatchesTrail(events: Live[], trail: TrailEvent[]): void {
  const logged = trail.filter((e) => STREAMED_TOPICS.includes(e.topic));
  const loggedKeys = new Set(logged.map((e) => key(e)));
  const streamed = new Set(events.filter((e) => STREAMED_TOPICS.includes(e.topic)).map((e) => key(e)));
  assert.deepEqual(
    [...streamed].filter((k) => !loggedKeys.has(k)),
    [],
    "streamed events that are not the goal's",
  );
  assert.deepEqual(
    [...essential(trail)].filter((k) => !streamed.has(k)),
    [],
    "events of the goal before its end that the stream missed",
  );
  for (const topic of STREAMED_TOPICS) {
    const offsets = events.filter((e) => e.topic === topic).map((e) => BigInt(e.offset));
    const last = offsets.reduce((m, o) => (o > m ? o : m), -1n);
    const gaps = logged.filter((e) => e.topic === topic && BigInt(e.offset) <= last && !streamed.has(key(e)));
    assert.deepEqual(
      gaps.map((e) => `${key(e)} ${e.type}`),
      [],
      `gaps in ${topic}`,
    );
  }
}

/** The goal's audit trail, once the analytics model holds every event the stream delivered. */
async function trailOf(rig: GatewayRig, token: string, goalId: string, events: Live[]): Promise<TrailEvent[]> {
  const wanted = events.filter((e) => STREAMED_TOPICS.includes(e.topic)).map((e) => key(e));
  return eventually(
    async () => {
      const q = await rig.graphql(
        `query ($id: ID!) { auditTrail(goalId: $id) { ${TRAIL_FIELDS} } }`,
        { id: goalId },
        token,
      );
      assert.equal(q.status, 200, JSON.stringify(q.body));
      const trail = q.body.data!.auditTrail as TrailEvent[];
      const have = new Set(trail.map((e) => key(e)));
      return trail.some((e) => e.type === "GoalCompleted") && wanted.every((k) => have.has(k)) ? trail : undefined;
    },
    30_000,
    `the audit trail of ${goalId} to hold every streamed event`,
  );
}

function errorOf(body: GraphQLBody): { message: string; code?: string; field?: string } {
  const e = body.errors?.[0];
  assert.ok(e, `expected an error, got ${JSON.stringify(body)}`);
  return { message: e.message, code: e.extensions?.code, field: e.extensions?.field };
}

describe("gateway GraphQL end to end", () => {
  let rig: GatewayRig;
  let second: { url: string; gateway: GatewayRig["gateway"] };
  let admin: Admin;
  let operator: string;
  /** The goal of the first test, completed; later tests read it. */
  let goal1: string;

  /** Sum of the high watermarks of a catalog topic of this rig. */
  const highWater = async (topic: string) =>
    (await admin.fetchTopicOffsets(physicalTopic(topic, rig.d.prefix))).reduce((n, o) => n + Number(o.high), 0);

  before(async () => {
    rig = await gatewayRig("gw-graphql");
    second = await rig.another();
    admin = rig.d.kafka.admin();
    await admin.connect();
    operator = await rig.token("operator");
  });
  after(async () => {
    await admin?.disconnect().catch(() => undefined);
    await rig?.stop();
  });

  it("follows a submitted goal over SSE to GoalCompleted, then reads it back from both read models", async () => {
    const goalId = `gw-sse-${randomUUID().slice(0, 8)}`;
    const base = rig.gateway.live.subscriberCount;
    // Subscribe first, to the goalId about to be submitted, so every event arrives live.
    const streamed = sse(rig.url, GOAL_PROGRESS, { goalId }, operator);
    await eventually(
      () => (rig.gateway.live.subscriberCount > base ? true : undefined),
      10_000,
      "the SSE subscription",
    );
    const submitted = await rig.graphql(SUBMIT, { input: { goalId, title: "sse goal", tasks: DAG } }, operator);
    assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
    const receipt = submitted.body.data!.submitGoal as { accepted: boolean; aggregateId: string };
    assert.equal(receipt.accepted, true);
    assert.equal(receipt.aggregateId, goalId);

    const r = await streamed;
    assert.equal(r.status, 200);
    assert.match(r.contentType ?? "", /text\/event-stream/);
    assert.equal(r.completed, true, "the stream did not complete after GoalCompleted");
    const events = eventsOf(r.payloads, goalId);
    assertWholeGoal(events, 10);
    assert.ok(
      events.every((e) => !e.replayed),
      "subscribed before the submission, every event is live",
    );
    // The finished stream let go of its subscriber.
    await eventually(
      () => (rig.gateway.live.subscriberCount === base ? true : undefined),
      5_000,
      "the subscriber to be released",
    );
    goal1 = goalId;

    // The state model: completed, ten tasks, each with the worker that ran it.
    type GoalView = {
      status: string;
      tasksTotal: number;
      tasks: { taskId: string; status: string; assignees: { worker: { id: string; tier: string } | null } }[];
    };
    const goal = await eventually(
      async () => {
        const q = await rig.graphql(
          `query ($id: ID!) { goal(id: $id) { status tasksTotal tasks { taskId status assignees { worker { id tier } } } } }`,
          { id: goalId },
          operator,
        );
        assert.equal(q.status, 200, JSON.stringify(q.body));
        const g = q.body.data?.goal as GoalView | null;
        // The goal's summary (tasksTotal) is written just after its tasks: wait for both.
        return g?.status === "COMPLETED" &&
          g.tasksTotal === 10 &&
          g.tasks.length === 10 &&
          g.tasks.every((t) => t.status === "COMPLETED" && t.assignees.worker)
          ? g
          : undefined;
      },
      30_000,
      "the goal to show COMPLETED with ten completed, assigned tasks",
    );
    assert.deepEqual(goal.tasks.map((t) => t.taskId).sort(), DAG.map((t) => t.id).sort());
    for (const t of goal.tasks) assert.equal(t.assignees.worker!.tier, "WORKER", t.taskId);

    // The worker of a task shows the completion in its performance.
    const workerId = goal.tasks[0]!.assignees.worker!.id;
    const perf = await eventually(
      async () => {
        const q = await rig.graphql(
          `query ($id: ID!) { agent(id: $id) { id tier performance { tasksCompleted tasksFailed successRate } } }`,
          { id: workerId },
          operator,
        );
        const a = q.body.data?.agent as { tier: string; performance: { tasksCompleted: number } } | null;
        return a && a.performance.tasksCompleted > 0 ? a : undefined;
      },
      30_000,
      `agent ${workerId} to show a completed task`,
    );
    assert.equal(perf.tier, "WORKER");

    // Analytics (PostgreSQL): goalProgress and goal { analytics } say what the function says.
    const sql = await eventually(
      async () => {
        const { rows } = await rig.pool.query<Record<string, unknown>>(
          `SELECT * FROM "${rig.schema}".get_goal_progress($1)`,
          [goalId],
        );
        const row = rows[0];
        return row && row.status === "COMPLETED" && row.completed_tasks === 10 ? row : undefined;
      },
      30_000,
      "the analytics model to show the goal completed",
    );
    const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : v);
    const expected = {
      status: sql.status,
      currentPhase: sql.current_phase,
      totalTasks: sql.total_tasks,
      completedTasks: sql.completed_tasks,
      failedTasks: sql.failed_tasks,
      cancelledTasks: sql.cancelled_tasks,
      runningTasks: sql.running_tasks,
      pendingTasks: sql.pending_tasks,
      percentComplete: Number(sql.percent_complete),
      taskCost: sql.task_cost === null ? null : String(sql.task_cost),
      submittedAt: iso(sql.submitted_at),
      endedAt: iso(sql.ended_at),
    };
    const progressFields =
      "status currentPhase totalTasks completedTasks failedTasks cancelledTasks runningTasks pendingTasks percentComplete taskCost submittedAt endedAt";
    const a = await rig.graphql(
      `query ($id: ID!) { goalProgress(goalId: $id) { ${progressFields} } goal(id: $id) { analytics { ${progressFields} } } }`,
      { id: goalId },
      operator,
    );
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.deepEqual(a.body.data!.goalProgress, expected);
    assert.deepEqual((a.body.data!.goal as { analytics: unknown }).analytics, expected);
    assert.equal(expected.totalTasks, 10);

    // The audit trail, replayed from Kafka: the goal's messages in log order, from the SubmitGoal
    // command and GoalSubmitted to GoalCompleted (and what followed it), the same events the
    // subscription delivered.
    const trail = await trailOf(rig, operator, goalId, events);
    const types = trail.map((e) => e.type);
    assert.deepEqual(types.slice(0, 2), ["SubmitGoal", "GoalSubmitted"], types.join(", "));
    assert.ok(
      types.indexOf("GoalCompleted") > types.lastIndexOf("TaskCompleted"),
      `GoalCompleted before a TaskCompleted: ${types.join(", ")}`,
    );
    for (const topic of new Set(trail.map((e) => e.topic))) {
      const offsets = trail.filter((e) => e.topic === topic).map((e) => Number(e.offset));
      assert.deepEqual(
        offsets,
        [...offsets].sort((x, y) => x - y),
        `${topic} out of log order in the trail`,
      );
    }
    const nested = await rig.graphql(
      `query ($id: ID!) { goal(id: $id) { auditTrail { ${TRAIL_FIELDS} } } }`,
      { id: goalId },
      operator,
    );
    assert.deepEqual((nested.body.data!.goal as { auditTrail: TrailEvent[] }).auditTrail, trail);
    assertStreamMatchesTrail(events, trail);
  });

  it("delivers the same stream over WebSocket (graphql-ws), replaying what came before the subscription", async () => {
    const submitted = await rig.graphql(SUBMIT, { input: { title: "ws goal", tasks: DAG }, wait: true }, operator);
    assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
    const goalId = (submitted.body.data!.submitGoal as { aggregateId: string }).aggregateId;

    const base = rig.gateway.live.subscriberCount;
    const client = wsClient(rig, operator);
    const anonymous = wsClient(rig, "not-a-jwt");
    try {
      const [r, missing, rejected] = await Promise.all([
        wsSubscribe(client, GOAL_PROGRESS, { goalId }),
        wsSubscribe(client, GOAL_PROGRESS, { goalId: `no-such-goal-${randomUUID().slice(0, 8)}` }),
        wsSubscribe(anonymous, GOAL_PROGRESS, { goalId }),
      ]);
      assert.equal(r.error, undefined, String(r.error));
      const events = eventsOf(r.payloads, goalId);
      // Submitted before the subscription: the early events came from the replay, the rest live;
      // together they are the whole goal, each event once.
      assertWholeGoal(events, 10);

      // An unknown goal: NOT_FOUND, as the operation's result.
      assert.equal(missing.error, undefined, String(missing.error));
      assert.equal(missing.payloads.length, 1);
      assert.equal(missing.payloads[0]!.errors?.[0]?.extensions?.code, "NOT_FOUND");

      // A rejected token fails the operation with UNAUTHENTICATED, not the connection with 4500.
      assert.ok(Array.isArray(rejected.error), `expected GraphQL errors, got ${String(rejected.error)}`);
      assert.equal((rejected.error as { extensions?: { code?: string } }[])[0]?.extensions?.code, "UNAUTHENTICATED");

      assertStreamMatchesTrail(events, await trailOf(rig, operator, goalId, events));
      assert.ok(
        events.some((e) => e.replayed),
        "subscribed after the submission was projected, the first events come from the replay",
      );
    } finally {
      await client.dispose();
      await anonymous.dispose();
    }
    await eventually(
      () => (rig.gateway.live.subscriberCount === base ? true : undefined),
      5_000,
      "the WebSocket subscribers to be released",
    );

    // A stream that does not end by itself (taskEvents), left by its SSE client: released too.
    const left = await sse(
      rig.url,
      `subscription ($goalId: ID!) { taskEvents(goalId: $goalId) { type topic offset replayed } }`,
      { goalId },
      operator,
      { stopAfter: 3 },
    );
    assert.equal(left.status, 200);
    assert.equal(left.completed, false);
    assert.equal(left.payloads.length, 3);
    await eventually(
      () => (rig.gateway.live.subscriberCount === base ? true : undefined),
      5_000,
      "the abandoned SSE subscriber to be released",
    );
  });

  it("delivers every event of a goal on each of two gateway instances", async () => {
    const goalId = `gw-two-${randomUUID().slice(0, 8)}`;
    const base = [rig.gateway.live.subscriberCount, second.gateway.live.subscriberCount];
    const streams = [
      sse(rig.url, GOAL_PROGRESS, { goalId }, operator),
      sse(second.url, GOAL_PROGRESS, { goalId }, operator),
    ];
    await eventually(
      () =>
        rig.gateway.live.subscriberCount > base[0]! && second.gateway.live.subscriberCount > base[1]!
          ? true
          : undefined,
      10_000,
      "both subscriptions",
    );
    const submitted = await rig.graphql(SUBMIT, { input: { goalId, title: "two gateways", tasks: DAG } }, operator);
    assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
    const [one, two] = await Promise.all(streams);
    assert.equal(one!.completed, true);
    assert.equal(two!.completed, true);
    const a = eventsOf(one!.payloads, goalId);
    const b = eventsOf(two!.payloads, goalId);
    assertWholeGoal(a, 10);
    assertWholeGoal(b, 10);
    assert.ok([...a, ...b].every((e) => !e.replayed));
    // Both delivered the goal's whole log up to its end (and nothing else).
    const trail = await trailOf(rig, operator, goalId, [...a, ...b]);
    assertStreamMatchesTrail(a, trail);
    assertStreamMatchesTrail(b, trail);
    const must = essential(trail);
    const count = (xs: Live[]) => xs.filter((e) => must.has(key(e))).length;
    assert.equal(count(a), must.size);
    assert.equal(count(b), must.size);
  });

  it("refuses bad requests with the documented codes and statuses, writing nothing", async () => {
    const commandsBefore = await highWater("polity.goals.commands");
    // The earlier goals may still append a late report or two: start from a quiet topic.
    let taskEventsBefore = await highWater("polity.tasks.events");
    for (let quietFor = 0; quietFor < 1_000; quietFor += 250) {
      await sleep(250);
      const now = await highWater("polity.tasks.events");
      if (now !== taskEventsBefore) [taskEventsBefore, quietFor] = [now, -250];
    }
    // Started first: an unknown goal is waited for a few seconds before NOT_FOUND.
    const missing = sse(rig.url, GOAL_PROGRESS, { goalId: `no-such-goal-${randomUUID().slice(0, 8)}` }, operator);

    // GraphQL validation: a required input field left out.
    const noTitle = await rig.graphql(`mutation { submitGoal(input: { priority: 3 }) { commandId } }`, {}, operator);
    assert.equal(noTitle.status, 400, JSON.stringify(noTitle.body));
    assert.match(errorOf(noTitle.body).message, /title/);

    // Input rules: priority is 1 to 10.
    const priority = await rig.graphql(SUBMIT, { input: { title: "too urgent", priority: 11, tasks: DAG } }, operator);
    assert.equal(priority.status, 400, JSON.stringify(priority.body));
    assert.equal(errorOf(priority.body).code, "INVALID_INPUT");
    assert.equal(errorOf(priority.body).field, "priority");

    // An unknown goal is null.
    const unknown = await rig.graphql(`query { goal(id: "no-such-goal") { id status } }`, {}, operator);
    assert.equal(unknown.status, 200, JSON.stringify(unknown.body));
    assert.equal(unknown.body.data!.goal, null);

    // Limits: depth, and cost (a connection's `first` counts for its edges).
    const deep = `query { agents { ${"subordinates { ".repeat(10)}id${" }".repeat(10)} } }`;
    const tooDeep = await rig.graphql(deep, {}, operator);
    assert.equal(tooDeep.status, 400, JSON.stringify(tooDeep.body));
    assert.equal(errorOf(tooDeep.body).code, "INVALID_INPUT");
    assert.match(errorOf(tooDeep.body).message, /levels deep/);
    // ...but an introspection-only query (GraphiQL's, deeper than that) is exempt.
    const introspection = await rig.graphql(getIntrospectionQuery(), {}, operator);
    assert.equal(introspection.status, 200, JSON.stringify(introspection.body).slice(0, 500));
    const intro = introspection.body.data as unknown as IntrospectionQuery;
    const typeOf = (type: string, field: string) =>
      (intro.__schema.types.find((t) => t.name === type) as IntrospectionObjectType | undefined)?.fields.find(
        (f) => f.name === field,
      )?.type;
    // A heartbeat's load is a fraction (tasks held / capacity).
    assert.deepEqual(typeOf("Agent", "load"), { kind: "SCALAR", name: "Float", ofType: null });
    // Dead letters are of every tenant: not for viewers; operators read them from the topic.
    const viewerLetters = await rig.graphql(`query { deadLetters { reason } }`, {}, await rig.token("viewer"));
    assert.equal(errorOf(viewerLetters.body).code, "FORBIDDEN", JSON.stringify(viewerLetters.body));
    const letters = await rig.graphql(
      `query { deadLetters(limit: 5) { originalTopic originalPartition originalOffset consumerGroup errorKind reason failedAt } }`,
      {},
      operator,
    );
    assert.equal(letters.body.errors, undefined, JSON.stringify(letters.body.errors));
    assert.ok(Array.isArray(letters.body.data!.deadLetters));
    // Governance views of the caller's tenant.
    const governance = await rig.graphql(
      `query { policyDenials(limit: 5) { occurredAt type policyId reasons eventId } constitutionalViolations(limit: 5) { occurredAt principle severity eventId } }`,
      {},
      operator,
    );
    assert.equal(governance.body.errors, undefined, JSON.stringify(governance.body.errors));
    const costly = await rig.graphql(
      `query { agents { subordinates { subordinates { subordinates { id name tier } } } } }`,
      {},
      operator,
    );
    assert.equal(costly.status, 400, JSON.stringify(costly.body));
    assert.match(errorOf(costly.body).message, /query cost \d+ is above the limit/);
    const page = (first: number) =>
      `query { goals(first: ${first}) { edges { node { id tasks { taskId title status domain priority assignees { governor { id } mayor { id } worker { id } } } } } } }`;
    const bigPage = await rig.graphql(page(100), {}, operator);
    assert.equal(bigPage.status, 400, JSON.stringify(bigPage.body));
    assert.match(errorOf(bigPage.body).message, /query cost/);
    const smallPage = await rig.graphql(page(10), {}, operator);
    assert.equal(smallPage.status, 200, JSON.stringify(smallPage.body));

    // Authentication and roles.
    const anonymous = await rig.graphql(SUBMIT, { input: { title: "anonymous", tasks: DAG } }, null);
    assert.equal(anonymous.status, 401, JSON.stringify(anonymous.body));
    assert.equal(errorOf(anonymous.body).code, "UNAUTHENTICATED");
    const viewer = await rig.graphql(SUBMIT, { input: { title: "viewer", tasks: DAG } }, await rig.token("viewer"));
    assert.equal(viewer.status, 403, JSON.stringify(viewer.body));
    assert.equal(errorOf(viewer.body).code, "FORBIDDEN");

    // Tenants: acme's goal does not exist for globex.
    const globex = await rig.token("operator", "globex");
    const foreign = await rig.graphql(
      `query ($id: ID!) { goal(id: $id) { id } goalProgress(goalId: $id) { status } auditTrail(goalId: $id) { type } }`,
      { id: goal1 },
      globex,
    );
    assert.equal(foreign.status, 200, JSON.stringify(foreign.body));
    assert.deepEqual(foreign.body.data, { goal: null, goalProgress: null, auditTrail: [] });

    // An agent token: may not submit, and reports only on the tasks it holds.
    const tasks = (
      await rig.graphql(
        `query ($id: ID!) { goal(id: $id) { tasks { taskId attempt assignees { worker { id } } } } }`,
        { id: goal1 },
        operator,
      )
    ).body.data!.goal as { tasks: { taskId: string; attempt: number; assignees: { worker: { id: string } } }[] };
    const task = tasks.tasks.find((t) => t.taskId === "be-api")!;
    const other = "aamas-worker-frontend-css-1";
    assert.notEqual(task.assignees.worker.id, other);
    const agent = await rig.token("agent", "acme", { subject: other, agentId: other });
    const agentSubmit = await rig.graphql(SUBMIT, { input: { title: "by an agent", tasks: DAG } }, agent);
    assert.equal(agentSubmit.status, 403, JSON.stringify(agentSubmit.body));
    assert.equal(errorOf(agentSubmit.body).code, "FORBIDDEN");
    const report = await rig.graphql(
      `mutation ($input: TaskResultInput!) { reportTaskResult(input: $input) { commandId } }`,
      {
        input: {
          goalId: goal1,
          taskId: task.taskId,
          attempt: task.attempt,
          status: "COMPLETED",
          result: "not mine to report",
        },
      },
      agent,
    );
    assert.equal(report.status, 403, JSON.stringify(report.body));
    assert.equal(errorOf(report.body).code, "FORBIDDEN");

    // An agent token of another topology's worker holds nothing of the goal: it sees neither the
    // goal nor its analytics.
    const dgm = (await rig.graphql(`query { agents(filter: { topology: dgm, tier: WORKER }) { id } }`, {}, operator))
      .body.data!.agents as { id: string }[];
    assert.ok(dgm.length > 0);
    const outsider = await rig.token("agent", "acme", { subject: dgm[0]!.id, agentId: dgm[0]!.id });
    const outside = await rig.graphql(
      `query ($id: ID!) { goal(id: $id) { id } goalProgress(goalId: $id) { status } auditTrail(goalId: $id) { type } }`,
      { id: goal1 },
      outsider,
    );
    assert.equal(outside.status, 200, JSON.stringify(outside.body));
    assert.deepEqual(outside.body.data, { goal: null, goalProgress: null, auditTrail: [] });
    const insider = await rig.token("agent", "acme", {
      subject: task.assignees.worker.id,
      agentId: task.assignees.worker.id,
    });
    const inside = await rig.graphql(
      `query ($id: ID!) { goal(id: $id) { id } goalProgress(goalId: $id) { status } }`,
      { id: goal1 },
      insider,
    );
    assert.deepEqual(inside.body.data, { goal: { id: goal1 }, goalProgress: { status: "COMPLETED" } });

    // Subscribing to an unknown goal: NOT_FOUND.
    const m = await missing;
    assert.equal(m.completed, true);
    assert.equal(m.status, 404);
    assert.equal(m.payloads[0]?.errors?.[0]?.extensions?.code, "NOT_FOUND", JSON.stringify(m.payloads));

    // Nothing refused reached the log.
    assert.equal(await highWater("polity.goals.commands"), commandsBefore, "a refused submission wrote a command");
    assert.equal(await highWater("polity.tasks.events"), taskEventsBefore, "a refused report wrote a task event");
  });

  it("pages through a tenant's goals with cursors", async () => {
    const tenant = `page-${randomUUID().slice(0, 8)}`;
    const token = await rig.token("operator", tenant);
    const commandsBefore = await highWater("polity.goals.commands");
    const ids: string[] = [];
    for (const title of ["first", "second", "third"]) {
      const r = await rig.graphql(SUBMIT, { input: { title, tasks: DAG.slice(0, 1) }, wait: true }, token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const receipt = r.body.data!.submitGoal as { aggregateId: string; projected: boolean };
      assert.equal(receipt.projected, true);
      ids.push(receipt.aggregateId);
    }
    assert.ok((await highWater("polity.goals.commands")) >= commandsBefore + 3, "submissions wrote no commands");

    type Page = {
      edges: { cursor: string; node: { id: string } }[];
      pageInfo: { endCursor: string | null; hasNextPage: boolean };
      totalCount: number;
    };
    const goals = async (first: number, after?: string, as = token) => {
      const r = await rig.graphql(
        `query ($first: Int, $after: String) {
          goals(first: $first, after: $after) { edges { cursor node { id } } pageInfo { endCursor hasNextPage } totalCount }
        }`,
        { first, after },
        as,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.data!.goals as Page;
    };
    const one = await goals(2);
    assert.equal(one.edges.length, 2);
    assert.equal(one.totalCount, 3);
    assert.equal(one.pageInfo.hasNextPage, true);
    assert.equal(one.pageInfo.endCursor, one.edges[1]!.cursor);
    const two = await goals(2, one.pageInfo.endCursor!);
    assert.equal(two.edges.length, 1);
    assert.equal(two.totalCount, 3);
    assert.equal(two.pageInfo.hasNextPage, false);
    const seen = [...one.edges, ...two.edges].map((e) => e.node.id);
    assert.deepEqual([...seen].sort(), [...ids].sort());
    // Every edge's cursor continues the list, not only the last one.
    const fromFirst = await goals(2, one.edges[0]!.cursor);
    assert.deepEqual(
      fromFirst.edges.map((e) => e.node.id),
      seen.slice(1),
    );
    assert.equal(fromFirst.pageInfo.hasNextPage, false);
    // Another tenant's list does not hold them.
    const acme = await goals(100, undefined, operator);
    assert.ok(acme.totalCount >= 3, "acme's own goals");
    assert.ok(!acme.edges.some((e) => ids.includes(e.node.id)));
  });

  it("serves plans, planners and model usage of goals and tasks, and model usage per model, goal and tenant", async () => {
    // Read models of their own, filled from a hand-made log (the rig's hierarchy calls no model),
    // served by another gateway over them.
    const schema = `analytics_gwm_${randomUUID().slice(0, 8)}`;
    const prefix = "models_";
    await migrate(rig.pool, schema);
    try {
      const state = new StateStore(rig.db, { collectionPrefix: prefix });
      await state.ensureIndexes();
      const analytics = new AnalyticsStore(rig.pool, { schema });
      const log = modelLog();
      for (const b of log.batches) {
        await state.apply(b.topic, 0, b.events, b.next);
        await analytics.apply(b.topic, 0, b.events, b.next);
      }
      const { url } = await rig.another({
        read: new ReadSide(rig.db, rig.pool, { analyticsSchema: schema, collectionPrefix: prefix }),
      });
      const gql = async (query: string, variables: Record<string, unknown>, token: string) => {
        const res = await fetch(`${url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify({ query, variables }),
        });
        return (await res.json()) as GraphQLBody;
      };
      const viewer = await rig.token("viewer");
      const globex = await rig.token("viewer", "globex");
      const agent = await rig.token("agent", "acme", { agentId: "w-openai" });

      const read = await gql(
        `query ($id: ID!) {
          goal(id: $id) {
            status planner tokensIn tokensOut modelCalls modelLatencyMs modelCost
            planUsage { tokensIn tokensOut calls latencyMs }
            taskUsage { tokensIn tokensOut calls latencyMs }
            phases { phase planner }
            plans {
              requestId phase attempt maxAttempts status modelConfig feedback requestedAt planner accepted
              problems error taskCount answeredAt
              usage { model tokensIn tokensOut calls latencyMs promptDigest answerDigest }
            }
            tasks {
              taskId cost model tokensIn tokensOut modelCalls modelLatencyMs
              usage { attempt outcome cost model tokensIn tokensOut calls latencyMs promptDigest answerDigest }
              attemptUsage { attempt outcome cost model }
            }
          }
          rejected: goal(id: "gm3") { status failure { code reason } plans { status error usage { model } } }
          byModel: modelUsage {
            tenantId model goalId models records calls planCalls taskCalls tokensIn tokensOut tokensTotal latencyMs
            avgLatencyMs cost goals tasks firstAt lastAt
          }
          byGoal: modelUsage(by: GOAL) { goalId models calls tokensTotal cost tasks }
          byTenant: modelUsage(by: TENANT) { tenantId models calls planCalls taskCalls tokensTotal cost goals }
          usedTiny: modelUsage(by: GOAL, model: "embedded:tiny.gguf") { goalId }
          oneModel: modelUsage(model: "embedded:tiny.gguf") { model tokensTotal }
        }`,
        { id: "gm1" },
        viewer,
      );
      assert.equal(read.errors, undefined, JSON.stringify(read.errors));
      const data = read.data as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      const goal = data.goal;
      assert.deepEqual(
        {
          status: goal.status,
          planner: goal.planner,
          tokensIn: goal.tokensIn,
          tokensOut: goal.tokensOut,
          modelCalls: goal.modelCalls,
          modelLatencyMs: goal.modelLatencyMs,
          modelCost: goal.modelCost,
          planUsage: goal.planUsage,
          taskUsage: goal.taskUsage,
          phases: goal.phases,
        },
        {
          status: "RUNNING",
          planner: "model/v1",
          tokensIn: 2800,
          tokensOut: 620,
          modelCalls: 5,
          modelLatencyMs: 4300,
          modelCost: "0.0123",
          planUsage: { tokensIn: 2100, tokensOut: 450, calls: 3, latencyMs: 1700 },
          taskUsage: { tokensIn: 700, tokensOut: 170, calls: 2, latencyMs: 2600 },
          phases: [{ phase: "DESIGN", planner: "model/v1" }],
        },
      );
      assert.deepEqual(goal.plans, [
        {
          requestId: "gm1:DESIGN:1",
          phase: "DESIGN",
          attempt: 1,
          maxAttempts: 2,
          status: "REFUSED",
          modelConfig: "fast",
          feedback: [],
          requestedAt: at(3).toISOString(),
          planner: "model/v1",
          accepted: false,
          problems: [PROBLEM],
          error: null,
          taskCount: 0,
          answeredAt: at(4).toISOString(),
          usage: openai(1000, 200, 1, 800),
        },
        {
          requestId: "gm1:DESIGN:2",
          phase: "DESIGN",
          attempt: 2,
          maxAttempts: 2,
          status: "ACCEPTED",
          modelConfig: "fast",
          feedback: [PROBLEM],
          requestedAt: at(5).toISOString(),
          planner: "model/v1",
          accepted: true,
          problems: [],
          error: null,
          taskCount: 2,
          answeredAt: at(6).toISOString(),
          usage: openai(1100, 250, 2, 900),
        },
      ]);
      assert.deepEqual(goal.tasks, [
        {
          taskId: "a",
          cost: "0.0123",
          model: "openai:gpt-4o-mini",
          tokensIn: 700,
          tokensOut: 170,
          modelCalls: 2,
          modelLatencyMs: 2600,
          usage: { attempt: 2, outcome: "COMPLETED", cost: "0.0123", ...openai(400, 120, 1, 600) },
          attemptUsage: [
            { attempt: 1, outcome: "FAILED", cost: null, model: "embedded:tiny.gguf" },
            { attempt: 2, outcome: "COMPLETED", cost: "0.0123", model: "openai:gpt-4o-mini" },
          ],
        },
        {
          taskId: "b",
          cost: "0.5000",
          model: null,
          tokensIn: 0,
          tokensOut: 0,
          modelCalls: 0,
          modelLatencyMs: 0,
          usage: null,
          attemptUsage: [],
        },
      ]);
      assert.deepEqual(data.rejected, {
        status: "REJECTED",
        failure: { code: "PLANNING_FAILED", reason: "plan attempt 1: the model call timed out" },
        plans: [{ status: "REFUSED", error: "the model call timed out", usage: null }],
      });
      // The analytics of acme only: globex's planner call is not among them.
      assert.deepEqual(data.byModel, [
        {
          tenantId: "acme",
          model: "embedded:tiny.gguf",
          goalId: null,
          models: ["embedded:tiny.gguf"],
          records: 1,
          calls: 1,
          planCalls: 0,
          taskCalls: 1,
          tokensIn: 300,
          tokensOut: 50,
          tokensTotal: 350,
          latencyMs: 2000,
          avgLatencyMs: 2000,
          cost: "0.0000",
          goals: 1,
          tasks: null,
          firstAt: at(12).toISOString(),
          lastAt: at(12).toISOString(),
        },
        {
          tenantId: "acme",
          model: "openai:gpt-4o-mini",
          goalId: null,
          models: ["openai:gpt-4o-mini"],
          records: 3,
          calls: 4,
          planCalls: 3,
          taskCalls: 1,
          tokensIn: 2500,
          tokensOut: 570,
          tokensTotal: 3070,
          latencyMs: 2300,
          avgLatencyMs: 575,
          cost: "0.0123",
          goals: 1,
          tasks: null,
          firstAt: at(4).toISOString(),
          lastAt: at(15).toISOString(),
        },
      ]);
      assert.deepEqual(data.byGoal, [
        {
          goalId: "gm1",
          models: ["embedded:tiny.gguf", "openai:gpt-4o-mini"],
          calls: 5,
          tokensTotal: 3420,
          cost: "0.0123",
          tasks: 1,
        },
      ]);
      assert.deepEqual(data.byTenant, [
        {
          tenantId: "acme",
          models: ["embedded:tiny.gguf", "openai:gpt-4o-mini"],
          calls: 5,
          planCalls: 3,
          taskCalls: 2,
          tokensTotal: 3420,
          cost: "0.0123",
          goals: 1,
        },
      ]);
      assert.deepEqual(data.usedTiny, [{ goalId: "gm1" }]);
      assert.deepEqual(data.oneModel, [{ model: "embedded:tiny.gguf", tokensTotal: 350 }]);

      // Another tenant sees its own usage and none of acme's goals.
      const other = await gql(
        `{ goal(id: "gm1") { id } modelUsage(by: TENANT) { tenantId tokensTotal planCalls } }`,
        {},
        globex,
      );
      assert.deepEqual(other.data, {
        goal: null,
        modelUsage: [{ tenantId: "globex", tokensTotal: 60, planCalls: 1 }],
      });
      // An agent token: a goal its subtree works on, and nothing tenant-wide.
      const mine = await gql(`{ modelUsage(by: GOAL, goalId: "gm1") { goalId calls } }`, {}, agent);
      assert.deepEqual(mine.data, { modelUsage: [{ goalId: "gm1", calls: 5 }] });
      assert.equal(errorOf(await gql(`{ modelUsage { model } }`, {}, agent)).code, "FORBIDDEN");
      for (const [args, field] of [
        [`by: MODEL, goalId: "gm1"`, "goalId"],
        [`limit: 0`, "limit"],
      ])
        assert.deepEqual([errorOf(await gql(`{ modelUsage(${args}) { calls } }`, {}, viewer)).field], [field], args);

      // REST shows the same fields under the same names.
      const rest = async (path: string, token = viewer) => {
        const res = await fetch(`${url}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
        return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
      };
      const g = await rest("/goals/gm1");
      assert.equal(g.status, 200, JSON.stringify(g.body));
      assert.deepEqual(
        [g.body.planner, g.body.tokensIn, g.body.tokensOut, g.body.modelCalls, g.body.modelCost, g.body.plans.length],
        ["model/v1", 2800, 620, 5, "0.0123", 2],
      );
      assert.deepEqual(g.body.plans[0].usage, openai(1000, 200, 1, 800));
      const a = g.body.tasks.find((t: { taskId: string }) => t.taskId === "a");
      assert.deepEqual(
        [a.model, a.tokensIn, a.modelCalls, a.usage.answerDigest, a.attemptUsage.length],
        ["openai:gpt-4o-mini", 700, 2, openai(400, 120, 1, 600).answerDigest, 2],
      );
      const byGoal = await rest("/metrics/model-usage?by=goal");
      assert.equal(byGoal.status, 200, JSON.stringify(byGoal.body));
      assert.deepEqual(
        byGoal.body.items.map((r: { goalId: string; tokensTotal: number; cost: string }) => [
          r.goalId,
          r.tokensTotal,
          r.cost,
        ]),
        [["gm1", 3420, "0.0123"]],
      );
      const byModel = await rest("/metrics/model-usage");
      assert.deepEqual(
        byModel.body.items.map((r: { model: string; tokensTotal: number }) => [r.model, r.tokensTotal]),
        [
          ["embedded:tiny.gguf", 350],
          ["openai:gpt-4o-mini", 3070],
        ],
      );
      const bad = await rest("/metrics/model-usage?by=week");
      assert.deepEqual([bad.status, bad.body.error.field], [400, "by"]);
    } finally {
      await rig.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });
});

describe("goal stream ending", () => {
  /** Events as the feed hands them over, each after `gapMs`. */
  const feed = (events: LiveEvent[], gapMs = 5): Source & { returned: boolean } => {
    const queue = [...events];
    const source = {
      returned: false,
      next: async (): Promise<IteratorResult<LiveEvent>> => {
        await sleep(gapMs);
        if (source.returned || queue.length === 0) return { done: true, value: undefined };
        return { done: false, value: queue.shift()! };
      },
      return: async (): Promise<IteratorResult<LiveEvent>> => {
        source.returned = true;
        return { done: true, value: undefined };
      },
    };
    return source;
  };
  const event = (type: string, topic: string, eventId: string, causationId: string | null = null): LiveEvent => ({
    event: { type, value: { envelope: { eventId, causationId, tenantId: "acme" }, goalId: "g" } } as never,
    topic,
    partition: 0,
    offset: eventId,
    loggedAt: new Date(),
  });
  const drain = async (source: Source) => {
    const out: string[] = [];
    for (;;) {
      const r = await source.next();
      if (r.done) return out;
      out.push(r.value.event.type);
    }
  };

  it("delivers the final event after its cause, when the cause reaches the feed later", async () => {
    const source = feed([
      event("TaskStarted", "polity.tasks.events", "1"),
      event("GoalCompleted", "polity.goals.events", "9", "3"),
      event("TaskCompleted", "polity.tasks.events", "2"),
      event("ReportSubmitted", "polity.tasks.events", "3"),
      event("GoalSnapshotTaken", "polity.goals.events", "10"),
    ]);
    assert.deepEqual(await drain(endsWithFinal(source)), [
      "TaskStarted",
      "TaskCompleted",
      "ReportSubmitted",
      "GoalCompleted",
    ]);
    assert.equal(source.returned, true);
  });

  it("ends at the final event at once when its cause came first", async () => {
    const source = feed([
      event("TaskCompleted", "polity.tasks.events", "2"),
      event("GoalCompleted", "polity.goals.events", "9", "2"),
      event("ReportSubmitted", "polity.tasks.events", "3"),
    ]);
    assert.deepEqual(await drain(endsWithFinal(source)), ["TaskCompleted", "GoalCompleted"]);
    assert.equal(source.returned, true);
  });
});

// --- a hand-made log of goals planned and run by models ---------------------------------------------

const T0 = Date.parse("2030-04-01T08:00:00Z");
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const PROBLEM = 'task "x": domain "ops" is not one of the goal\'s domains (backend)';
const openai = (tokensIn: number, tokensOut: number, calls: number, latencyMs: number): ModelUsage => ({
  model: "openai:gpt-4o-mini",
  tokensIn,
  tokensOut,
  calls,
  latencyMs,
  promptDigest: `${tokensIn}`.padEnd(64, "c"),
  answerDigest: `${tokensOut}`.padEnd(64, "d"),
});

/**
 * Goal gm1 (acme, a project): a refused plan, an accepted one, task a failed on an embedded model and
 * completed on openai, task b simulated; gm3 (acme) given up for want of a plan; gm2 (globex) planned
 * once. As a projection sees it: goal events on polity.goals.events, task events on polity.tasks.events.
 */
function modelLog(): { batches: { topic: string; events: LoggedEvent[]; next: bigint }[] } {
  const versions = new Map<string, number>();
  const ev = <T extends MessageTypeName>(
    type: T,
    seconds: number,
    goalId: string,
    payload: EventPayload<T>,
    tenantId = "acme",
  ): PolityEvent => {
    const version = (versions.get(goalId) ?? 0) + 1;
    versions.set(goalId, version);
    const envelope: Envelope = {
      eventId: randomUUID(),
      type,
      occurredAt: at(seconds),
      tenantId,
      correlationId: goalId,
      causationId: null,
      actor: { id: "test", tier: "SYSTEM" },
      aggregate: { type: "GOAL", id: goalId, version },
    };
    return { type, value: { envelope, ...payload } as MessageMap[T] } as PolityEvent;
  };
  const spec = (id: string): TaskSpec => ({
    id,
    title: `Task ${id}`,
    description: null,
    domain: "backend",
    specialization: "api",
    phase: "DESIGN",
    dependsOn: [],
    estimatedEffortMs: null,
    priority: null,
    inputs: {},
    timeoutMs: null,
  });
  const submitted = (goalId: string, kind: "GOAL" | "PROJECT"): EventPayload<"GoalSubmitted"> => ({
    goalId,
    commandId: randomUUID(),
    kind,
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
  const requested = (
    goalId: string,
    phase: "DESIGN" | null,
    attempt: number,
    feedback: string[] = [],
  ): EventPayload<"PlanRequested"> => ({
    goalId,
    requestId: `${goalId}:${phase ?? "goal"}:${attempt}`,
    phase,
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
    phase: "DESIGN" | null,
    attempt: number,
    usage: ModelUsage | null,
    answer: { tasks?: TaskSpec[]; problems?: string[]; error?: string },
  ): EventPayload<"PlanProposed"> => ({
    goalId,
    requestId: `${goalId}:${phase ?? "goal"}:${attempt}`,
    phase,
    attempt,
    planner: "model/v1",
    usage,
    tasks: answer.tasks ?? [],
    error: answer.error ?? null,
    accepted: !answer.error && !answer.problems,
    problems: answer.problems ?? [],
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
  const goals = [
    ev("GoalSubmitted", 0, "gm1", submitted("gm1", "PROJECT")),
    ev("GoalValidated", 1, "gm1", { goalId: "gm1", consultedPolicies: [], warnings: [] }),
    ev("PhaseTransitioned", 2, "gm1", {
      goalId: "gm1",
      fromPhase: null,
      toPhase: "DESIGN",
      requestId: null,
      phaseDurationMs: null,
    }),
    ev("PlanRequested", 3, "gm1", requested("gm1", "DESIGN", 1)),
    ev("PlanProposed", 4, "gm1", proposed("gm1", "DESIGN", 1, openai(1000, 200, 1, 800), { problems: [PROBLEM] })),
    ev("PlanRequested", 5, "gm1", requested("gm1", "DESIGN", 2, [PROBLEM])),
    ev(
      "PlanProposed",
      6,
      "gm1",
      proposed("gm1", "DESIGN", 2, openai(1100, 250, 2, 900), { tasks: [spec("a"), spec("b")] }),
    ),
    ev("GoalDecomposed", 6, "gm1", {
      goalId: "gm1",
      planner: "model/v1",
      phase: "DESIGN",
      tasks: [spec("a"), spec("b")],
    }),
    ev("GoalSubmitted", 7, "gm2", submitted("gm2", "GOAL"), "globex"),
    ev("PlanProposed", 8, "gm2", proposed("gm2", null, 1, openai(50, 10, 1, 100), { tasks: [spec("c")] }), "globex"),
    ev("GoalSubmitted", 9, "gm3", submitted("gm3", "GOAL")),
    ev("GoalValidated", 9, "gm3", { goalId: "gm3", consultedPolicies: [], warnings: [] }),
    ev("PlanRequested", 10, "gm3", requested("gm3", null, 1)),
    ev("PlanProposed", 11, "gm3", proposed("gm3", null, 1, null, { error: "the model call timed out" })),
    ev("GoalRejected", 11, "gm3", {
      goalId: "gm3",
      commandId: randomUUID(),
      code: "PLANNING_FAILED",
      reasons: ["plan attempt 1: the model call timed out"],
      violatedPolicies: [],
    }),
  ];
  const tasks = [
    ...["a", "b"].map((id) =>
      ev("TaskCreated", 6, "gm1", {
        goalId: "gm1",
        task: spec(id),
        priority: 5,
        maxAttempts: 3,
        parentTaskId: null,
        deadline: null,
      }),
    ),
    ev("TaskAssigned", 7, "gm1", {
      goalId: "gm1",
      taskId: "a",
      assigneeId: "w-tiny",
      assigneeTier: "WORKER",
      assignedBy: "mayor",
      attempt: 1,
      task: spec("a"),
      priority: 5,
      timeoutMs: null,
    }),
    ev("TaskFailed", 12, "gm1", {
      goalId: "gm1",
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
    }),
    ev("TaskAssigned", 13, "gm1", {
      goalId: "gm1",
      taskId: "a",
      assigneeId: "w-openai",
      assigneeTier: "WORKER",
      assignedBy: "mayor",
      attempt: 2,
      task: spec("a"),
      priority: 5,
      timeoutMs: null,
    }),
    ev("TaskCompleted", 15, "gm1", {
      goalId: "gm1",
      taskId: "a",
      agentId: "w-openai",
      attempt: 2,
      result: "done",
      durationMs: 700,
      outputs: {},
      cost: "0.0123",
      exitCode: null,
      usage: openai(400, 120, 1, 600),
    }),
    ev("TaskCompleted", 16, "gm1", {
      goalId: "gm1",
      taskId: "b",
      agentId: "w-sim",
      attempt: 1,
      result: "done",
      durationMs: 20,
      outputs: {},
      cost: "0.5000",
      exitCode: null,
      usage: null,
    }),
  ];
  const batch = (topic: string, events: PolityEvent[]) => ({
    topic,
    events: events.map((event, i) => ({ event, topic, partition: 0, offset: BigInt(i), timestamp: new Date(0) })),
    next: BigInt(events.length),
  });
  return { batches: [batch("polity.goals.events", goals), batch("polity.tasks.events", tasks)] };
}
