import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runningOn, worker } from "../../processors/domain/worker.js";
import {
  assigned,
  context,
  created,
  ev,
  executionFinished,
  retried,
  spec,
  started,
  stateOf,
  task,
  failed,
} from "../support/decider-spec.js";

const W1 = "aamas-worker-backend-api-1";
const W2 = "aamas-worker-backend-api-2";
const T = task("t1", "backend", "api");

/** The task assigned down to `w`: what the worker decides on is the last of these. */
const toWorker = (w = W1, attempt = 1) => [
  created("g1", T),
  assigned("g1", T, "aamas-governor-backend"),
  assigned("g1", T, w === W2 ? "aamas-mayor-backend-2" : "aamas-mayor-backend-1"),
  assigned("g1", T, w, { attempt }),
];

const ok = (result = "built", cost = "0.1200") =>
  ({
    ok: true,
    result,
    outputs: { artifact: "api.tgz" },
    durationMs: 42,
    cost,
    exitCode: 0,
  }) as const;

describe("worker", () => {
  it("accepts and starts a task assigned to a worker it hosts", () => {
    const facts = toWorker();
    spec(worker)
      .given(facts.slice(0, -1))
      .when(facts.at(-1)!)
      .then([
        { type: "TaskAccepted", goalId: "g1", taskId: "t1", agentId: W1, tier: "WORKER", attempt: 1 },
        { type: "TaskStarted", goalId: "g1", taskId: "t1", agentId: W1, attempt: 1, executor: "simulated" },
      ]);
  });

  it("acts with the worker's identity", () => {
    const facts = toWorker();
    const [accepted] = spec(worker).given(facts.slice(0, -1)).when(facts.at(-1)!).decisions;
    assert.deepStrictEqual(accepted!.actor, { id: W1, tier: "WORKER" });
    assert.deepStrictEqual(accepted!.aggregate, { type: "TASK", id: "t1", version: -1 });
  });

  it("starts nothing for a worker it does not host", () => {
    const facts = toWorker();
    spec(worker, context({ hosts: (id) => id === W2 }))
      .given(facts.slice(0, -1))
      .when(facts.at(-1)!)
      .thenNothing();
  });

  it("ignores assignments to other tiers", () => {
    const facts = toWorker();
    spec(worker).given(facts.slice(0, 1)).when(facts[1]!).thenNothing();
  });

  it("starts a task once: the assignment decided again after TaskStarted is folded yields nothing", () => {
    const facts = toWorker();
    const decisions = spec(worker).given(facts.slice(0, -1)).when(facts.at(-1)!).decisions;
    assert.equal(decisions.length, 2);
    spec(worker)
      .given([...facts, ...decisions])
      .when(facts.at(-1)!)
      .thenNothing();
  });

  it("reports a successful execution as TaskCompleted with its result, outputs and cost", () => {
    spec(worker)
      .given([...toWorker(), started("g1", "t1", W1)])
      .when(executionFinished("g1", "t1", W1, ok()))
      .then([
        {
          type: "TaskCompleted",
          goalId: "g1",
          taskId: "t1",
          agentId: W1,
          attempt: 1,
          result: "built",
          outputs: { artifact: "api.tgz" },
          cost: "0.1200",
          durationMs: 42,
          exitCode: 0,
        },
      ]);
  });

  it("reports a failed execution as TaskFailed with its kind and whether it may be retried", () => {
    spec(worker)
      .given([...toWorker(), started("g1", "t1", W1)])
      .when(
        executionFinished("g1", "t1", W1, {
          ok: false,
          reason: "exit 2",
          kind: "NONZERO_EXIT",
          retryable: false,
          durationMs: 7,
          exitCode: 2,
          output: "error: no such file",
        }),
      )
      .then([
        {
          type: "TaskFailed",
          taskId: "t1",
          agentId: W1,
          attempt: 1,
          reason: "exit 2",
          failureKind: "NONZERO_EXIT",
          retryable: false,
          exitCode: 2,
          output: "error: no such file",
          durationMs: 7,
        },
      ]);
  });

  it("drops the result of a cancelled attempt", () => {
    spec(worker)
      .given([
        ...toWorker(),
        started("g1", "t1", W1),
        ev("TaskCancelled", {
          goalId: "g1",
          taskId: "t1",
          cause: "GOAL_FAILED",
          reason: "goal failed",
          previousStatus: "RUNNING",
          agentId: W1,
        }),
      ])
      .when(executionFinished("g1", "t1", W1, ok()))
      .thenNothing();
  });

  it("drops the result of an attempt superseded by a retry elsewhere", () => {
    spec(worker)
      .given([
        ...toWorker(),
        started("g1", "t1", W1),
        failed("g1", "t1", W1),
        retried("g1", "t1", 2, [W1]),
        assigned("g1", T, W2, { attempt: 2 }),
        started("g1", "t1", W2, 2),
      ])
      .when(executionFinished("g1", "t1", W1, ok(), 1))
      .thenNothing();
  });

  it("drops a second result of an attempt already reported", () => {
    const history = [...toWorker(), started("g1", "t1", W1)];
    const done = spec(worker)
      .given(history)
      .when(executionFinished("g1", "t1", W1, ok())).decisions;
    assert.equal(done.length, 1);
    spec(worker)
      .given([...history, ...done])
      .when(executionFinished("g1", "t1", W1, ok("again")))
      .thenNothing();
  });

  it("drops a result for a task that never started", () => {
    spec(worker)
      .given(toWorker())
      .when(executionFinished("g1", "t1", W1, ok()))
      .thenNothing();
  });

  it("runningOn lists the running attempts of the workers a host speaks for", () => {
    const T2 = task("t2", "backend", "api");
    const T3 = task("t3", "backend", "api");
    const state = stateOf([
      ...toWorker(W1),
      started("g1", "t1", W1),
      created("g1", T2),
      assigned("g1", T2, W2),
      started("g1", "t2", W2),
      created("g1", T3),
      assigned("g1", T3, W1),
    ]);
    const list = (hosts: (id: string) => boolean) =>
      runningOn(state, hosts)
        .map((t) => `${t.spec.id}@${t.workerId}#${t.attempt}`)
        .sort();
    assert.deepStrictEqual(
      list(() => true),
      [`t1@${W1}#1`, `t2@${W2}#1`],
    );
    assert.deepStrictEqual(
      list((id) => id === W2),
      [`t2@${W2}#1`],
    );
    assert.deepStrictEqual(
      list(() => false),
      [],
    );
  });

  it("runningOn forgets an attempt once it completes", () => {
    const state = stateOf([
      ...toWorker(),
      started("g1", "t1", W1),
      ev("TaskCompleted", {
        goalId: "g1",
        taskId: "t1",
        agentId: W1,
        attempt: 1,
        result: "ok",
        durationMs: 1,
        outputs: {},
        cost: "0.0000",
        exitCode: null,
        usage: null,
      }),
    ]);
    assert.deepStrictEqual(
      runningOn(state, () => true),
      [],
    );
  });
});
