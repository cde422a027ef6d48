/**
 * Scaling on the real stack: ScaleAgents adds workers that the worker host runs and the mayor
 * gives work to, and retires workers that get no more work; the autoscaler grows a group under
 * load and shrinks it when the load is gone.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { TopologyConfig } from "../../processors/topology.js";
import { scaleAgents, submitGoal } from "../../producers/commands.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { deployment, task, testTopology } from "../support/hierarchy.js";
import { LogWatcher } from "../support/watch.js";

const who = { tenantId: "acme", userId: "bob" };
const HEARTBEAT_MS = 300;
const REACT = (n: number) => `aamas-worker-frontend-react-${n}`;

const ofType = (w: LogWatcher, type: string): PolityEvent[] =>
  w.seen.map((s) => s.event).filter((e) => e.type === type);
const field = <T>(e: PolityEvent, name: string) => (e.value as unknown as Record<string, T>)[name]!;

function reactTasks(prefix: string, n: number, effortMs: number) {
  return Array.from({ length: n }, (_, i) =>
    task(`${prefix}${i + 1}`, "frontend", "react", [], { estimatedEffortMs: effortMs }),
  );
}

describe("scaling: ScaleAgents and the autoscaler", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  it("scales a group up (the new workers take tasks) and down (the retired ones get none)", async () => {
    const topology: TopologyConfig = { ...testTopology(500), heartbeatIntervalMs: HEARTBEAT_MS };
    const d = await deployment(topology, "scaling", "all", { heartbeats: true });
    cleanup.push(() => d.stop());
    const agents = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.agents.events"]);
    cleanup.push(() => agents.stop());
    const group = { tier: "WORKER" as const, topology: "aamas" as const, domain: "frontend", specialization: "react" };

    await scaleAgents(d.writer, who, { ...group, targetCount: 4, reason: "more react work coming" });
    const up = await agents.until("AgentsScaled up", () => ofType(agents, "AgentsScaled")[0], 60_000);
    assert.equal(field<number>(up, "previousCount"), 2);
    assert.equal(field<number>(up, "newCount"), 4);
    assert.deepEqual(field<string[]>(up, "addedAgentIds"), [REACT(3), REACT(4)]);
    // The registrations land on other partitions (keyed by agent): read them too.
    await agents.until(
      "AgentRegistered for the new workers",
      () => {
        const ids = ofType(agents, "AgentRegistered").map((e) => field<string>(e, "agentId"));
        return ids.includes(REACT(3)) && ids.includes(REACT(4));
      },
      30_000,
    );
    // The new workers are hosted: they heartbeat.
    await agents.until(
      "heartbeats of the new workers",
      () => ofType(agents, "AgentHeartbeat").some((e) => field<string>(e, "agentId") === REACT(4)),
      30_000,
    );

    // Eight parallel tasks fill all four workers (capacity 2 each).
    const first = await submitGoal(d.writer, who, { title: "wide", tasks: reactTasks("a", 8, 1_500) });
    const end = await d.watch.final(first.goalId, 90_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    const ranOn = new Set(
      d.watch
        .of(first.goalId)
        .filter((e) => e.type === "TaskStarted")
        .map((e) => field<string>(e, "agentId")),
    );
    assert.ok(ranOn.has(REACT(3)) || ranOn.has(REACT(4)), `tasks ran on ${[...ranOn].join(", ")}`);

    // Down to one: three are retired and get no more work.
    await scaleAgents(d.writer, who, { ...group, targetCount: 1, reason: "quiet again" });
    const down = await agents.until("AgentsScaled down", () => ofType(agents, "AgentsScaled")[1], 60_000);
    assert.equal(field<number>(down, "newCount"), 1);
    const retired = field<string[]>(down, "retiredAgentIds");
    assert.equal(retired.length, 3);
    const terminated = await agents.until(
      "AgentTerminated for the retired",
      () => {
        const t = ofType(agents, "AgentTerminated");
        return t.length >= 3 ? t : undefined;
      },
      30_000,
    );
    assert.deepEqual(terminated.map((e) => field<string>(e, "agentId")).sort(), [...retired].sort());
    for (const e of terminated) assert.equal(field<string>(e, "cause"), "SCALED_DOWN");
    const kept = [REACT(1), REACT(2), REACT(3), REACT(4)].find((id) => !retired.includes(id))!;

    const second = await submitGoal(d.writer, who, { title: "narrow", tasks: reactTasks("b", 4, 100) });
    const end2 = await d.watch.final(second.goalId, 90_000);
    assert.equal(end2.type, "GoalCompleted", JSON.stringify(end2.value));
    const assignees = d.watch
      .of(second.goalId)
      .filter((e) => e.type === "TaskAssigned" && field<string>(e, "assigneeTier") === "WORKER")
      .map((e) => field<string>(e, "assigneeId"));
    assert.deepEqual([...new Set(assignees)], [kept], "only the remaining worker gets work");
    // Retired workers stop heartbeating.
    const count = () =>
      ofType(agents, "AgentHeartbeat").filter((e) => retired.includes(field<string>(e, "agentId"))).length;
    const before = count();
    await new Promise((r) => setTimeout(r, 4 * HEARTBEAT_MS));
    assert.equal(count(), before, "no heartbeat from a retired worker");
  });

  it("autoscales a group up under load and back down when the load is gone", async () => {
    const base = testTopology(500);
    const aamas = base.topologies.aamas!;
    const topology: TopologyConfig = {
      ...base,
      heartbeatIntervalMs: HEARTBEAT_MS,
      autoscaleIntervalMs: HEARTBEAT_MS,
      topologies: {
        aamas: {
          ...aamas,
          domains: {
            ...aamas.domains,
            frontend: {
              mayors: 1,
              workers: {
                ...aamas.domains.frontend!.workers,
                react: {
                  count: 2,
                  capacity: 2,
                  autoscale: { targetLoad: 0.5, min: 2, max: 4, cooldownMs: 1_500 },
                },
              },
            },
          },
        },
      },
    };
    const d = await deployment(topology, "autoscale", "all", { heartbeats: true });
    cleanup.push(() => d.stop());
    const agents = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.agents.events"]);
    cleanup.push(() => agents.stop());

    const { goalId } = await submitGoal(d.writer, who, { title: "load", tasks: reactTasks("l", 12, 2_500) });
    const up = await agents.until(
      "the autoscaler scaling up",
      () =>
        ofType(agents, "AgentsScaled").find((e) => field<number>(e, "newCount") > field<number>(e, "previousCount")),
      60_000,
    );
    assert.equal(field<string>(up, "trigger"), "AUTOSCALER");
    assert.match(field<string>(up, "reason"), /autoscale up: load ratio .* \(load ratio /);
    const end = await d.watch.final(goalId, 120_000);
    assert.equal(end.type, "GoalCompleted", JSON.stringify(end.value));
    const started = d.watch.of(goalId).filter((e) => e.type === "TaskStarted");
    const added = field<string[]>(up, "addedAgentIds");
    assert.ok(
      started.some((e) => added.includes(field<string>(e, "agentId"))),
      "a task ran on an autoscaled worker",
    );

    // The load is gone: the group shrinks back to its minimum, one step per cool-down.
    await agents.until(
      "the autoscaler scaling back down to 2",
      () =>
        ofType(agents, "AgentsScaled").find(
          (e) => field<string>(e, "trigger") === "AUTOSCALER" && field<number>(e, "newCount") === 2,
        ),
      60_000,
    );
    const scalings = ofType(agents, "AgentsScaled");
    for (const e of scalings) {
      assert.equal(field<string>(e, "trigger"), "AUTOSCALER");
      assert.ok(field<number>(e, "newCount") <= 4 && field<number>(e, "newCount") >= 2, "within min and max");
    }
    // Never two scalings of the group within the cool-down.
    const times = scalings.map((e) => field<{ occurredAt: Date }>(e, "envelope").occurredAt.getTime());
    for (let i = 1; i < times.length; i++)
      assert.ok(times[i]! - times[i - 1]! >= 1_500, `cool-down: ${times.join(", ")}`);
  });
});
