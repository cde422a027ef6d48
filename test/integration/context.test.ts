/**
 * Context requests in a running hierarchy: an agent outside the platform
 * (processors/examples/external-agent.ts) asks its mayor for context before working on a task that
 * depends on another, receives the dependency's output in a ContextProvided, and completes the goal
 * with it.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { kafkaClient } from "../../lib/kafka.js";
import { startExternalAgent, type RunningExternalAgent } from "../../processors/examples/external-agent.js";
import { startHierarchy, type RunningHierarchy } from "../../processors/hierarchy.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { submitGoal } from "../../producers/commands.js";
import { EventWriter } from "../../producers/writer.js";
import { TOPICS, physicalTopic } from "../../schemas/catalog.js";
import { Codec } from "../../schemas/codec.js";
import type { ContextProvided, TaskSpec } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { urls } from "../support/infra.js";
import { LogWatcher } from "../support/watch.js";

function spec(id: string, fields: Partial<TaskSpec> = {}): TaskSpec {
  return {
    id,
    title: `task ${id}`,
    description: null,
    domain: "ops",
    specialization: null,
    phase: null,
    dependsOn: [],
    estimatedEffortMs: null,
    priority: null,
    inputs: {},
    timeoutMs: null,
    ...fields,
  };
}

describe("an external agent asks its mayor for context", () => {
  const prefix = `t-ctx-${randomUUID().slice(0, 8)}.`;
  const kafka = kafkaClient(urls.kafkaBrokers, "polity-test-context", true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const workRoot = fs.mkdtempSync(path.join(os.tmpdir(), "polity-ctx-"));
  const who = { tenantId: "t-ctx", userId: "tester" };
  const mayor = "aamas-mayor-ops-1";
  const external = "aamas-worker-ops-docs-1";
  const topology: TopologyConfig = {
    simulated: { seed: 1, meanDurationMs: 0, failureRate: 0 },
    topologies: {
      aamas: {
        domains: {
          ops: {
            mayors: 1,
            workers: {
              script: {
                count: 1,
                capacity: 1,
                executor: "shell",
                shell: { command: "echo built $POLITY_TASK_ID", timeoutMs: 10_000 },
              },
              docs: { count: 1, capacity: 1, executor: "external" },
            },
          },
        },
      },
    },
  };
  let hierarchy: RunningHierarchy | undefined;
  let watch: LogWatcher | undefined;
  let writer: EventWriter | undefined;
  let agent: RunningExternalAgent | undefined;

  const events = <T extends PolityEvent["type"]>(goalId: string, type: T) =>
    watch!.of(goalId).filter((e): e is Extract<PolityEvent, { type: T }> => e.type === type);

  before(async () => {
    hierarchy = await startHierarchy({ kafka, codec, topology, topicPrefix: prefix, workRoot });
    watch = await LogWatcher.start(kafka, codec, prefix, ["polity.goals.events", "polity.tasks.events"]);
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
  });

  after(async () => {
    await agent?.stop().catch(() => undefined);
    await watch?.stop().catch(() => undefined);
    await writer?.disconnect().catch(() => undefined);
    await hierarchy?.stop().catch(() => undefined);
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: TOPICS.map((t) => physicalTopic(t.name, prefix)) }).catch(() => undefined);
    await admin.disconnect();
    fs.rmSync(workRoot, { recursive: true, force: true });
  });

  test("the mayor answers with the dependency's output, and the agent's work uses it", async () => {
    const received: (ContextProvided | null)[] = [];
    agent = await startExternalAgent({
      kafka,
      codec,
      agentId: external,
      superiorId: mayor,
      domain: "ops",
      specialization: "docs",
      topicPrefix: prefix,
      requestContext: { need: "what the build printed", keys: ["output", "build.result", "audience"] },
      work: async (_task, _signal, context) => {
        received.push(context);
        const built = context?.context["build.result"] ?? "nothing";
        return { result: `documented ${built}`, outputs: { for: context?.context.audience ?? "" }, cost: "0.0100" };
      },
    });

    const { goalId } = await submitGoal(writer!, who, {
      title: "Build, then document what was built",
      tasks: [
        spec("build", { title: "Build it", specialization: "script" }),
        spec("docs", {
          title: "Write the docs",
          specialization: "docs",
          dependsOn: ["build"],
          inputs: { audience: "operators" },
        }),
      ],
    });
    const final = await watch!.final(goalId, 60_000);
    assert.equal(final.type, "GoalCompleted", JSON.stringify(final.value));

    const [request, ...moreRequests] = events(goalId, "ContextRequested").map((e) => e.value);
    assert.equal(moreRequests.length, 0, "one request");
    assert.equal(request?.requesterId, external);
    assert.equal(request?.taskId, "docs");
    assert.equal(request?.targetAgentId, null);

    const answers = events(goalId, "ContextProvided").map((e) => e.value);
    assert.equal(answers.length, 1, "answered once");
    const answer = answers[0]!;
    assert.equal(answer.requestId, request!.requestId);
    assert.equal(answer.providerId, mayor);
    assert.equal(answer.requesterId, external);
    assert.deepEqual(
      { ...answer.context },
      {
        output: "built build\n",
        "build.result": "built build",
        audience: "operators",
      },
    );
    assert.equal(answer.note, null);
    assert.equal(answer.envelope.causationId, request!.envelope.eventId);

    assert.equal(received.length, 1);
    assert.equal(received[0]?.requestId, request!.requestId);
    const [docs] = events(goalId, "TaskCompleted")
      .map((e) => e.value)
      .filter((v) => v.taskId === "docs");
    assert.equal(docs?.agentId, external);
    assert.equal(docs?.result, "documented built build");
    assert.equal(docs?.outputs.for, "operators");
  });
});
