import { describe, it } from "node:test";
import type { TaskSpec } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { TierDecider } from "../../processors/domain/decider.js";
import { governor } from "../../processors/domain/governor.js";
import { mayor } from "../../processors/domain/mayor.js";
import {
  assigned,
  completed,
  context,
  created,
  DIRECTORY,
  escalation,
  failed,
  retried,
  spec,
  task,
  type Given,
} from "../support/decider-spec.js";

/** The two tiers that hand tasks to workers: the aamas mayor and the dgm sub-master. */
interface Dispatcher {
  name: string;
  decider: TierDecider;
  id: string;
  superior: { id: string; tier: string };
  react: [string, string];
  css: string;
  /** The facts that put a task in the dispatcher's hands. */
  reach(goalId: string, t: TaskSpec, priority?: number): PolityEvent[];
}

const DISPATCHERS: Dispatcher[] = [
  {
    name: "aamas mayor",
    decider: mayor,
    id: "aamas-mayor-frontend-1",
    superior: { id: "aamas-governor-frontend", tier: "GOVERNOR" },
    react: ["aamas-worker-frontend-react-1", "aamas-worker-frontend-react-2"],
    css: "aamas-worker-frontend-css-1",
    reach: (goalId, t, priority = 5) => [
      created(goalId, t, { priority }),
      assigned(goalId, t, "aamas-governor-frontend", { priority }),
      assigned(goalId, t, "aamas-mayor-frontend-1", { priority }),
    ],
  },
  {
    name: "dgm sub-master",
    decider: governor,
    id: "dgm-submaster-frontend",
    superior: { id: "dgm-master", tier: "MASTER" },
    react: ["dgm-worker-frontend-react-1", "dgm-worker-frontend-react-2"],
    css: "dgm-worker-frontend-css-1",
    reach: (goalId, t, priority = 5) => [
      created(goalId, t, { priority }),
      assigned(goalId, t, "dgm-submaster-frontend", { priority }),
    ],
  },
];

const react = (id: string) => task(id, "frontend", "react");
const css = (id: string) => task(id, "frontend", "css");

/** The last fact of `reach`: the assignment the dispatcher decides on. */
function arrival(d: Dispatcher, goalId: string, t: TaskSpec, priority = 5) {
  const facts = d.reach(goalId, t, priority);
  return { before: facts.slice(0, -1), input: facts.at(-1)! };
}

for (const d of DISPATCHERS) {
  const [r1, r2] = d.react;

  /** A task the dispatcher already gave to `worker`. */
  const held = (goalId: string, t: TaskSpec, worker: string, attempt = 1): PolityEvent[] => [
    ...d.reach(goalId, t),
    assigned(goalId, t, worker, { attempt }),
  ];

  /** Attempts 1..n of `t` failed (retryable), each retried on the next worker, the last one not yet retried. */
  const failedAttempts = (
    t: TaskSpec,
    workers: string[],
    retryable = true,
  ): { history: Given[]; last: PolityEvent } => {
    const history: Given[] = [...d.reach("g1", t)];
    let last!: PolityEvent;
    workers.forEach((w, i) => {
      const attempt = i + 1;
      if (attempt > 1) history.push(last, retried("g1", t.id, attempt, workers.slice(0, i)));
      history.push(assigned("g1", t, w, { attempt }));
      last = failed("g1", t.id, w, { attempt, retryable, reason: `failure ${attempt}` });
    });
    return { history, last };
  };

  describe(`${d.name}: dispatch`, () => {
    it("gives a task to the least-loaded worker of its specialization", () => {
      const { before, input } = arrival(d, "g1", react("t2"));
      spec(d.decider)
        .given([...held("g1", react("t1"), r1), ...before])
        .when(input)
        .then([
          {
            type: "TaskAssigned",
            goalId: "g1",
            taskId: "t2",
            assigneeId: r2,
            assigneeTier: "WORKER",
            assignedBy: d.id,
            attempt: 1,
          },
        ]);
    });

    it("breaks a tie in load by the lower agent id", () => {
      const { before, input } = arrival(d, "g1", react("t1"));
      spec(d.decider)
        .given(before)
        .when(input)
        .then([{ type: "TaskAssigned", taskId: "t1", assigneeId: r1 }]);
    });

    it("counts a worker's load across goals", () => {
      const { before, input } = arrival(d, "g2", react("t1"));
      spec(d.decider)
        .given([...held("g1", react("a"), r1), ...held("g1", react("b"), r1), ...held("g1", react("c"), r2), ...before])
        .when(input)
        .then([{ type: "TaskAssigned", goalId: "g2", assigneeId: r2 }]);
    });

    it("keeps a task waiting when every fitting worker is full, even with other workers free", () => {
      const { before, input } = arrival(d, "g1", css("c2"));
      spec(d.decider)
        .given([...held("g1", css("c1"), d.css), ...before])
        .when(input)
        .thenNothing();
    });

    it("dispatches the most urgent waiting task to the slot a completion frees", () => {
      const full = [
        ...held("g1", react("a"), r1),
        ...held("g1", react("b"), r1),
        ...held("g1", react("c"), r2),
        ...held("g1", react("d"), r2),
      ];
      const low = arrival(d, "g1", react("low"), 3);
      const high = arrival(d, "g1", react("high"), 8);
      spec(d.decider)
        .given([...full, ...low.before])
        .when(low.input)
        .thenNothing();
      spec(d.decider)
        .given([...full, ...low.before, low.input, ...high.before])
        .when(high.input)
        .thenNothing();
      spec(d.decider)
        .given([...full, ...low.before, low.input, ...high.before, high.input])
        .when(completed("g1", "c", r2))
        .then([{ type: "TaskAssigned", taskId: "high", assigneeId: r2 }]);
    });

    it("serves equal priorities first come, first served", () => {
      const full = [...held("g1", react("a"), r1), ...held("g1", react("b"), r1)];
      const first = d.reach("g1", react("first"));
      const second = d.reach("g1", react("second"));
      spec(d.decider)
        .given([...full, ...first, ...second, ...held("g1", react("c"), r2), ...held("g1", react("d"), r2)])
        .when(completed("g1", "a", r1))
        .then([{ type: "TaskAssigned", taskId: "first", assigneeId: r1 }]);
    });

    it("does not dispatch a task already held by a worker again", () => {
      spec(d.decider)
        .given(d.reach("g1", react("t1")))
        .when(assigned("g1", react("t1"), r1))
        .thenNothing();
    });
  });

  describe(`${d.name}: failures`, () => {
    it("retries a retryable failure below maxAttempts, excluding the worker that failed", () => {
      const { history, last } = failedAttempts(react("t1"), [r1]);
      spec(d.decider)
        .given(history)
        .when(last)
        .then([
          {
            type: "TaskRetried",
            goalId: "g1",
            taskId: "t1",
            attempt: 2,
            maxAttempts: 3,
            reason: "failure 1",
            excludeAgentIds: [r1],
          },
        ]);
    });

    it("gives the retried task to another worker than the one that failed, though it is busier", () => {
      const { history, last } = failedAttempts(react("t1"), [r1]);
      const retry = retried("g1", "t1", 2, [r1]);
      spec(d.decider)
        .given([...held("g1", react("other"), r2), ...history, last])
        .when(retry)
        .then([{ type: "TaskAssigned", taskId: "t1", assigneeId: r2, attempt: 2 }]);
    });

    it("falls back to a worker that failed when no other fits", () => {
      const { history, last } = failedAttempts(react("t1"), [r1]);
      const retry = retried("g1", "t1", 2, [r1]);
      spec(d.decider)
        .given([...held("g1", react("x"), r2), ...held("g1", react("y"), r2), ...history, last])
        .when(retry)
        .then([{ type: "TaskAssigned", taskId: "t1", assigneeId: r1, attempt: 2 }]);
    });

    it("escalates RETRIES_EXHAUSTED to its superior when the last attempt fails", () => {
      const { history, last } = failedAttempts(react("t1"), [r1, r2, r1]);
      // One delivery in the domain, so a sub-master does not deliver the task again itself.
      const oneDelivery = context({ retryLimits: () => ({ worker: 3, domain: 1 }) });
      const decisions = spec(d.decider, oneDelivery)
        .given(history)
        .when(last)
        .then([
          {
            type: "EscalationRaised",
            escalationId: `esc-g1-t1-3-${d.id}`,
            goalId: "g1",
            taskId: "t1",
            kind: "RETRIES_EXHAUSTED",
            fromAgentId: d.id,
            toAgentId: d.superior.id,
            toTier: d.superior.tier as never,
            reason: `${DIRECTORY.get(d.id)!.name} escalates: task t1 failed 3 of 3 attempts`,
            reasonChain: [
              `attempt 1 on ${r1} failed: failure 1`,
              `attempt 2 on ${r2} failed: failure 2`,
              `attempt 3 on ${r1} failed: failure 3`,
            ],
          },
        ]);
      // Decided again once the escalation is folded: it is not raised twice.
      spec(d.decider, oneDelivery)
        .given([...history, last, ...decisions])
        .when(last)
        .thenNothing();
    });

    it("escalates a failure that cannot be retried at once as TASK_FAILURE", () => {
      const { history, last } = failedAttempts(react("t1"), [r1], false);
      spec(d.decider)
        .given(history)
        .when(last)
        .then([
          {
            type: "EscalationRaised",
            kind: "TASK_FAILURE",
            toAgentId: d.superior.id,
            reason: `${DIRECTORY.get(d.id)!.name} escalates: task t1 failed and cannot be retried`,
            reasonChain: [`attempt 1 on ${r1} failed: failure 1`],
          },
        ]);
    });

    it("ignores a stale failure of an earlier attempt", () => {
      const { history, last } = failedAttempts(react("t1"), [r1, r2]);
      const stale = failed("g1", "t1", r1, { attempt: 1 });
      spec(d.decider)
        .given([...history, last, retried("g1", "t1", 3, [r1, r2]), assigned("g1", react("t1"), r1, { attempt: 3 })])
        .when(stale)
        .thenNothing();
    });
  });

  describe(`${d.name}: reports`, () => {
    it("reports up once when every task it held for the goal is completed", () => {
      const history = [...held("g1", react("a"), r1), ...held("g1", react("b"), r2), completed("g1", "a", r1)];
      const decisions = spec(d.decider)
        .given(history)
        .when(completed("g1", "b", r2, { cost: "0.5000" }))
        .then([
          {
            type: "ReportSubmitted",
            goalId: "g1",
            taskIds: ["a", "b"],
            fromAgentId: d.id,
            toAgentId: d.superior.id,
            kind: "COMPLETION",
            phase: null,
            metrics: { tasksDone: 2, cost: 0.5 },
          },
        ]);
      spec(d.decider)
        .given([...history, completed("g1", "b", r2), ...decisions])
        .when(completed("g1", "b", r2))
        .thenNothing();
    });

    it("waits for the whole of its domain's part, even when the tasks it holds now are done", () => {
      // "c" depends on "a": created with the goal, not yet released when "a" completes.
      const c = task("c", "frontend", "react", ["a"]);
      spec(d.decider)
        .given([...held("g1", react("a"), r1), created("g1", c)])
        .when(completed("g1", "a", r1))
        .thenNothing();
    });
  });
}

describe("governor (aamas): allocation to mayors", () => {
  const GOV = "aamas-governor-backend";
  const M1 = "aamas-mayor-backend-1"; // api-1 and database-1
  const M2 = "aamas-mayor-backend-2"; // api-2
  const api = (id: string) => task(id, "backend", "api");
  const db = (id: string) => task(id, "backend", "database");
  const atMayor = (id: string, m: string): PolityEvent[] => [
    created("g1", api(id)),
    assigned("g1", api(id), GOV),
    assigned("g1", api(id), m),
  ];

  it("assigns a task to the mayor with the fewest open tasks", () => {
    spec(governor)
      .given([...atMayor("x", M1), ...atMayor("y", M1), created("g1", api("t"))])
      .when(assigned("g1", api("t"), GOV))
      .then([
        { type: "TaskAssigned", taskId: "t", assigneeId: M2, assigneeTier: "MAYOR", assignedBy: GOV, attempt: 1 },
      ]);
  });

  it("only considers mayors with workers of the task's specialization", () => {
    spec(governor)
      .given([...atMayor("x", M1), ...atMayor("y", M1), created("g1", db("t"))])
      .when(assigned("g1", db("t"), GOV))
      .then([{ type: "TaskAssigned", taskId: "t", assigneeId: M1 }]);
  });

  it("spreads tasks released together over its mayors, most urgent first", () => {
    const low = task("low", "backend", "api", [], { priority: 2 });
    const high = task("high", "backend", "api", [], { priority: 9 });
    spec(governor)
      .given([
        created("g1", low, { priority: 2 }),
        created("g1", high, { priority: 9 }),
        assigned("g1", low, GOV, { priority: 2 }),
      ])
      .when(assigned("g1", high, GOV, { priority: 9 }))
      .then([
        { type: "TaskAssigned", taskId: "high", assigneeId: M1, priority: 9 },
        { type: "TaskAssigned", taskId: "low", assigneeId: M2, priority: 2 },
      ]);
  });

  it("leaves a failure to the mayor: no retry at the governor", () => {
    spec(governor)
      .given([...atMayor("t", M1), assigned("g1", api("t"), "aamas-worker-backend-api-1")])
      .when(failed("g1", "t", "aamas-worker-backend-api-1"))
      .thenNothing();
  });

  it("passes an escalation it cannot settle up to the president", () => {
    const raised = escalation({
      escalationId: "esc-1",
      goalId: "g1",
      taskId: "t",
      fromAgentId: M1,
      toAgentId: GOV,
      reason: "task t failed 3 of 3 attempts",
    });
    const history = atMayor("t", M1);
    const decisions = spec(governor)
      .given(history)
      .when(raised)
      .then([
        {
          type: "EscalationRaised",
          escalationId: `esc-1>${GOV}`,
          goalId: "g1",
          taskId: "t",
          kind: "RETRIES_EXHAUSTED",
          fromAgentId: GOV,
          fromTier: "GOVERNOR",
          toAgentId: "aamas-president",
          toTier: "PRESIDENT",
          reason: "Governor of backend cannot settle it",
          reasonChain: ["task t failed 3 of 3 attempts"],
          previousEscalationId: "esc-1",
        },
        { type: "EscalationResolved", escalationId: "esc-1", outcome: "ESCALATED_FURTHER", taskId: "t" },
      ]);
    spec(governor)
      .given([...history, raised, ...decisions])
      .when(raised)
      .thenNothing();
  });

  it("does not act on an escalation addressed to an agent it does not host", () => {
    spec(governor, context({ hosts: (id) => id === GOV }))
      .given(atMayor("t", M1))
      .when(escalation({ goalId: "g1", taskId: "t", toAgentId: "aamas-governor-frontend" }))
      .thenNothing();
  });
});
