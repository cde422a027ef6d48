/**
 * The worker API on the real stack: an agent that speaks only HTTP (an external worker of the
 * topology) long-polls its assignment, accepts it, reports progress, asks its mayor for context and
 * reports its result through REST, and the goal completes; another agent's token is refused with
 * nothing written; bad input is a 400 naming the field. Its heartbeats make the health monitor
 * watch it, and when they stop it is declared failed and its task is reassigned.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { paths } from "../../gateway/openapi-agents.js";
import { workerApiRouter, type WorkerApiDeps } from "../../gateway/worker-api.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { agentRig, eventually, externalTask, EXTERNAL_AGENT, type AgentRig } from "../support/agent-rig.js";
import { LogWatcher } from "../support/watch.js";

const HEARTBEAT_MS = 400;
const OTHER_AGENT = "aamas-worker-backend-api-1";

const ofType = (events: PolityEvent[], type: string, agentId = EXTERNAL_AGENT) =>
  events.filter((e) => e.type === type && (e.value as { agentId?: string }).agentId === agentId);

describe("worker API for agents that speak only HTTP", () => {
  let rig: AgentRig;
  let agents: LogWatcher;
  let me: string;
  let other: string;
  let operator: string;

  before(async () => {
    rig = await agentRig("worker-api", { heartbeatIntervalMs: HEARTBEAT_MS });
    agents = await LogWatcher.start(rig.d.kafka, rig.d.codec, rig.d.prefix, ["polity.agents.events"]);
    me = await rig.token("agent", EXTERNAL_AGENT);
    other = await rig.token("agent", OTHER_AGENT);
    operator = await rig.token("operator");
    await eventually(
      "the external agent in the read model",
      () => rig.read.agent(EXTERNAL_AGENT),
      (a) => !!a?.tier,
    );
  });
  after(async () => {
    await agents?.stop().catch(() => undefined);
    await rig?.stop();
  });

  it("documents every route of the worker API in openapi-agents.ts, and nothing else", () => {
    const layers = workerApiRouter({} as WorkerApiDeps).stack as unknown as {
      route?: { path: string; methods: Record<string, boolean> };
    }[];
    const routed = layers
      .filter((l) => l.route)
      .flatMap((l) => Object.keys(l.route!.methods).map((m) => `${m} ${l.route!.path.replace(/:(\w+)/g, "{$1}")}`));
    const documented = Object.entries(paths).flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m} ${p}`));
    assert.deepEqual(routed.sort(), documented.sort());
    assert.equal(routed.length, 9);
  });

  it("refuses bad input with a 400 naming the field, and callers that are not the agent", async () => {
    const cases: {
      what: string;
      method: string;
      path: string;
      token: string | null;
      body?: unknown;
      status: number;
      field?: string;
    }[] = [
      { what: "no token", method: "GET", path: "/tasks/next", token: null, status: 401 },
      { what: "an operator token", method: "GET", path: "/tasks/next", token: operator, status: 403 },
      { what: "a wait over 30 s", method: "GET", path: "/tasks/next?wait=31", token: me, status: 400, field: "wait" },
      { what: "accept without a body", method: "POST", path: "/tasks/accept", token: me, status: 400, field: "body" },
      {
        what: "accept without an attempt",
        method: "POST",
        path: "/tasks/accept",
        token: me,
        body: { goal_id: "g-1", task_id: "t-1" },
        status: 400,
        field: "attempt",
      },
      {
        what: "accept with a bad goal id",
        method: "POST",
        path: "/tasks/accept",
        token: me,
        body: { goal_id: "no spaces", taskId: "t", attempt: 1 },
        status: 400,
        field: "goal_id",
      },
      {
        what: "progress above 1",
        method: "POST",
        path: "/tasks/t-1/update",
        token: me,
        body: { goalId: "g-1", attempt: 1, progress: 2 },
        status: 400,
        field: "progress",
      },
      {
        what: "a heartbeat saying FAILED",
        method: "POST",
        path: "/agents/me/heartbeat",
        token: me,
        body: { status: "FAILED" },
        status: 400,
        field: "status",
      },
      {
        what: "a capacity of 0",
        method: "POST",
        path: "/capabilities/update",
        token: me,
        body: { capacity: 0 },
        status: 400,
        field: "capacity",
      },
      {
        what: "a context poll without goalId",
        method: "GET",
        path: "/context/ctx-1",
        token: me,
        status: 400,
        field: "goalId",
      },
      {
        what: "a heartbeat for an agent the platform runs",
        method: "POST",
        path: "/agents/me/heartbeat",
        token: other,
        body: {},
        status: 403,
      },
    ];
    for (const c of cases) {
      const r = await rig.call(c.method, c.path, c.token, c.body);
      assert.equal(r.status, c.status, `${c.what}: ${JSON.stringify(r.body)}`);
      assert.ok(r.body?.error?.message, `${c.what}: a JSON error body`);
      if (c.field) assert.equal(r.body.error.field, c.field, `${c.what}: ${JSON.stringify(r.body)}`);
    }
    assert.equal(
      ofType(
        agents.seen.map((s) => s.event),
        "AgentHeartbeat",
      ).length,
      0,
      "a refused heartbeat is not written",
    );
  });

  it("long-polls, accepts, reports progress, gets context and completes a goal through REST", async () => {
    assert.equal((await rig.call("GET", "/tasks/next", me)).status, 204, "nothing is assigned yet");

    const polled = rig.call("GET", "/tasks/next?wait=25", me);
    const submitted = await rig.call("POST", "/goals", operator, {
      title: "http agent goal",
      tasks: [externalTask("reverse", { inputs: { text: "polity" }, description: "reverse the text" })],
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const goalId = submitted.body.aggregateId as string;
    const next = await polled;
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body.goalId, goalId);
    assert.equal(next.body.taskId, "reverse");
    assert.equal(next.body.attempt, 1);
    assert.equal(next.body.task.inputs.text, "polity", "the assignment carries the task's inputs");
    const ref = { goalId, taskId: "reverse", attempt: 1 };

    // Another agent may not touch it, and nothing is written.
    const stolen = await rig.call("POST", "/tasks/accept", other, ref);
    assert.equal(stolen.status, 403, JSON.stringify(stolen.body));
    const stolenUpdate = await rig.call("POST", "/tasks/reverse/update", other, { goalId, attempt: 1, percent: 10 });
    assert.equal(stolenUpdate.status, 403, JSON.stringify(stolenUpdate.body));
    const stolenContext = await rig.call("POST", "/context/request", other, ref);
    assert.equal(stolenContext.status, 403, JSON.stringify(stolenContext.body));
    // A wrong attempt is not current.
    const stale = await rig.call("POST", "/tasks/accept", me, { ...ref, attempt: 2 });
    assert.equal(stale.status, 400, JSON.stringify(stale.body));
    assert.equal(stale.body.error.field, "attempt");
    // Progress before accepting is refused.
    const early = await rig.call("POST", "/tasks/reverse/update", me, { goalId, attempt: 1, percent: 5 });
    assert.equal(early.status, 400, JSON.stringify(early.body));
    const events = () => rig.d.watch.of(goalId);
    assert.deepEqual(
      events().filter((e) => ["TaskAccepted", "TaskStarted", "TaskProgressed", "ContextRequested"].includes(e.type)),
      [],
      "refused calls write nothing",
    );

    const accepted = await rig.call("POST", "/tasks/accept", me, { goal_id: goalId, task_id: "reverse", attempt: 1 });
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    assert.equal(accepted.body.written, true);
    const again = await rig.call("POST", "/tasks/accept", me, ref);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.written, false, "accepting again writes nothing");
    await rig.d.watch.until("TaskStarted", () => ofType(events(), "TaskStarted").length === 1 || undefined, 15_000);
    assert.equal(ofType(events(), "TaskAccepted").length, 1);
    assert.equal((await rig.call("GET", "/tasks/next", me)).status, 204, "an accepted task is not offered again");

    const progressed = await rig.call("POST", "/tasks/reverse/update", me, {
      goalId,
      attempt: 1,
      progress: 0.5,
      message: "half way",
    });
    assert.equal(progressed.status, 200, JSON.stringify(progressed.body));
    assert.equal(progressed.body.percent, 50);

    const asked = await rig.call("POST", "/context/request", me, { ...ref, question: "my inputs", wait: 20 });
    assert.equal(asked.status, 200, JSON.stringify(asked.body));
    assert.equal(asked.body.status, "ANSWERED");
    assert.equal(asked.body.requestId, `ctx-reverse-1-${EXTERNAL_AGENT}`);
    assert.ok(
      Object.values(asked.body.context as Record<string, string>).includes("polity"),
      JSON.stringify(asked.body),
    );
    const askedAgain = await rig.call("POST", "/context/request", me, { ...ref, wait: 5 });
    assert.equal(askedAgain.body.status, "ANSWERED", JSON.stringify(askedAgain.body));
    assert.equal(askedAgain.body.asked, false, "a retry finds the answer and asks nothing");
    const polledAnswer = await rig.call("GET", `/context/${asked.body.requestId}?goalId=${goalId}`, me);
    assert.equal(polledAnswer.status, 200, JSON.stringify(polledAnswer.body));
    assert.equal(polledAnswer.body.status, "ANSWERED");

    const result = await rig.call("POST", `/tasks/${goalId}/reverse/result`, me, {
      attempt: 1,
      status: "COMPLETED",
      result: "YTILOP",
      outputs: { reversed: "YTILOP" },
    });
    assert.equal(result.status, 202, JSON.stringify(result.body));
    const end = await rig.d.watch.final(goalId, 30_000);
    assert.equal(end.type, "GoalCompleted");
    const log = events();
    assert.equal((ofType(log, "TaskProgressed")[0]?.value as { percent?: number } | undefined)?.percent, 50);
    assert.equal(log.filter((e) => e.type === "ContextRequested").length, 1, "the context was asked once");
    assert.equal((ofType(log, "TaskCompleted")[0]?.value as { result?: string } | undefined)?.result, "YTILOP");

    const self = await rig.call("GET", "/agents/me", me);
    assert.equal(self.status, 200, JSON.stringify(self.body));
    assert.equal(self.body.id, EXTERNAL_AGENT);
    assert.equal(self.body.heartbeatIntervalMs, HEARTBEAT_MS);
  });

  it("updates its capabilities by registering again under its own id", async () => {
    const r = await rig.call("POST", "/capabilities/update", me, { capacity: 3, capabilities: ["reverse", "sum"] });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const a = await eventually(
      "capacity 3",
      () => rig.read.agent(EXTERNAL_AGENT),
      (x) => x?.capacity === 3,
    );
    assert.equal(a!.specialization, "http", "what was not updated stays");
    assert.equal(a!.superiorId, "aamas-mayor-ext-1");
    const refused = await rig.call("POST", "/capabilities/update", other, { capacity: 3 });
    assert.equal(refused.status, 403, "an agent the platform runs registers through the platform");
  });

  it("streams assignments, is watched once it heartbeats, and its task is reassigned when they stop", async () => {
    const events = () => agents.seen.map((s) => s.event);
    assert.equal(ofType(events(), "AgentFailed").length, 0, "an agent never heard from is not watched");

    const stream = await fetch(`${rig.url}/api/v1/agents/me/tasks/stream`, {
      headers: { authorization: `Bearer ${me}` },
    });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get("content-type") ?? "", /text\/event-stream/);
    const reader = stream.body!.getReader();
    const submitted = await rig.call("POST", "/goals", operator, {
      title: "http agent goes silent",
      tasks: [externalTask("silent")],
    });
    const goalId = submitted.body.aggregateId as string;
    let text = "";
    const deadline = Date.now() + 20_000;
    while (!/event: task\ndata: .*"taskId":"silent"/.test(text) && Date.now() < deadline)
      text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const data = JSON.parse(/event: task\ndata: (.*)\n/.exec(text)![1]!);
    assert.equal(data.goalId, goalId);
    assert.equal(data.attempt, 1);

    const accepted = await rig.call("POST", "/tasks/accept", me, { goalId, taskId: "silent", attempt: 1 });
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    for (let i = 0; i < 6; i++) {
      const beat = await rig.call("POST", "/agents/me/heartbeat", me, { inFlightTasks: [`${goalId}/silent`] });
      assert.equal(beat.status, 202, JSON.stringify(beat.body));
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS / 2));
    }
    await eventually(
      "its heartbeat in the read model",
      () => rig.read.agent(EXTERNAL_AGENT),
      (a) => !!a?.lastHeartbeat,
    );
    assert.ok(ofType(events(), "AgentHeartbeat").length >= 6);
    assert.equal(ofType(events(), "AgentFailed").length, 0, "alive while it heartbeats");

    // Silence: three intervals later the monitor declares it failed, and the mayor moves its task.
    const failed = await agents.until("AgentFailed", () => ofType(events(), "AgentFailed")[0], 20_000);
    assert.deepEqual((failed.value as { inFlightTasks: string[] }).inFlightTasks, [`${goalId}/silent`]);
    const moved = await rig.d.watch.until(
      "TaskReassigned",
      () => rig.d.watch.of(goalId).find((e) => e.type === "TaskReassigned"),
      20_000,
    );
    assert.equal((moved.value as { cause: string }).cause, "AGENT_FAILED");
  });
});
