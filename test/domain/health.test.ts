import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Payload, TaskSpec } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { TierDecider } from "../../processors/domain/decider.js";
import { directoryOf } from "../support/decider-spec.js";
import { governor } from "../../processors/domain/governor.js";
import { health, healthDecider, MONITOR_ID } from "../../processors/domain/health.js";
import { mayor } from "../../processors/domain/mayor.js";
import { taskKey } from "../../processors/domain/kernel/keys.js";
import { loadOf } from "../../processors/domain/kernel/state.js";
import { worker } from "../../processors/domain/worker.js";
import {
  assigned,
  completed,
  context,
  created,
  ev,
  executionFinished,
  NOW,
  ofType,
  spec,
  started,
  stateOf,
  task,
  type Given,
} from "../support/decider-spec.js";

const T0 = NOW.getTime();
const at = (ms: number) => new Date(T0 + ms);
const W = "aamas-worker-frontend-react-1";

function registered(agentId: string, heartbeatIntervalMs = 1_000): PolityEvent {
  return ev(
    "AgentRegistered",
    {
      agentId,
      name: agentId,
      tier: "WORKER",
      topology: "aamas",
      domain: "frontend",
      specialization: "react",
      superiorId: "aamas-mayor-frontend-1",
      capacity: 2,
      executor: "simulated",
      labels: {},
      heartbeatIntervalMs,
      commandId: null,
    },
    { occurredAt: at(-10_000) },
  );
}

function heartbeat(agentId: string, ms: number, sequence = 1, inFlightTasks: string[] = []): PolityEvent {
  return ev(
    "AgentHeartbeat",
    {
      agentId,
      tier: "WORKER",
      status: "BUSY",
      load: 0.5,
      capacity: 2,
      inFlightTasks,
      sequence,
      at: at(ms),
    },
    { occurredAt: at(ms), actor: { id: agentId, tier: "WORKER" } },
  );
}

/** The monitor's own heartbeat: the health decider's clock. */
function tick(ms: number, sequence = 1): PolityEvent {
  return ev(
    "AgentHeartbeat",
    {
      agentId: MONITOR_ID,
      tier: "SYSTEM",
      status: "BUSY",
      load: 0,
      capacity: 0,
      inFlightTasks: [],
      sequence,
      at: at(ms),
    },
    { occurredAt: at(ms), actor: { id: MONITOR_ID, tier: "SYSTEM" } },
  );
}

function agentFailed(agentId: string, superiorId: string, overrides: Partial<Payload<"AgentFailed">> = {}) {
  return ev(
    "AgentFailed",
    {
      agentId,
      tier: "WORKER",
      superiorId,
      reason: "no heartbeat",
      missedHeartbeats: 3,
      lastHeartbeatAt: at(0),
      inFlightTasks: [],
      ...overrides,
    },
    { occurredAt: at(3_500), actor: { id: MONITOR_ID, tier: "SYSTEM" } },
  );
}

describe("health monitor", () => {
  const alive = [registered(W), heartbeat(W, 0, 1, ["g1/t1"])];

  it("declares an agent failed when a tick finds its last heartbeat older than the timeout", () => {
    spec(health)
      .given(alive)
      .when(tick(3_500))
      .then([
        {
          type: "AgentFailed",
          agentId: W,
          tier: "WORKER",
          superiorId: "aamas-mayor-frontend-1",
          missedHeartbeats: 3,
          lastHeartbeatAt: at(0),
          inFlightTasks: ["g1/t1"],
        },
      ]);
  });

  it("does nothing while the agent is within its timeout", () => {
    spec(health).given(alive).when(tick(2_900)).thenNothing();
  });

  it("uses the agent's registered interval and the configured factor", () => {
    spec(health)
      .given([registered(W, 2_000), heartbeat(W, 0)])
      .when(tick(5_000))
      .thenNothing();
    spec(healthDecider({ timeoutFactor: 2 }))
      .given([registered(W, 2_000), heartbeat(W, 0)])
      .when(tick(4_500))
      .thenTypes(["AgentFailed"]);
  });

  it("does not watch an agent it never heard from, nor its own ticks", () => {
    spec(health)
      .given([registered(W), tick(0)])
      .when(tick(60_000, 2))
      .thenNothing();
  });

  it("deciding the same tick again (redelivery) emits nothing new", () => {
    const first = spec(health).given(alive).when(tick(3_500)).thenTypes(["AgentFailed"]);
    spec(health)
      .given([...alive, tick(3_500), ...first])
      .when(tick(3_500))
      .thenNothing();
    // Nor does any later tick while the agent stays silent.
    spec(health)
      .given([...alive, tick(3_500), ...first])
      .when(tick(10_000, 2))
      .thenNothing();
  });

  it("a heartbeat after the failure recovers the agent, once", () => {
    const failedFact = agentFailed(W, "aamas-mayor-frontend-1");
    const recovered = spec(health)
      .given([...alive, failedFact])
      .when(heartbeat(W, 5_000, 2))
      .then([{ type: "AgentRecovered", agentId: W, tier: "WORKER", downtimeMs: 1_500, failureReason: "no heartbeat" }]);
    spec(health)
      .given([...alive, failedFact, heartbeat(W, 5_000, 2), ...recovered])
      .when(heartbeat(W, 5_000, 2))
      .thenNothing();
  });

  it("a heartbeat older than the failure (a late copy) does not recover it", () => {
    spec(health)
      .given([...alive, agentFailed(W, "aamas-mayor-frontend-1")])
      .when(heartbeat(W, 0, 1))
      .thenNothing();
  });
});

/** The two tiers that dispatch to workers, with a react worker that fails and the one left. */
const DISPATCHERS: {
  name: string;
  decider: TierDecider;
  id: string;
  failed: string;
  other: string;
  reach(goalId: string, t: TaskSpec): PolityEvent[];
}[] = [
  {
    name: "aamas mayor",
    decider: mayor,
    id: "aamas-mayor-frontend-1",
    failed: "aamas-worker-frontend-react-1",
    other: "aamas-worker-frontend-react-2",
    reach: (goalId, t) => [
      created(goalId, t),
      assigned(goalId, t, "aamas-governor-frontend"),
      assigned(goalId, t, "aamas-mayor-frontend-1"),
    ],
  },
  {
    name: "dgm sub-master",
    decider: governor,
    id: "dgm-submaster-frontend",
    failed: "dgm-worker-frontend-react-1",
    other: "dgm-worker-frontend-react-2",
    reach: (goalId, t) => [created(goalId, t), assigned(goalId, t, "dgm-submaster-frontend")],
  },
];

const react = (id: string) => task(id, "frontend", "react");

for (const d of DISPATCHERS) {
  describe(`${d.name}: a failed worker's tasks`, () => {
    const failure = agentFailed(d.failed, d.id);
    // The directory every host derives once the AgentFailed is read.
    const directory = directoryOf();
    directory.apply(failure);
    const ctx = context({ directory });

    /** Two tasks running on the worker that fails. */
    const running: Given[] = [react("t1"), react("t2")].flatMap((t) => [
      ...d.reach("g1", t),
      assigned("g1", t, d.failed),
      started("g1", t.id, d.failed),
    ]);

    it("are reassigned to other workers, none to the failed one", () => {
      const out = spec(d.decider, ctx)
        .given(running)
        .when(failure)
        .then([
          {
            type: "TaskReassigned",
            taskId: "t1",
            fromAgentId: d.failed,
            toAgentId: d.other,
            cause: "AGENT_FAILED",
            attempt: 2,
          },
          { type: "TaskAssigned", taskId: "t1", assigneeId: d.other, assigneeTier: "WORKER", attempt: 2 },
          {
            type: "TaskReassigned",
            taskId: "t2",
            fromAgentId: d.failed,
            toAgentId: d.other,
            cause: "AGENT_FAILED",
            attempt: 2,
          },
          { type: "TaskAssigned", taskId: "t2", assigneeId: d.other, assigneeTier: "WORKER", attempt: 2 },
        ]);
      assert.ok(ofType(out, "TaskAssigned").every((a) => a.assigneeId !== d.failed));
      // The state moves both tasks to the new worker and frees the failed one.
      const state = stateOf([...running, failure, ...out]);
      for (const id of ["t1", "t2"]) {
        const t = state.tasks.get(taskKey("g1", id))!;
        assert.equal(t.workerId, d.other);
        assert.equal(t.attempt, 2);
        assert.equal(t.status, "ASSIGNED");
      }
      assert.equal(state.activeByAgent.get(d.failed), undefined);
    });

    it("are not reassigned twice (a repeated AgentFailed, a restart)", () => {
      const out = spec(d.decider, ctx)
        .given(running)
        .when(failure)
        .thenTypes(["TaskReassigned", "TaskAssigned", "TaskReassigned", "TaskAssigned"]);
      spec(d.decider, ctx)
        .given([...running, failure, ...out])
        .when(failure)
        .thenNothing();
    });

    it("wait at the dispatcher when no other worker has room", () => {
      // The other react worker is full (capacity 2) with work of another goal.
      const full: Given[] = [react("x1"), react("x2")].flatMap((t) => [
        ...d.reach("g2", t),
        assigned("g2", t, d.other),
      ]);
      const out = spec(d.decider, ctx)
        .given([...full, ...running])
        .when(failure)
        .then([
          { type: "TaskReassigned", taskId: "t1", toAgentId: d.id, attempt: 2 },
          { type: "TaskReassigned", taskId: "t2", toAgentId: d.id, attempt: 2 },
        ]);
      // When the other worker finishes, a waiting task goes to it, still not to the failed one.
      spec(d.decider, ctx)
        .given([...full, ...running, failure, ...out])
        .when(completed("g2", "x1", d.other))
        .thenMatches((ds) => {
          const a = ofType(ds, "TaskAssigned");
          return a.length === 1 && a[0]!.assigneeId === d.other && a[0]!.attempt === 2;
        });
    });

    it("a late TaskCompleted of the failed attempt completes the task; the attempt that replaced it is let go", () => {
      const out = spec(d.decider, ctx)
        .given(running)
        .when(failure)
        .thenTypes(["TaskReassigned", "TaskAssigned", "TaskReassigned", "TaskAssigned"]);
      // The worker was slow, not dead: it did the work, and its result is in the log after the move.
      const late = completed("g1", "t1", d.failed, { attempt: 1 });
      const outcome = spec(d.decider, ctx)
        .given([...running, failure, ...out])
        .when(late);
      const t = outcome.state.tasks.get(taskKey("g1", "t1"))!;
      assert.equal(t.status, "COMPLETED");
      assert.equal(t.attempt, 1);
      assert.equal(loadOf(outcome.state, d.other), 1, "only t2's attempt 2 still holds the other worker");
      assert.ok(
        !ofType(outcome.decisions, "TaskAssigned").some((a) => a.taskId === "t1"),
        "t1 is not handed out again",
      );
      // And the failed worker's host, if it finishes the old attempt after it read the move, reports nothing.
      spec(worker, context({ directory, hosts: (id) => id === d.failed }))
        .given([...running, failure, ...out])
        .when(
          executionFinished("g1", "t1", d.failed, {
            ok: true,
            result: "late",
            outputs: {},
            durationMs: 1,
            cost: "0.0000",
            exitCode: null,
          }),
        )
        .thenNothing();
      // t2's attempt 2, on the other worker, completes as usual.
      spec(d.decider, ctx)
        .given([...running, failure, ...out, late])
        .when(completed("g1", "t2", d.other, { attempt: 2 }))
        .thenMatches((ds) => !ofType(ds, "TaskAssigned").some((a) => a.assigneeId === d.failed));
    });

    it("no new work goes to the failed worker until it recovers", () => {
      const [before, input] = [d.reach("g3", react("n1")).slice(0, -1), d.reach("g3", react("n1")).at(-1)!];
      spec(d.decider, ctx)
        .given(before)
        .when(input)
        .then([{ type: "TaskAssigned", taskId: "n1", assigneeId: d.other }]);
      // Back again: the least-loaded worker may be the recovered one.
      const back = directoryOf();
      back.apply(failure);
      back.apply(
        ev("AgentRecovered", { agentId: d.failed, tier: "WORKER", downtimeMs: 1_000, failureReason: "no heartbeat" }),
      );
      spec(d.decider, context({ directory: back }))
        .given(before)
        .when(input)
        .then([{ type: "TaskAssigned", taskId: "n1", assigneeId: d.failed }]);
    });

    it("an AgentRecovered hands waiting work to the recovered worker", () => {
      const full: Given[] = [react("x1"), react("x2")].flatMap((t) => [
        ...d.reach("g2", t),
        assigned("g2", t, d.other),
      ]);
      const out = spec(d.decider, ctx)
        .given([...full, ...running])
        .when(failure)
        .thenTypes(["TaskReassigned", "TaskReassigned"]);
      const recovered = ev("AgentRecovered", {
        agentId: d.failed,
        tier: "WORKER",
        downtimeMs: 1_000,
        failureReason: "no heartbeat",
      });
      const back = directoryOf();
      back.apply(failure);
      back.apply(recovered);
      spec(d.decider, context({ directory: back }))
        .given([...full, ...running, failure, ...out])
        .when(recovered)
        .then([
          { type: "TaskAssigned", taskId: "t1", assigneeId: d.failed, attempt: 2 },
          { type: "TaskAssigned", taskId: "t2", assigneeId: d.failed, attempt: 2 },
        ]);
    });
  });
}

describe("aamas governor: a task waiting for a specialization whose workers all failed", () => {
  const GOV = "aamas-governor-frontend";
  const failures = ["aamas-worker-frontend-react-1", "aamas-worker-frontend-react-2"].map((id) =>
    agentFailed(id, "aamas-mayor-frontend-1"),
  );
  const down = directoryOf();
  for (const f of failures) down.apply(f);
  const t = react("w1");
  const reach = [created("g9", t)];

  it("waits at the governor while no mayor has a react worker", () => {
    spec(governor, context({ directory: down }))
      .given(reach)
      .when(assigned("g9", t, GOV))
      .thenNothing();
  });

  it("goes down to the mayor when one of them recovers (not at the governor's next unrelated input)", () => {
    const recovered = ev("AgentRecovered", {
      agentId: "aamas-worker-frontend-react-2",
      tier: "WORKER",
      downtimeMs: 20_000,
      failureReason: "no heartbeat",
    });
    const back = directoryOf();
    for (const f of failures) back.apply(f);
    back.apply(recovered);
    spec(governor, context({ directory: back }))
      .given([...reach, assigned("g9", t, GOV)])
      .when(recovered)
      .then([{ type: "TaskAssigned", taskId: "w1", assigneeId: "aamas-mayor-frontend-1", assigneeTier: "MAYOR" }]);
  });
});
