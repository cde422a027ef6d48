import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Payload } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { governor } from "../../processors/domain/governor.js";
import { mayor } from "../../processors/domain/mayor.js";
import { president } from "../../processors/domain/president.js";
import { worker } from "../../processors/domain/worker.js";
import { taskKey } from "../../processors/domain/kernel/keys.js";
import {
  asEvent,
  assigned,
  completed,
  context,
  created,
  DIRECTORY,
  ev,
  failed,
  retried,
  spec,
  started,
  submitGoal,
  task,
} from "../support/decider-spec.js";

const MAYOR = "aamas-mayor-frontend-1";
const GOVERNOR = "aamas-governor-frontend";
const R1 = "aamas-worker-frontend-react-1";
const R2 = "aamas-worker-frontend-react-2";
const SUB = "dgm-submaster-frontend";
const D1 = "dgm-worker-frontend-react-1";
const D2 = "dgm-worker-frontend-react-2";

const a = task("a", "frontend", "react");
const b = task("b", "frontend", "react", ["a"], { inputs: { text: "hello" } });

/** `t` in the hands of `workerId` through the aamas chain. */
const aamasHeld = (goalId: string, t = b, workerId = R1, attempt = 1): PolityEvent[] => [
  created(goalId, t),
  assigned(goalId, t, GOVERNOR),
  assigned(goalId, t, MAYOR),
  assigned(goalId, t, workerId, { attempt }),
];
const dgmHeld = (goalId: string, t = b, workerId = D1): PolityEvent[] => [
  created(goalId, t),
  assigned(goalId, t, SUB),
  assigned(goalId, t, workerId),
];
/** Task a done by R1 with an output. */
const aDone = (goalId: string): PolityEvent[] => [
  ...aamasHeld(goalId, a),
  started(goalId, "a", R1),
  completed(goalId, "a", R1, { result: "built a", outputs: { artifact: "a.tgz" } }),
];

function contextRequested(overrides: Partial<Payload<"ContextRequested">> = {}): PolityEvent {
  return ev("ContextRequested", {
    requestId: "req-1",
    goalId: "g1",
    taskId: "b",
    requesterId: R1,
    requesterTier: "WORKER",
    targetAgentId: null,
    need: "what a produced",
    keys: [],
    ...overrides,
  });
}

function queryAsked(overrides: Partial<Payload<"QueryAsked">> = {}): PolityEvent {
  return ev("QueryAsked", {
    queryId: "q-1",
    goalId: "g1",
    taskId: "a",
    fromAgentId: R2,
    fromTier: "WORKER",
    toAgentId: R1,
    toTier: "WORKER",
    question: "what did a give?",
    answerBy: null,
    ...overrides,
  });
}

describe("context requests", () => {
  it("the mayor answers its worker with the task's inputs and its dependencies' results and outputs", () => {
    spec(mayor)
      .given([...aDone("g1"), ...aamasHeld("g1")])
      .when(contextRequested())
      .then([
        {
          type: "ContextProvided",
          requestId: "req-1",
          goalId: "g1",
          taskId: "b",
          providerId: MAYOR,
          requesterId: R1,
          context: {
            "task.title": "Task b",
            "input.text": "hello",
            "a.result": "built a",
            "a.artifact": "a.tgz",
          },
          note: null,
        },
      ]);
  });

  it("answers only the keys asked for, by full or bare name, and notes the ones it does not have", () => {
    spec(mayor)
      .given([...aDone("g1"), ...aamasHeld("g1")])
      .when(contextRequested({ keys: ["artifact", "a.result", "text", "goal.description"] }))
      .then([
        {
          type: "ContextProvided",
          context: { artifact: "a.tgz", "a.result": "built a", text: "hello" },
          note: `${nameOf(MAYOR)} has no goal.description`,
        },
      ]);
  });

  it("says which dependencies are not done yet, and answers with what it has", () => {
    spec(mayor)
      .given([...aamasHeld("g1", a), ...aamasHeld("g1")])
      .when(contextRequested())
      .then([
        {
          type: "ContextProvided",
          context: { "task.title": "Task b", "input.text": "hello" },
          note: "not completed yet: a",
        },
      ]);
  });

  it("a redelivered request is not answered twice", () => {
    const first = spec(mayor)
      .given([...aDone("g1"), ...aamasHeld("g1")])
      .when(contextRequested()).decisions;
    spec(mayor)
      .given([...aDone("g1"), ...aamasHeld("g1"), contextRequested(), ...first])
      .when(contextRequested())
      .thenNothing();
  });

  it("a request addressed to another agent is left to it: the governor answers one sent to it", () => {
    const given = [...aDone("g1"), ...aamasHeld("g1")];
    spec(mayor)
      .given(given)
      .when(contextRequested({ targetAgentId: GOVERNOR }))
      .thenNothing();
    spec(governor)
      .given(given)
      .when(contextRequested({ targetAgentId: GOVERNOR }))
      .then([{ type: "ContextProvided", providerId: GOVERNOR, requesterId: R1 }]);
    // A worker's request without a target is the mayor's, not the governor's.
    spec(governor).given(given).when(contextRequested()).thenNothing();
  });

  it("the president, asked directly, adds the goal's title and constraints", () => {
    const submitted = submitGoal({ constraints: { style: "minimal" }, tasks: [a, b] });
    const goalEvents = spec(president)
      .when(submitted)
      .decisions.filter((d) => d.type === "GoalSubmitted");
    spec(president)
      .given([...goalEvents, ...aDone("g1"), ...aamasHeld("g1")])
      .when(contextRequested({ targetAgentId: "aamas-president", keys: ["goal.title", "style", "artifact"] }))
      .then([
        {
          type: "ContextProvided",
          providerId: "aamas-president",
          context: { "goal.title": "Build the shop", style: "minimal", artifact: "a.tgz" },
          note: null,
        },
      ]);
  });

  it("the dgm sub-master answers its worker", () => {
    spec(governor)
      .given([
        ...dgmHeld("g1", a),
        started("g1", "a", D1),
        completed("g1", "a", D1, { outputs: { artifact: "a.tgz" } }),
        ...dgmHeld("g1"),
      ])
      .when(contextRequested({ requesterId: D1 }))
      .then([{ type: "ContextProvided", providerId: SUB, requesterId: D1 }])
      .forEach((d) => assert.equal((d.payload as { context: Record<string, string> }).context["a.artifact"], "a.tgz"));
  });

  it("a request about a task it does not know is answered, saying so", () => {
    spec(mayor)
      .when(contextRequested({ taskId: "zz" }))
      .thenMatches(
        (ds) => ds.length === 1 && /knows no task zz/.test(String((ds[0]!.payload as { note: string }).note)),
      );
  });
});

describe("duplicate claims", () => {
  it("a second worker starting an attempt it was not given: the mayor raises the conflict and rules for the assignee", () => {
    const outcome = spec(mayor)
      .given(aamasHeld("g1"))
      .when(started("g1", "b", R2));
    outcome.then([
      {
        type: "ConflictRaised",
        conflictId: `conflict-g1-b-1-${R2}`,
        kind: "SCOPE_OVERLAP",
        partyAgentIds: [R1, R2],
        taskIds: ["b"],
        resolverTier: "MAYOR",
        resolverAgentId: MAYOR,
      },
      { type: "ConflictResolved", conflictId: `conflict-g1-b-1-${R2}`, winnerAgentId: R1 },
    ]);
    // The claim did not move the assignee's attempt.
    assert.equal(outcome.state.tasks.get(taskKey("g1", "b"))!.status, "ASSIGNED");
  });

  it("the claimant's completion is ignored by the state and reported nowhere", () => {
    const outcome = spec(mayor)
      .given([...aamasHeld("g1"), started("g1", "b", R1)])
      .when(completed("g1", "b", R2, { result: "mine" }));
    outcome.thenTypes(["ConflictRaised", "ConflictResolved"]);
    const t = outcome.state.tasks.get(taskKey("g1", "b"))!;
    assert.equal(t.status, "RUNNING");
    assert.equal(t.result, null);
  });

  it("the claimant's failure does not fail the assignee's attempt", () => {
    const outcome = spec(mayor)
      .given([...aamasHeld("g1"), started("g1", "b", R1)])
      .when(failed("g1", "b", R2));
    outcome.thenTypes(["ConflictRaised", "ConflictResolved"]);
    assert.equal(outcome.state.tasks.get(taskKey("g1", "b"))!.status, "RUNNING");
  });

  it("is raised once per attempt and claimant, also on redelivery", () => {
    const first = spec(mayor)
      .given(aamasHeld("g1"))
      .when(started("g1", "b", R2)).decisions;
    const given = [...aamasHeld("g1"), started("g1", "b", R2), ...first];
    spec(mayor)
      .given(given)
      .when(started("g1", "b", R2))
      .thenNothing();
    spec(mayor)
      .given(given)
      .when(completed("g1", "b", R2))
      .thenNothing();
  });

  it("the assignee's own reports and a late report of an earlier attempt raise nothing", () => {
    spec(mayor)
      .given(aamasHeld("g1"))
      .when(started("g1", "b", R1))
      .thenNothing();
    spec(mayor)
      .given([
        ...aamasHeld("g1"),
        failed("g1", "b", R1),
        retried("g1", "b", 2, [R1]),
        assigned("g1", b, R2, { attempt: 2 }),
      ])
      .when(started("g1", "b", R1, 1))
      .thenNothing();
  });

  it("the assignee completing still reports up after a claim was ruled on", () => {
    const first = spec(mayor)
      .given(aamasHeld("g1", a))
      .when(started("g1", "a", R2)).decisions;
    spec(mayor)
      .given([...aamasHeld("g1", a), started("g1", "a", R2), ...first, started("g1", "a", R1)])
      .when(completed("g1", "a", R1))
      .thenMatches((ds) => ds.some((d) => d.type === "ReportSubmitted"));
  });

  it("the dgm sub-master rules on its workers' claims", () => {
    spec(governor)
      .given(dgmHeld("g1"))
      .when(started("g1", "b", D2))
      .then([
        { type: "ConflictRaised", partyAgentIds: [D1, D2], resolverTier: "SUB_MASTER", resolverAgentId: SUB },
        { type: "ConflictResolved", winnerAgentId: D1 },
      ]);
  });
});

describe("peer queries", () => {
  it("a worker answers a peer about a task it completed with its result and outputs, once", () => {
    const given = aDone("g1");
    const answer = spec(worker)
      .given(given)
      .when(queryAsked())
      .then([
        {
          type: "QueryAnswered",
          queryId: "q-1",
          fromAgentId: R1,
          toAgentId: R2,
          answer: "built a",
          attachments: { artifact: "a.tgz" },
        },
      ]);
    spec(worker)
      .given([...given, queryAsked(), ...answer.map((d) => asEvent(d))])
      .when(queryAsked())
      .thenNothing();
  });

  it("about a task it does not hold, or one not done, it answers with the task's status", () => {
    spec(worker)
      .given(aamasHeld("g1", a))
      .when(queryAsked())
      .then([{ type: "QueryAnswered", answer: "task a is ASSIGNED (attempt 1)", attachments: {} }]);
    spec(worker)
      .given(aDone("g1"))
      .when(queryAsked({ toAgentId: R2, fromAgentId: R1 }))
      .then([
        {
          type: "QueryAnswered",
          fromAgentId: R2,
          answer: `task a is COMPLETED (attempt 1), not held by ${nameOf(R2)}`,
        },
      ]);
  });

  it("a query to an agent no host acts for is left alone", () => {
    spec(worker, ctxHosting(R2)).given(aDone("g1")).when(queryAsked()).thenNothing();
  });
});

function nameOf(agentId: string): string {
  return DIRECTORY.get(agentId)!.name;
}
function ctxHosting(...ids: string[]) {
  return context({ hosts: (id) => ids.includes(id) });
}
