/**
 * The scaler and the autoscaler (domain/scaler.ts): RegisterAgent and ScaleAgents answered from the
 * agent directory and the scaler's own writes; a retired worker's tasks handed back by its mayor.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Payload } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { AgentDirectory } from "../../processors/domain/directory.js";
import { mayor } from "../../processors/domain/mayor.js";
import { initialState } from "../../processors/domain/kernel/state.js";
import {
  autoscale,
  autoscaleCommands,
  scaler,
  scalerDecider,
  type AutoscaleConfig,
  type GroupLoad,
} from "../../processors/domain/scaler.js";
import {
  asEvent,
  assigned,
  context,
  created,
  directoryOf,
  ev,
  NOW,
  ofType,
  spec,
  started,
  task,
} from "../support/decider-spec.js";

const T0 = NOW.getTime();
const at = (ms: number) => new Date(T0 + ms);
const REACT = (n: number) => `aamas-worker-frontend-react-${n}`;

function registerAgent(overrides: Partial<Payload<"RegisterAgent">> = {}): PolityEvent {
  return ev("RegisterAgent", {
    agentId: "aamas-worker-frontend-react-9",
    name: "react worker 9",
    tier: "WORKER",
    topology: "aamas",
    domain: "frontend",
    specialization: "react",
    superiorId: "aamas-mayor-frontend-1",
    capacity: 2,
    executor: "simulated",
    labels: {},
    heartbeatIntervalMs: null,
    ...overrides,
  });
}

function scaleAgents(
  targetCount: number,
  overrides: Partial<Payload<"ScaleAgents">> = {},
  occurredAt: Date = NOW,
): PolityEvent {
  return ev(
    "ScaleAgents",
    {
      tier: "WORKER",
      topology: "aamas",
      domain: "frontend",
      specialization: "react",
      targetCount,
      trigger: "MANUAL",
      reason: "operator",
      loadRatio: null,
      ...overrides,
    },
    { occurredAt },
  );
}

function heartbeat(agentId: string, inFlightTasks: string[], ms = 0): PolityEvent {
  return ev(
    "AgentHeartbeat",
    {
      agentId,
      tier: "WORKER",
      status: inFlightTasks.length > 0 ? "BUSY" : "IDLE",
      load: inFlightTasks.length / 2,
      capacity: 2,
      inFlightTasks,
      sequence: 1,
      at: at(ms),
    },
    { occurredAt: at(ms) },
  );
}

/** The test directory with frontend react scaled to four workers, and each worker's reported load. */
function fourReactWorkers(held: Record<number, string[]> = {}): AgentDirectory {
  const directory = directoryOf();
  const up = scaler.decide(scaleAgents(4), stateless(), context({ directory }));
  for (const d of up) directory.apply(asEvent(d));
  for (let n = 1; n <= 4; n++) directory.apply(heartbeat(REACT(n), held[n] ?? []));
  return directory;
}

const stateless = initialState;

const CONFIG: AutoscaleConfig = { targetLoad: 0.7, min: 1, max: 4, cooldownMs: 10_000 };

describe("scaler: RegisterAgent", () => {
  it("registers a new agent, answering the command", () => {
    const cmd = registerAgent();
    spec(scaler)
      .when(cmd)
      .then([
        {
          type: "AgentRegistered",
          agentId: "aamas-worker-frontend-react-9",
          superiorId: "aamas-mayor-frontend-1",
          capacity: 2,
          heartbeatIntervalMs: 5_000,
          commandId: (cmd.value as { envelope: { eventId: string } }).envelope.eventId,
        },
      ]);
  });

  it("refuses a duplicate id and an unknown superior with a notification", () => {
    const [dup] = spec(scaler)
      .when(registerAgent({ agentId: REACT(1) }))
      .thenTypes(["NotificationBroadcast"]);
    const notice = ofType([dup!], "NotificationBroadcast")[0]!;
    assert.equal(notice.subject, "agent-command-refused");
    assert.match(notice.message, /already registered/);
    const [unknown] = spec(scaler)
      .when(registerAgent({ superiorId: "aamas-mayor-nowhere" }))
      .thenTypes(["NotificationBroadcast"]);
    assert.match(ofType([unknown!], "NotificationBroadcast")[0]!.message, /unknown superior/);
  });

  it("answers a command once: delivered again it writes nothing", () => {
    const cmd = registerAgent();
    const first = scaler.decide(cmd, stateless(), context());
    spec(scaler).given(first).when(cmd).thenNothing();
    // Also when only the directory has read the registration back (another partition owner wrote it).
    const directory = directoryOf();
    for (const d of first) directory.apply(asEvent(d));
    spec(scaler, context({ directory })).when(cmd).thenNothing();
    // A refusal is remembered too.
    const dup = registerAgent({ agentId: REACT(1) });
    const refused = scaler.decide(dup, stateless(), context());
    spec(scaler).given(refused).when(dup).thenNothing();
  });
});

describe("scaler: ScaleAgents", () => {
  it("scales frontend react up from 2 to 4: two new workers, copied from the group", () => {
    const cmd = scaleAgents(4);
    spec(scaler)
      .when(cmd)
      .then([
        { type: "AgentRegistered", agentId: REACT(3), superiorId: "aamas-mayor-frontend-1", capacity: 2 },
        { type: "AgentRegistered", agentId: REACT(4), superiorId: "aamas-mayor-frontend-1", capacity: 2 },
        {
          type: "AgentsScaled",
          previousCount: 2,
          newCount: 4,
          addedAgentIds: [REACT(3), REACT(4)],
          retiredAgentIds: [],
          trigger: "MANUAL",
        },
      ]);
  });

  it("spreads new workers over the group's mayors", () => {
    const decisions = spec(scaler)
      .when(scaleAgents(4, { domain: "backend", specialization: "api" }))
      .thenTypes(["AgentRegistered", "AgentRegistered", "AgentsScaled"]);
    assert.deepEqual(
      ofType(decisions, "AgentRegistered").map((r) => r.superiorId),
      ["aamas-mayor-backend-1", "aamas-mayor-backend-2"],
    );
  });

  it("scales down from 4 to 2, retiring the two least loaded", () => {
    const directory = fourReactWorkers({ 1: ["g/a", "g/b"], 3: ["g/c"] });
    spec(scaler, context({ directory }))
      .when(scaleAgents(2))
      .then([
        { type: "AgentTerminated", agentId: REACT(4), cause: "SCALED_DOWN", drained: true },
        { type: "AgentTerminated", agentId: REACT(2), cause: "SCALED_DOWN", drained: true },
        { type: "AgentsScaled", previousCount: 4, newCount: 2, retiredAgentIds: [REACT(4), REACT(2)] },
      ]);
  });

  it("a busy worker scaled down is terminated with its tasks named, and its mayor hands them back", () => {
    const directory = fourReactWorkers({ 1: ["g1/t1"], 2: ["g/x"], 3: ["g/y"], 4: ["g/z"] });
    const [terminated] = spec(scaler, context({ directory }))
      .when(scaleAgents(3))
      .then([
        {
          type: "AgentTerminated",
          agentId: REACT(4),
          drained: false,
          reassignedTaskIds: ["g/z"],
        },
        { type: "AgentsScaled", previousCount: 4, newCount: 3 },
      ]);
    // Its mayor moves the attempt it held, as for a failed worker.
    directory.apply(asEvent(terminated!));
    const t1 = task("t1", "frontend", "react");
    spec(mayor, context({ directory }))
      .given([
        created("g1", t1),
        assigned("g1", t1, "aamas-mayor-frontend-1"),
        { ...assigned("g1", t1, REACT(1)), value: { ...assigned("g1", t1, REACT(1)).value, assigneeId: REACT(4) } },
        started("g1", "t1", REACT(4)),
      ] as PolityEvent[])
      .when(asEvent(terminated!))
      .then([
        { type: "TaskReassigned", fromAgentId: REACT(4), cause: "AGENT_TERMINATED", attempt: 2 },
        { type: "TaskAssigned", attempt: 2 },
      ]);
  });

  it("a retired worker gets no new work", () => {
    const directory = fourReactWorkers();
    const down = scaler.decide(scaleAgents(1), stateless(), context({ directory }));
    for (const d of down) directory.apply(asEvent(d));
    const left = directory.workersUnder("aamas-mayor-frontend-1", "react").map((w) => w.agentId);
    assert.deepEqual(left, [REACT(1)]);
  });

  it("is idempotent: the same command again writes nothing, a no-op writes nothing", () => {
    const cmd = scaleAgents(4);
    const first = scaler.decide(cmd, stateless(), context());
    spec(scaler).given(first).when(cmd).thenNothing();
    const directory = directoryOf();
    for (const d of first) directory.apply(asEvent(d));
    spec(scaler, context({ directory })).when(cmd).thenNothing();
    // A different command asking for what is already there changes nothing.
    spec(scaler, context({ directory })).when(scaleAgents(4)).thenNothing();
    // Two commands in a row before the directory reads the first back: the second sees the first.
    spec(scaler)
      .given(first)
      .when(scaleAgents(5))
      .then([
        { type: "AgentRegistered", agentId: REACT(5) },
        { type: "AgentsScaled", previousCount: 4, newCount: 5 },
      ]);
  });

  it("refuses other tiers and unknown groups", () => {
    spec(scaler)
      .when(scaleAgents(2, { tier: "MAYOR" }))
      .thenTypes(["NotificationBroadcast"]);
    spec(scaler)
      .when(scaleAgents(2, { specialization: "cobol" }))
      .thenTypes(["NotificationBroadcast"]);
  });
});

describe("autoscaler", () => {
  const group = (workers: number, held: number, lastScaledAt: Date | null = null): GroupLoad => ({
    topology: "aamas",
    domain: "frontend",
    specialization: "react",
    workers,
    held,
    capacity: workers * 2,
    lastScaledAt,
  });

  it("scales up above 1.2 x the target load, proportionally", () => {
    // 4 of 4 held: ratio 1.0 > 0.84; 4 tasks at 0.7 x 2 per worker need 3 workers.
    assert.deepEqual(autoscale(group(2, 4), CONFIG, NOW), {
      targetCount: 3,
      loadRatio: 1,
      reason: "autoscale up: load ratio 1.00 above 1.2 x target 0.7",
    });
    // 0.75 is within the band: nothing.
    assert.equal(autoscale(group(2, 3), CONFIG, NOW), null);
  });

  it("scales down by one below 0.5 x the target load", () => {
    const advice = autoscale(group(3, 1), CONFIG, NOW);
    assert.equal(advice?.targetCount, 2);
    assert.match(advice!.reason, /below 0.5 x target 0.7/);
    assert.equal(autoscale(group(3, 3), CONFIG, NOW), null);
  });

  it("respects the cool-down", () => {
    assert.equal(autoscale(group(2, 4, at(-5_000)), CONFIG, NOW), null);
    assert.equal(autoscale(group(2, 4, at(-10_000)), CONFIG, NOW)?.targetCount, 3);
  });

  it("respects min and max", () => {
    assert.equal(autoscale(group(4, 8), CONFIG, NOW), null, "at max");
    assert.equal(autoscale(group(1, 0), CONFIG, NOW), null, "at min");
    assert.equal(autoscale(group(2, 40), { ...CONFIG, max: 3 }, NOW)?.targetCount, 3);
    assert.equal(autoscale(group(1, 0), { ...CONFIG, min: 2 }, NOW)?.targetCount, 2, "brought up to min");
  });

  it("samples the directory into ScaleAgents commands (trigger AUTOSCALER, load ratio)", () => {
    const directory = directoryOf();
    directory.apply(heartbeat(REACT(1), ["g/a", "g/b"]));
    directory.apply(heartbeat(REACT(2), ["g/c", "g/d"]));
    const decisions = autoscaleCommands(
      directory,
      (t, d, s) => (t === "aamas" && d === "frontend" && s === "react" ? CONFIG : null),
      NOW,
    );
    assert.deepEqual(
      ofType(decisions, "ScaleAgents").map((c) => [c.targetCount, c.trigger, c.loadRatio]),
      [[3, "AUTOSCALER", 1]],
    );
  });

  it("the scaler decides an autoscaler command by the log's time: cool-down, min and max", () => {
    const auto = scalerDecider({ autoscale: () => CONFIG });
    const up = (ms: number, target = 3) =>
      scaleAgents(target, { trigger: "AUTOSCALER", reason: "autoscale up", loadRatio: 1 }, at(ms));
    const first = auto.decide(up(0), stateless(), context());
    assert.deepEqual(
      first.map((d) => d.type),
      ["AgentRegistered", "AgentsScaled"],
    );
    const scaled = first.map((d, i) => (i === 1 ? asEvent(d, { occurredAt: at(0) }) : asEvent(d)));
    // Within the cool-down (by the commands' and events' times): dropped, without a refusal.
    spec(auto).given(scaled).when(up(5_000, 4)).thenNothing();
    spec(auto)
      .given(scaled)
      .when(up(11_000, 9))
      .then([
        { type: "AgentRegistered", agentId: REACT(4) },
        {
          type: "AgentsScaled",
          previousCount: 3,
          newCount: 4,
          trigger: "AUTOSCALER",
          reason: "autoscale up (load ratio 1.00)",
        },
      ]);
    // Autoscaling off for the group: nothing.
    spec(scalerDecider()).when(up(0)).thenNothing();
  });
});
