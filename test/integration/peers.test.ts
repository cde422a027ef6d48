/**
 * Peers on the real stack (processors/domain/context.ts): a worker's question to another worker
 * (QueryAsked) is answered once, by that worker, from the task it did; a worker reporting on an
 * attempt assigned to another (a duplicate claim) makes the mayor holding the task raise a
 * conflict and rule for the assignee, the report moves nothing, and the goal completes once.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { conflictIdOf } from "../../processors/domain/context.js";
import { reportTaskOutcome, submitGoal } from "../../producers/commands.js";
import type { SentMessage } from "../../producers/writer.js";
import type { Payload } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { deployment, task, testTopology, type TestDeployment } from "../support/hierarchy.js";

const who = { tenantId: "acme", userId: "carol" };

type Of<T extends PolityEvent["type"]> = Extract<PolityEvent, { type: T }>["value"];

describe("peers: queries and duplicate claims", () => {
  let d: TestDeployment;
  before(async () => {
    d = await deployment(testTopology(), "peers", []);
    await d.start();
  });
  after(async () => {
    await d?.stop();
  });

  const all = <T extends PolityEvent["type"]>(goalId: string, type: T): Of<T>[] =>
    d.watch.of(goalId).flatMap((e) => (e.type === type ? [e.value as Of<T>] : []));
  /** Position of an event in the goal's log (one partition of polity.tasks.events: offset order). */
  const indexOf = (goalId: string, pick: (e: PolityEvent) => boolean) => d.watch.of(goalId).findIndex(pick);

  /** A QueryAsked from one worker to another, as an agent on Kafka writes it. */
  const ask = (q: Payload<"QueryAsked">): Promise<SentMessage[]> =>
    d.writer.send([
      {
        type: "QueryAsked",
        context: {
          tenantId: who.tenantId,
          correlationId: q.goalId,
          actor: { id: q.fromAgentId, tier: q.fromTier },
          aggregate: { type: "TASK", id: q.taskId!, version: -1 },
        },
        payload: q,
      },
    ]);

  it("a peer's question is answered once, by the peer, from the task it did", async () => {
    const { goalId } = await submitGoal(d.writer, who, {
      title: "an api and its screen",
      tasks: [task("api", "backend", "api"), task("ui", "frontend", "react", ["api"])],
    });
    const end = await d.watch.final(goalId, 60_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    const [api, ...moreApi] = all(goalId, "TaskCompleted").filter((c) => c.taskId === "api");
    const [ui] = all(goalId, "TaskCompleted").filter((c) => c.taskId === "ui");
    assert.equal(moreApi.length, 0);
    const answerer = api!.agentId;
    const asker = ui!.agentId;
    // A worker that did not do the api: the other api worker of aamas backend.
    const bystander = ["aamas-worker-backend-api-1", "aamas-worker-backend-api-2"].find((w) => w !== answerer)!;
    assert.ok(answerer.startsWith("aamas-worker-backend-api-"), answerer);
    assert.ok(asker.startsWith("aamas-worker-frontend-react-"), asker);

    const query: Payload<"QueryAsked"> = {
      queryId: `q-${randomUUID()}`,
      goalId,
      taskId: "api",
      fromAgentId: asker,
      fromTier: "WORKER",
      toAgentId: answerer,
      toTier: "WORKER",
      question: "what did the api task produce?",
      answerBy: null,
    };
    const [asked] = await ask(query);
    // The same query again (same queryId): answered already, so not again.
    await ask(query);
    // Then another query, to a worker that did not do the task. Its answer comes after both
    // above were decided (one partition, in order), so by then a second answer would be in the log.
    const other: Payload<"QueryAsked"> = { ...query, queryId: `q-${randomUUID()}`, toAgentId: bystander };
    const [askedOther] = await ask(other);
    await d.watch.until("the bystander's answer", () =>
      all(goalId, "QueryAnswered").find((a) => a.queryId === other.queryId),
    );

    const answers = all(goalId, "QueryAnswered").filter((a) => a.queryId === query.queryId);
    assert.equal(answers.length, 1, `answered once: ${JSON.stringify(answers)}`);
    const answer = answers[0]!;
    assert.deepEqual(
      [answer.fromAgentId, answer.toAgentId, answer.taskId, answer.goalId],
      [answerer, asker, "api", goalId],
    );
    assert.equal(answer.answer, api!.result);
    assert.equal(answer.answer, `Task api: done by ${answerer}`);
    assert.deepEqual({ ...answer.attachments }, { ...api!.outputs });
    assert.deepEqual({ ...answer.attachments }, { by: answerer, attempt: "1" });
    assert.equal(answer.envelope.causationId, asked!.envelope.eventId);
    assert.deepEqual([answer.envelope.actor.id, answer.envelope.actor.tier], [answerer, "WORKER"]);

    const others = all(goalId, "QueryAnswered").filter((a) => a.queryId === other.queryId);
    assert.equal(others.length, 1, "the bystander answered once");
    assert.equal(others[0]!.fromAgentId, bystander);
    assert.equal(others[0]!.toAgentId, asker);
    assert.equal(
      others[0]!.answer,
      `task api is COMPLETED (attempt 1), not held by api worker ${bystander.slice(-1)} of backend`,
    );
    assert.deepEqual({ ...others[0]!.attachments }, {});
    assert.equal(others[0]!.envelope.causationId, askedOther!.envelope.eventId);
    assert.equal(all(goalId, "QueryAnswered").length, 2, "two queries, two answers");
    assert.equal(all(goalId, "QueryAsked").length, 3);
  });

  it("a second worker's claim on a task raises one conflict, ruled for the assignee; the goal completes once", async () => {
    const { goalId } = await submitGoal(d.writer, who, {
      title: "a slow screen, then its style",
      tasks: [
        task("slow", "frontend", "react", [], { estimatedEffortMs: 4_000 }),
        task("style", "frontend", "css", ["slow"]),
      ],
    });
    const started = await d.watch.until("the slow task started", () =>
      all(goalId, "TaskStarted").find((s) => s.taskId === "slow"),
    );
    const assignee = started.agentId;
    const claimant = ["aamas-worker-frontend-react-1", "aamas-worker-frontend-react-2"].find((w) => w !== assignee)!;
    assert.notEqual(claimant, undefined, assignee);
    const attempt = started.attempt;
    const ids = { goalId, taskId: "slow", attempt };
    const impostor = { tenantId: who.tenantId, agentId: claimant };

    // The claimant says it started the attempt, then that it completed it, twice.
    await d.writer.send([
      {
        type: "TaskStarted",
        context: {
          tenantId: who.tenantId,
          correlationId: goalId,
          actor: { id: claimant, tier: "WORKER" },
          aggregate: { type: "TASK", id: "slow", version: -1 },
        },
        payload: { ...ids, agentId: claimant, executor: "simulated" },
      },
    ]);
    const claim = { completed: { result: "I did it", outputs: { by: claimant }, cost: "0.0010", durationMs: 5 } };
    const rogue = await reportTaskOutcome(d.writer, impostor, ids, claim);
    await reportTaskOutcome(d.writer, impostor, ids, claim);

    const end = await d.watch.final(goalId, 60_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    // Time for anything written twice to show (the goal's events are read within milliseconds).
    await new Promise((r) => setTimeout(r, 1_500));

    const completions = all(goalId, "TaskCompleted").filter((c) => c.taskId === "slow");
    const byAssignee = completions.filter((c) => c.agentId === assignee);
    const byClaimant = completions.filter((c) => c.agentId === claimant);
    assert.equal(byAssignee.length, 1, "the assignee completed it once");
    assert.equal(byClaimant.length, 2, "the claimant's two reports, and nothing else");
    assert.equal(completions.length, 3);
    assert.equal(byAssignee[0]!.result, `Task slow: done by ${assignee}`);
    // The claims were written while the assignee still worked (the premise of the test).
    const at = (agentId: string) =>
      indexOf(goalId, (e) => e.type === "TaskCompleted" && e.value.taskId === "slow" && e.value.agentId === agentId);
    assert.ok(at(claimant) < at(assignee), "the claim precedes the assignee's completion");

    // One conflict for the (attempt, claimant), raised and ruled for the assignee by its mayor.
    const conflictId = conflictIdOf(goalId, "slow", attempt, claimant);
    const raised = all(goalId, "ConflictRaised");
    const resolved = all(goalId, "ConflictResolved");
    assert.equal(raised.length, 1, `one ConflictRaised: ${JSON.stringify(raised)}`);
    assert.equal(resolved.length, 1, `one ConflictResolved: ${JSON.stringify(resolved)}`);
    const r = raised[0]!;
    assert.deepEqual(
      [r.conflictId, r.kind, [...r.partyAgentIds], [...r.taskIds], r.resolverAgentId, r.resolverTier],
      [conflictId, "SCOPE_OVERLAP", [assignee, claimant], ["slow"], "aamas-mayor-frontend-1", "MAYOR"],
    );
    assert.match(r.description, new RegExp(`${claimant} started attempt ${attempt} of task slow`));
    assert.deepEqual([resolved[0]!.conflictId, resolved[0]!.winnerAgentId], [conflictId, assignee]);
    assert.deepEqual(
      [r.envelope.actor.id, resolved[0]!.envelope.actor.id],
      ["aamas-mayor-frontend-1", "aamas-mayor-frontend-1"],
    );
    const conflictAt = indexOf(goalId, (e) => e.type === "ConflictRaised");
    const resolvedAt = indexOf(goalId, (e) => e.type === "ConflictResolved");
    assert.ok(conflictAt < resolvedAt && resolvedAt < at(assignee), "raised, then ruled, before the assignee finished");

    // The claims moved nothing: the next task waited for the assignee's completion, the attempt
    // stayed with it, and everything else happened once.
    const styleAssigned = indexOf(
      goalId,
      (e) => e.type === "TaskAssigned" && e.value.taskId === "style" && e.value.assigneeTier === "WORKER",
    );
    assert.ok(styleAssigned > at(assignee), "style was handed out only after the assignee completed slow");
    assert.deepEqual(
      all(goalId, "TaskAssigned")
        .filter((a) => a.taskId === "slow" && a.assigneeTier === "WORKER")
        .map((a) => [a.assigneeId, a.attempt]),
      [[assignee, attempt]],
    );
    assert.deepEqual(all(goalId, "TaskReassigned"), []);
    assert.deepEqual(all(goalId, "TaskRetried"), []);
    assert.deepEqual(
      all(goalId, "TaskStarted")
        .filter((s) => s.taskId === "slow")
        .map((s) => s.agentId),
      [assignee, claimant],
    );
    const style = all(goalId, "TaskCompleted").filter((c) => c.taskId === "style");
    assert.equal(style.length, 1);
    assert.equal(d.watch.of(goalId).filter((e) => e.type === "GoalCompleted").length, 1, "the goal completed once");
    assert.equal(
      indexOf(goalId, (e) => e.type === "TaskCompleted" && e.value.envelope.eventId === rogue.envelope.eventId),
      at(claimant),
    );
  });
});
