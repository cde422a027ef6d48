/**
 * What each role declares (processors/roles/<role>/role.ts) against what it does: every message its
 * decider emits on the spec fixtures, and every message its extensions write, is one of its declared
 * writes, on the topic the catalog gives that type; every topic it names is in the catalog.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { topicFor, TOPICS } from "../../schemas/catalog.js";
import type { MessageTypeName, Payload } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import type { TierDecider } from "../../processors/domain/decider.js";
import type { Role } from "../../processors/domain/directory.js";
import { MONITOR_ID } from "../../processors/domain/health.js";
import { describeTopology } from "../../processors/roles/describe.js";
import { ROLE_DEFINITIONS, ROLES } from "../../processors/roles/index.js";
import { agentsOf } from "../../processors/topology.js";
import { asEvent, context, created, ev, NOW, spec, submitGoal, task, TEST_TOPOLOGY } from "../support/decider-spec.js";
import { ok, runHierarchy, type Attempt } from "../support/hierarchy-run.js";

const CATALOG = new Set<string>(TOPICS.map((t) => t.name));
const at = (ms: number) => new Date(NOW.getTime() + ms);

/** Each role's decider as the role builds it, with what it decided while the fixtures ran. */
const deciders = new Map<Role, { decider: TierDecider; decide: TierDecider["decide"]; seen: Set<MessageTypeName> }>();

before(() => {
  const description = describeTopology(TEST_TOPOLOGY);
  assert.equal(description.roles.length, ROLES.length);
  for (const role of ROLES) {
    // Built as describe.ts builds it: nothing runs. The deciders are the domain's own objects, so
    // the specs below, which call those objects, are recorded.
    const { decider } = ROLE_DEFINITIONS[role].build(
      {
        topology: TEST_TOPOLOGY,
        feed: {
          directory: context().directory,
          statusFacts: () => [],
          onStatusChange: () => () => undefined,
          caughtUp: () => Promise.resolve(),
        },
        policies: context().policies,
        model: () => null,
        workRoot: "",
        silenced: { has: () => false } as never,
        heartbeats: true,
      },
      () => true,
    );
    const seen = new Set<MessageTypeName>();
    const decide = decider.decide;
    decider.decide = (input, state, ctx) => {
      const out = decide.call(decider, input, state, ctx);
      for (const d of out) seen.add(d.type);
      return out;
    };
    deciders.set(role, { decider, decide, seen });
  }
});

after(() => {
  for (const { decider, decide } of deciders.values()) decider.decide = decide;
});

const DAG = [
  task("fe-design", "frontend", "react"),
  task("be-schema", "backend", "database"),
  task("be-api", "backend", "api", ["be-schema"]),
  task("test-unit", "testing", "unit-test", ["be-api", "fe-design"]),
];

describe("roles: declarations", () => {
  it("declares every role the hierarchy runs, in its order, each with its own group", () => {
    assert.deepEqual(ROLES, ["president", "governor", "mayor", "worker", "policy", "health", "resources", "scaler"]);
    for (const role of ROLES) {
      const d = ROLE_DEFINITIONS[role];
      assert.equal(d.role, role);
      assert.equal(d.group, `polity-${role}`, "the consumer group other tools and tests name");
    }
  });

  it("names only catalog topics; its state topics are among its inputs", () => {
    for (const role of ROLES) {
      const d = ROLE_DEFINITIONS[role];
      for (const t of [...d.inputs, ...d.state, ...Object.keys(d.writes)])
        assert.ok(CATALOG.has(t), `${role}: ${t} is not in schemas/catalog.ts`);
      for (const t of d.state) assert.ok(d.inputs.includes(t), `${role}: state topic ${t} is not an input`);
    }
  });

  it("declares each written type on the topic the catalog writes it to", () => {
    for (const role of ROLES) {
      for (const [topic, types] of Object.entries(ROLE_DEFINITIONS[role].writes))
        for (const type of types ?? [])
          assert.equal(topicFor(type).name, topic, `${role}: ${type} goes to ${topicFor(type).name}, not ${topic}`);
    }
  });

  it("declares what its extensions write", () => {
    for (const r of describeTopology(TEST_TOPOLOGY).roles) {
      const declared = new Set(r.outputs.flatMap((o) => o.types));
      for (const e of r.extensions)
        for (const type of e.writes) assert.ok(declared.has(type), `${r.role}: extension ${e.name} writes ${type}`);
    }
  });

  it("a role whose decider reads agent failures without reading the agents topic takes them from the directory", () => {
    for (const r of describeTopology(TEST_TOPOLOGY).roles) {
      const readsFailures = r.reads.includes("AgentFailed");
      if (!readsFailures || r.inputs.includes("polity.agents.events")) continue;
      assert.ok(
        r.extensions.some((e) => e.name === "agent-status"),
        `${r.role} reads AgentFailed but has no agent-status extension`,
      );
    }
  });
});

describe("roles: what the deciders write is declared", () => {
  it("the four tiers, through goals that complete, fail and run as projects, in both topologies", () => {
    const failing = (a: Attempt) =>
      a.taskId === "be-api"
        ? {
            ok: false as const,
            reason: "boom",
            kind: "EXECUTION_ERROR" as const,
            retryable: true,
            durationMs: 1,
            exitCode: null,
            output: null,
          }
        : ok(a);
    for (const topology of ["aamas", "dgm"] as const) {
      runHierarchy({ commands: [submitGoal({ topology, tasks: DAG })] });
      runHierarchy({ commands: [submitGoal({ topology, tasks: DAG })], outcome: failing, seed: 5 });
      runHierarchy({
        commands: [submitGoal({ topology, kind: "PROJECT", domainHints: [] })],
        seed: 11,
        deferExecutions: true,
      });
    }
  });

  it("the policy engine, defining and amending (and refusing a stale amendment)", () => {
    const define = ev(
      "DefinePolicy",
      {
        policyId: "no-weapons",
        name: "No weapons",
        category: "CONSTITUTIONAL",
        description: "Polity builds nothing that harms",
        rules: JSON.stringify({ principle: "Polity builds no weapons", forbiddenTerms: ["weapon"] }),
        appliesToTiers: [],
        domains: [],
        precedence: 100,
        effectiveFrom: null,
      },
      { aggregate: { type: "POLICY", id: "no-weapons", version: -1 } },
    );
    const amend = (expectedVersion: number) =>
      ev(
        "AmendPolicy",
        {
          policyId: "no-weapons",
          expectedVersion,
          rules: JSON.stringify({ principle: "Polity builds no weapons", forbiddenTerms: ["nuclear weapon"] }),
          description: null,
          appliesToTiers: null,
          domains: null,
          precedence: null,
          rationale: "water pistols are fine",
          effectiveFrom: null,
        },
        { aggregate: { type: "POLICY", id: "no-weapons", version: -1 } },
      );
    const { policy } = decidersOf();
    const v1 = spec(policy).when(define).thenTypes(["PolicyDefined"]);
    spec(policy).given(v1).when(amend(1)).thenTypes(["PolicyAmended"]);
    spec(policy)
      .given(v1)
      .when(amend(7))
      .decisions.forEach(() => undefined);
  });

  it("the health monitor, failing and recovering an agent", () => {
    const W = "aamas-worker-frontend-react-1";
    const registration = agentsOf(TEST_TOPOLOGY).find((a) => a.agentId === W)!;
    const registered = ev(
      "AgentRegistered",
      {
        agentId: W,
        name: W,
        tier: "WORKER",
        topology: "aamas",
        domain: "frontend",
        specialization: "react",
        superiorId: registration.superiorId,
        capacity: 2,
        executor: "simulated",
        labels: {},
        heartbeatIntervalMs: 1_000,
        commandId: null,
      },
      { occurredAt: at(-10_000) },
    );
    const beat = (agentId: string, ms: number, sequence: number, tier: "WORKER" | "SYSTEM" = "WORKER") =>
      ev(
        "AgentHeartbeat",
        { agentId, tier, status: "BUSY", load: 0, capacity: 2, inFlightTasks: [], sequence, at: at(ms) },
        { occurredAt: at(ms), actor: { id: agentId, tier } },
      );
    const { health } = decidersOf();
    const alive = [registered, beat(W, 0, 1)];
    const failed = spec(health)
      .given(alive)
      .when(beat(MONITOR_ID, 3_500, 1, "SYSTEM"))
      .thenTypes(["AgentFailed"]);
    spec(health)
      .given([...alive, beat(MONITOR_ID, 3_500, 1, "SYSTEM"), ...failed])
      .when(beat(W, 5_000, 2))
      .thenTypes(["AgentRecovered"]);
  });

  it("the scaler, registering, scaling out and in, and refusing", () => {
    const scale = (targetCount: number): PolityEvent =>
      ev("ScaleAgents", {
        tier: "WORKER",
        topology: "aamas",
        domain: "frontend",
        specialization: "react",
        targetCount,
        trigger: "MANUAL",
        reason: "operator",
        loadRatio: null,
      } satisfies Payload<"ScaleAgents">);
    const { scaler } = decidersOf();
    spec(scaler).when(
      ev("RegisterAgent", {
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
      }),
    );
    spec(scaler).when(scale(4));
    spec(scaler).when(scale(1));
    spec(scaler).when(scale(-1));
  });

  it("the resource manager, allocating", () => {
    const { resources } = decidersOf();
    const request = ev(
      "ResourceRequested",
      {
        requestId: "g1/t1/budget",
        goalId: "g1",
        taskId: "t1",
        requesterId: "aamas-governor-backend",
        requesterTier: "GOVERNOR",
        kind: "BUDGET",
        amount: "1.0000",
        unit: "billing-currency",
        durationMs: null,
        priority: 5,
        justification: "test",
      },
      { actor: { id: "aamas-governor-backend", tier: "GOVERNOR" } },
    );
    const goal = asEvent(
      spec(decidersOf().president).when(submitGoal({ goalId: "g1", tasks: [task("t1", "backend", "api")] }))
        .decisions[0]!,
    );
    spec(resources)
      .given([goal, created("g1", task("t1", "backend", "api"))])
      .when(request)
      .thenTypes(["ResourceAllocated"]);
  });

  it("every type each role's decider emitted is one it declares", () => {
    for (const role of ROLES) {
      const { seen } = deciders.get(role)!;
      assert.ok(seen.size > 0, `${role}: the fixtures made its decider emit nothing; the check would say nothing`);
      const declared = new Set(Object.values(ROLE_DEFINITIONS[role].writes).flat());
      const undeclared = [...seen].filter((t) => !declared.has(t));
      assert.deepEqual(undeclared, [], `${role} writes ${undeclared.join(", ")} but does not declare it`);
    }
  });
});

function decidersOf(): Record<Role, TierDecider> {
  return Object.fromEntries([...deciders].map(([role, d]) => [role, d.decider])) as Record<Role, TierDecider>;
}
