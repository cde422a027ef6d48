/** `polity topology describe`: the roles' declarations, as text and JSON, with nothing started. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeTopology, formatTopology } from "../../processors/roles/describe.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { TEST_TOPOLOGY } from "../support/decider-spec.js";

describe("describeTopology", () => {
  it("describes every role: sources, state, sinks, group, transactional ids and extensions", () => {
    const d = describeTopology(TEST_TOPOLOGY);
    assert.deepEqual(
      d.roles.map((r) => r.role),
      ["president", "governor", "mayor", "worker", "policy", "health", "resources", "scaler"],
    );
    const president = d.roles.find((r) => r.role === "president")!;
    assert.equal(president.consumerGroup, "polity-president");
    assert.equal(president.transactionalIds, "polity-president-p<partition>");
    assert.equal(president.partitions, 6);
    assert.deepEqual(president.inputs, [
      "polity.goals.commands",
      "polity.goals.events",
      "polity.tasks.events",
      "polity.governance.events",
    ]);
    assert.deepEqual(president.state, ["polity.goals.events", "polity.tasks.events", "polity.governance.events"]);
    assert.ok(president.outputs.find((o) => o.topic === "polity.goals.events")!.types.includes("GoalCompleted"));
    assert.deepEqual(president.outputs.at(-1), { topic: "polity.deadletters", types: ["DeadLetter"] });
    assert.ok(president.reads.includes("SubmitGoal"));

    const extensions = Object.fromEntries(d.roles.map((r) => [r.role, r.extensions.map((e) => e.name)]));
    assert.deepEqual(extensions, {
      president: ["planning", "clock"],
      governor: ["agent-status", "clock"],
      mayor: ["agent-status", "clock"],
      worker: ["executions", "heartbeats"],
      policy: [],
      health: ["monitor-ticks"],
      resources: [],
      scaler: ["directory-caught-up"],
    });
    const scaler = d.roles.find((r) => r.role === "scaler")!;
    assert.deepEqual(scaler.state, []);
    assert.equal(scaler.partitions, 3);
  });

  it("follows the settings: the topic prefix, heartbeats, the autoscaler", () => {
    const autoscaled: TopologyConfig = {
      ...TEST_TOPOLOGY,
      topologies: {
        ...TEST_TOPOLOGY.topologies,
        aamas: {
          ...TEST_TOPOLOGY.topologies.aamas!,
          autoscale: { targetLoad: 0.7, min: 1, max: 4, cooldownMs: 10_000 },
        },
      },
    };
    const d = describeTopology(autoscaled, { topicPrefix: "staging.", heartbeats: false });
    assert.equal(d.topicPrefix, "staging.");
    const worker = d.roles.find((r) => r.role === "worker")!;
    assert.equal(worker.consumerGroup, "staging.polity-worker");
    assert.equal(worker.transactionalIds, "staging.polity-worker-p<partition>");
    assert.ok(worker.inputs.every((t) => t.startsWith("staging.polity.")));
    assert.deepEqual(
      worker.extensions.map((e) => e.name),
      ["executions"],
      "no heartbeats",
    );
    assert.equal(d.roles.find((r) => r.role === "health")!.runs, false);
    assert.deepEqual(
      d.roles.find((r) => r.role === "scaler")!.extensions.map((e) => e.name),
      ["directory-caught-up", "autoscale-sampling"],
    );
  });

  it("prints as text, and as JSON that reads back the same", () => {
    const d = describeTopology(TEST_TOPOLOGY);
    const text = formatTopology(d);
    assert.match(text, /^Topology \(topic prefix: none, 8 roles\)/);
    assert.match(text, /Role: worker \(tiers WORKER\)/);
    assert.match(text, /Transactional ids: polity-mayor-p<partition> \(partitions 0-5\)/);
    assert.match(text, /polity\.agents\.events <- AgentHeartbeat/);
    assert.match(text, /clock: decides on ClockTicked every 500 ms/);
    assert.deepEqual(JSON.parse(JSON.stringify(d)), d);
  });
});
