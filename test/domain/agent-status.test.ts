/**
 * processors/roles/shared/agent-status.ts: a partition going live decides the status facts in force,
 * recoveries included, so that a dispatcher that was restoring when a worker came back still hands
 * it what waited for it. What a dispatcher decides on the recovery is specified in health.test.ts
 * ("an AgentRecovered hands waiting work to the recovered worker").
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MessageTypeName } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { TierInput } from "../../processors/domain/decider.js";
import { agentStatus, StatusFacts } from "../../processors/roles/shared/agent-status.js";
import type { EngineView, LiveSlot } from "../../processors/engine/extension.js";
import { ev } from "../support/decider-spec.js";

const MAYOR = "aamas-mayor-frontend-1";
const W = "aamas-worker-frontend-react-1";
const failed = ev("AgentFailed", {
  agentId: W,
  tier: "WORKER",
  superiorId: MAYOR,
  reason: "no heartbeat",
  missedHeartbeats: 3,
  lastHeartbeatAt: new Date(0),
  inFlightTasks: [],
});
const recovered = ev("AgentRecovered", {
  agentId: W,
  tier: "WORKER",
  downtimeMs: 1_000,
  failureReason: "no heartbeat",
});

/** One live slot that records what it is asked to decide, and a host that reads `reads`. */
function rig(reads: MessageTypeName[]) {
  const decided: TierInput[][] = [];
  const slot = {
    partition: 0,
    decide: (inputs: TierInput[]) => (decided.push(inputs), inputs.length),
  } as unknown as LiveSlot;
  const host = { role: "mayor", reads: new Set(reads), liveSlots: () => [slot], log: () => undefined } as EngineView;
  return { slot, host, decided };
}

describe("agent status: a partition going live", () => {
  it("decides the failures and the recoveries in force, only those its role reads", () => {
    const facts = [failed, recovered] as unknown as PolityEvent[];
    const ext = agentStatus({ statusFacts: () => facts, onStatusChange: () => () => undefined });
    const { slot, host, decided } = rig(["AgentRecovered"]);
    ext.onLive!(slot, host);
    assert.deepEqual(
      decided.map((xs) => xs.map((x) => x.type)),
      [["AgentRecovered"]],
    );
  });

  it("decides nothing when nothing is in force", () => {
    const ext = agentStatus({ statusFacts: () => [], onStatusChange: () => () => undefined });
    const { slot, host, decided } = rig(["AgentFailed", "AgentRecovered"]);
    ext.onLive!(slot, host);
    assert.deepEqual(decided, []);
  });
});

describe("agent status: the facts in force", () => {
  const types = (f: StatusFacts) => f.inForce().map((e) => `${e.type} ${(e.value as { agentId: string }).agentId}`);
  const terminated = ev("AgentTerminated", { agentId: W, tier: "WORKER", reason: "scaled in" } as never);

  it("keeps an agent's recovery after its failure, and its failure again after that", () => {
    const f = new StatusFacts();
    f.apply(failed as unknown as PolityEvent);
    assert.deepEqual(types(f), [`AgentFailed ${W}`]);
    f.apply(recovered as unknown as PolityEvent);
    assert.deepEqual(types(f), [`AgentRecovered ${W}`], "a partition going live later still hands it what waits");
    f.apply(failed as unknown as PolityEvent);
    assert.deepEqual(types(f), [`AgentFailed ${W}`]);
  });

  it("a termination stands until the id registers again", () => {
    const f = new StatusFacts();
    assert.equal(f.apply(terminated as unknown as PolityEvent), true);
    assert.deepEqual(types(f), [`AgentTerminated ${W}`]);
    const again = ev("AgentRegistered", { agentId: W, tier: "WORKER" } as never);
    assert.equal(f.apply(again as unknown as PolityEvent), true);
    assert.deepEqual(types(f), []);
  });

  it("ignores what is no status change (heartbeats, registrations of other tiers)", () => {
    const f = new StatusFacts();
    assert.equal(f.apply(ev("AgentHeartbeat", { agentId: W } as never) as unknown as PolityEvent), false);
    assert.equal(
      f.apply(ev("AgentRegistered", { agentId: MAYOR, tier: "MAYOR" } as never) as unknown as PolityEvent),
      false,
    );
    assert.deepEqual(types(f), []);
  });
});
