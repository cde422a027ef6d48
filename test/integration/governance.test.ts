/**
 * Governance policies on the real stack (processors/domain/policies/escalation-policy.ts, security.ts):
 * - ESCALATION with resolution SPLIT, for the top: a task that always fails is escalated through
 *   the mayor and the governor to the president, which splits it; the parts (which read their part
 *   from the environment, POLITY_INPUT_SPLIT_PART) succeed, the governor completes the task once,
 *   and the goal completes.
 * - SECURITY allowing StopGoal only to SYSTEM: a user's StopGoal is denied (PolicyEvaluated DENY
 *   naming the version), the same command sent again is not judged again, and the goal runs on to
 *   its completion.
 * - COMMUNICATION allowing queries only within a domain: a worker's QueryAsked to a worker of
 *   another domain is denied once (also when sent again), and one within the domain is answered.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import type { RunningHierarchy } from "../../processors/hierarchy.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { definePolicy, stopGoal, submitGoal } from "../../producers/commands.js";
import type { SentMessage } from "../../producers/writer.js";
import type { Payload, PolicyCategory } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { deployment, task, type TestDeployment } from "../support/hierarchy.js";
import { LogWatcher } from "../support/watch.js";

const user = { tenantId: "acme", userId: "carol" };
const admin = { tenantId: "acme", userId: "root" };

/**
 * ops runs each task's own shell command (2 workers of capacity 1); frontend and backend are
 * simulated. 2 attempts per delivery and 1 delivery in a domain, so a failing task reaches the top
 * after two failed attempts.
 */
const topology: TopologyConfig = {
  simulated: { seed: 5, meanDurationMs: 20, failureRate: 0 },
  topologies: {
    aamas: {
      retries: { worker: 2, domain: 1 },
      domains: {
        ops: {
          mayors: 1,
          workers: {
            script: { count: 2, capacity: 1, executor: "shell", shell: { command: "true", timeoutMs: 20_000 } },
          },
        },
        frontend: { mayors: 1, workers: { react: { count: 1, capacity: 2 } } },
        backend: { mayors: 1, workers: { api: { count: 2, capacity: 2 } } },
      },
    },
  },
};

type Of<T extends PolityEvent["type"]> = Extract<PolityEvent, { type: T }>["value"];

describe("governance: escalation, security and communication policies", () => {
  let d: TestDeployment;
  let h: RunningHierarchy;
  let governance: LogWatcher;

  const define = async (policyId: string, category: PolicyCategory, rules: object, scope: object = {}) => {
    await definePolicy(d.writer, admin, {
      policyId,
      name: policyId,
      category,
      description: `${policyId} rules`,
      rules: JSON.stringify(rules),
      appliesToTiers: [],
      domains: [],
      precedence: 100,
      effectiveFrom: null,
      ...scope,
    });
    await h.policies.known(policyId, 1);
  };

  before(async () => {
    d = await deployment(topology, "governance", []);
    h = await d.start();
    governance = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.governance.events"]);
    await define(
      "top-split",
      "ESCALATION",
      { resolution: "SPLIT", splitInto: 2 },
      { appliesToTiers: ["PRESIDENT"], domains: ["ops"] },
    );
    await define("stop-by-system", "SECURITY", {
      principle: "Only automated guards stop goals",
      commandTiers: { StopGoal: ["SYSTEM"] },
    });
    await define("peers-in-domain", "COMMUNICATION", { queryEdges: ["DOMAIN"] });
  });
  after(async () => {
    await governance?.stop();
    await d?.stop();
  });

  const all = <T extends PolityEvent["type"]>(goalId: string, type: T): Of<T>[] =>
    d.watch.of(goalId).flatMap((e) => (e.type === type ? [e.value as Of<T>] : []));
  const evaluations = (goalId: string): Of<"PolicyEvaluated">[] =>
    governance.of(goalId).flatMap((e) => (e.type === "PolicyEvaluated" ? [e.value] : []));
  /** Time for anything written twice to show (a goal's events are read within milliseconds). */
  const settle = () => new Promise((r) => setTimeout(r, 1_500));

  it("SPLIT at the top: an always-failing task is split, its parts succeed, the task completes once and the goal completes", async () => {
    // Fails unless it runs as a part of a split (the part's inputs reach the shell as POLITY_INPUT_*).
    const command = `if [ -n "$POLITY_INPUT_SPLIT_PART" ]; then echo "part $POLITY_INPUT_SPLIT_PART of $POLITY_INPUT_SPLIT_OF"; else echo broken >&2; exit 3; fi`;
    const { goalId } = await submitGoal(d.writer, user, {
      title: "split me",
      tasks: [task("work", "ops", "script", [], { inputs: { command } })],
    });
    const end = await d.watch.final(goalId, 90_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    await settle();

    const failed = all(goalId, "TaskFailed");
    assert.deepEqual(
      failed.map((f) => [f.taskId, f.attempt, f.reason]),
      [
        ["work", 1, `command exited with 3: ${command}`],
        ["work", 2, `command exited with 3: ${command}`],
      ],
    );
    assert.deepEqual(
      all(goalId, "TaskCreated").map((c) => [c.task.id, c.parentTaskId]),
      [
        ["work", null],
        ["work.part1", "work"],
        ["work.part2", "work"],
      ],
    );
    // The mayor's escalation (two attempts, one delivery) is passed up by the governor, which has no policy.
    const raised = all(goalId, "EscalationRaised");
    assert.deepEqual(
      raised.map((e) => [e.kind, e.fromTier, e.toTier]),
      [
        ["RETRIES_EXHAUSTED", "MAYOR", "GOVERNOR"],
        ["RETRIES_EXHAUSTED", "GOVERNOR", "PRESIDENT"],
      ],
    );
    const resolved = all(goalId, "EscalationResolved");
    assert.deepEqual(
      resolved.map((r) => [r.escalationId, r.outcome, r.newTaskIds.join(","), JSON.stringify(r.consultedPolicies)]),
      [
        [raised[0]!.escalationId, "ESCALATED_FURTHER", "", "[]"],
        [
          raised[1]!.escalationId,
          "SPLIT",
          "work.part1,work.part2",
          JSON.stringify([{ policyId: "top-split", version: 1 }]),
        ],
      ],
    );
    assert.equal(resolved[1]!.envelope.actor.tier, "PRESIDENT");
    // One ESCALATION evaluation, the president's, naming the version.
    const evaluated = evaluations(goalId).filter((e) => e.category === "ESCALATION");
    assert.equal(evaluated.length, 1, JSON.stringify(evaluated));
    assert.deepEqual(
      [evaluated[0]!.policyId, evaluated[0]!.policyVersion, evaluated[0]!.decision, evaluated[0]!.subject.type],
      ["top-split", 1, "ALLOW", "EscalationRaised"],
    );
    assert.deepEqual(evaluated[0]!.reasons, [
      'policy "top-split" v1 (resolution): RETRIES_EXHAUSTED is resolved by SPLIT',
      'task work is split into 2 parts (policy "top-split" v1 (splitInto)), run by Governor of ops',
    ]);
    // Each part ran once and succeeded; the task was completed once, by its governor, from its parts.
    const completions = all(goalId, "TaskCompleted");
    assert.deepEqual(completions.map((c) => c.taskId).sort(), ["work", "work.part1", "work.part2"]);
    const parts = completions.filter((c) => c.taskId !== "work").sort((a, b) => a.taskId.localeCompare(b.taskId));
    assert.deepEqual(
      parts.map((p) => p.result),
      ["part 1/2 of work", "part 2/2 of work"],
    );
    const [work] = completions.filter((c) => c.taskId === "work");
    assert.deepEqual([work!.agentId, work!.attempt], ["aamas-governor-ops", 3]);
    assert.match(
      work!.result,
      /^split into 2 parts, all completed: work.part1: part 1\/2 of work; work.part2: part 2\/2 of work$/,
    );
    assert.equal(all(goalId, "GoalFailed").length, 0);
    assert.equal(all(goalId, "GoalCompleted").length, 1);
    assert.equal(all(goalId, "GoalCompleted")[0]!.tasksCompleted, 3);
  });

  it("SECURITY: a user's StopGoal is denied once, naming the version, and the goal runs to completion", async () => {
    const { goalId } = await submitGoal(d.writer, user, {
      title: "keep going",
      tasks: [task("long", "ops", "script", [], { inputs: { command: "sleep 6; echo slept" } })],
    });
    await d.watch.until("long running", () => all(goalId, "TaskStarted").find((s) => s.taskId === "long"), 60_000);
    const stop = await stopGoal(d.writer, user, goalId, "I want it stopped");
    const denyOf = (command: SentMessage) =>
      evaluations(goalId).find((e) => e.envelope.causationId === command.envelope.eventId);
    await governance.until("the DENY", () => denyOf(stop), 30_000);
    // The same command again (a redelivery: the same event id), then a new one as a fence: commands
    // of one goal are decided in order, so once the fence is answered the repeat was decided too.
    await d.writer.send([
      {
        type: "StopGoal",
        context: {
          tenantId: user.tenantId,
          correlationId: goalId,
          actor: { id: user.userId, tier: "USER" },
          aggregate: { type: "GOAL", id: goalId, version: -1 },
        },
        payload: { goalId, reason: "I want it stopped" },
        envelope: stop.envelope,
      },
    ]);
    const fence = await stopGoal(d.writer, user, goalId, "please");
    await governance.until("the fence's DENY", () => denyOf(fence), 30_000);

    const end = await d.watch.final(goalId, 60_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    await settle();
    const denials = evaluations(goalId).filter((e) => e.subject.type === "StopGoal");
    assert.deepEqual(
      denials.map((e) => [e.envelope.causationId, e.decision, e.category, e.policyId, e.policyVersion]),
      [
        [stop.envelope.eventId, "DENY", "SECURITY", "stop-by-system", 1],
        [fence.envelope.eventId, "DENY", "SECURITY", "stop-by-system", 1],
      ],
    );
    assert.deepEqual(denials[0]!.reasons, [
      'policy "stop-by-system" v1 (commandTiers): StopGoal by carol (USER) is not allowed; allowed: tier SYSTEM [Only automated guards stop goals]',
    ]);
    assert.deepEqual(
      denials[0]!.consultedPolicies.map((p) => [p.policyId, p.version]),
      [["stop-by-system", 1]],
    );
    assert.equal(denials[0]!.envelope.actor.id, "aamas-president");
    assert.equal(all(goalId, "GoalStopped").length, 0);
    assert.equal(all(goalId, "TaskCancelled").length, 0);
    assert.deepEqual(
      all(goalId, "TaskCompleted").map((c) => [c.taskId, c.result]),
      [["long", "slept"]],
    );
    assert.equal(all(goalId, "GoalCompleted").length, 1);
  });

  it("COMMUNICATION: a query to a worker of another domain is denied once; one within the domain is answered", async () => {
    const { goalId } = await submitGoal(d.writer, user, {
      title: "an api and its screen",
      tasks: [task("api", "backend", "api"), task("ui", "frontend", "react", ["api"])],
    });
    const end = await d.watch.final(goalId, 60_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    const answerer = all(goalId, "TaskCompleted").find((c) => c.taskId === "api")!.agentId;
    const peer = ["aamas-worker-backend-api-1", "aamas-worker-backend-api-2"].find((w) => w !== answerer)!;
    const outsider = "aamas-worker-frontend-react-1";
    assert.ok(answerer.startsWith("aamas-worker-backend-api-"), answerer);

    const ask = (q: Payload<"QueryAsked">): Promise<SentMessage[]> =>
      d.writer.send([
        {
          type: "QueryAsked",
          context: {
            tenantId: user.tenantId,
            correlationId: goalId,
            actor: { id: q.fromAgentId, tier: q.fromTier },
            aggregate: { type: "TASK", id: "api", version: -1 },
          },
          payload: q,
        },
      ]);
    const across: Payload<"QueryAsked"> = {
      queryId: `q-${randomUUID()}`,
      goalId,
      taskId: "api",
      fromAgentId: outsider,
      fromTier: "WORKER",
      toAgentId: answerer,
      toTier: "WORKER",
      question: "what did the api task produce?",
      answerBy: null,
    };
    const [asked] = await ask(across);
    // The same query again (a new message, the same queryId): refused already, so not judged again.
    const [askedAgain] = await ask(across);
    // Then a query from the answerer's domain; its answer comes after both above were decided.
    const within: Payload<"QueryAsked"> = { ...across, queryId: `q-${randomUUID()}`, fromAgentId: peer };
    await ask(within);
    await d.watch.until("the answer within the domain", () =>
      all(goalId, "QueryAnswered").find((a) => a.queryId === within.queryId),
    );
    await governance.until(
      "both evaluations",
      () => evaluations(goalId).filter((e) => e.category === "COMMUNICATION").length >= 2,
    );
    await settle();

    const evaluated = evaluations(goalId).filter((e) => e.category === "COMMUNICATION");
    assert.deepEqual(
      evaluated.map((e) => [e.subject.id, e.subject.agentId, e.decision, e.policyId, e.policyVersion]),
      [
        [across.queryId, outsider, "DENY", "peers-in-domain", 1],
        [within.queryId, peer, "ALLOW", "peers-in-domain", 1],
      ],
    );
    assert.equal(evaluated[0]!.envelope.causationId, asked!.envelope.eventId);
    assert.notEqual(evaluated[0]!.envelope.causationId, askedAgain!.envelope.eventId);
    assert.deepEqual([evaluated[0]!.envelope.actor.id, evaluated[0]!.envelope.actor.tier], [answerer, "WORKER"]);
    assert.deepEqual(evaluated[0]!.reasons, [
      `policy "peers-in-domain" v1 (queryEdges): query ${across.queryId} from ${outsider} (WORKER) to ${answerer} (WORKER) travels no edge of the hierarchy; allowed: DOMAIN`,
    ]);
    const answers = all(goalId, "QueryAnswered");
    assert.deepEqual(
      answers.map((a) => [a.queryId, a.fromAgentId, a.toAgentId]),
      [[within.queryId, answerer, peer]],
    );
    assert.equal(answers[0]!.answer, `Task api: done by ${answerer}`);
    assert.equal(all(goalId, "QueryAsked").length, 3);
  });
});
