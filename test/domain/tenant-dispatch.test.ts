/**
 * A tenant's agents work for that tenant only (directory.ts `servesTenant`): a worker registered by
 * tenant A's admin is never handed tenant B's task (its inputs would reach A's program), while the
 * configured, platform-wide workers serve every tenant.
 */
import { describe, it } from "node:test";
import type { TaskSpec } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { governor } from "../../processors/domain/governor.js";
import { mayor } from "../../processors/domain/mayor.js";
import { assigned, context, directoryOf, ev, spec, task } from "../support/decider-spec.js";

const A = "tenant-a";
const B = "tenant-b";
const VUE_A = "aamas-worker-frontend-vue-a";
const MAYOR = "aamas-mayor-frontend-1";
const GOVERNOR = "aamas-governor-frontend";

/** The test topology, plus one vue worker that tenant A registered (no platform worker does vue). */
const directory = directoryOf();
directory.apply(
  ev(
    "AgentRegistered",
    {
      agentId: VUE_A,
      name: VUE_A,
      tier: "WORKER",
      topology: "aamas",
      domain: "frontend",
      specialization: "vue",
      superiorId: MAYOR,
      capacity: 2,
      executor: "external",
      labels: {},
      heartbeatIntervalMs: 1_000,
      commandId: null,
    },
    {
      tenantId: A,
      actor: { id: "polity-scaler", tier: "SYSTEM" },
      aggregate: { type: "AGENT", id: VUE_A, version: 1 },
    },
  ),
);
const ctx = context({ directory });
const specOf = (decider: Parameters<typeof spec>[0]) => spec(decider, ctx);

/** A task of `tenantId`'s goal, created by the president (the goal's tenant comes from its first event). */
function createdFor(tenantId: string, goalId: string, spec: TaskSpec): PolityEvent {
  return ev(
    "TaskCreated",
    { goalId, task: spec, priority: 5, maxAttempts: 3, parentTaskId: null, deadline: null },
    { tenantId },
  );
}

describe("tenant A's worker", () => {
  const vue = task("v1", "frontend", "vue");

  it("takes tenant A's task from its mayor", () => {
    specOf(mayor)
      .given([createdFor(A, "gA", vue), assigned("gA", vue, GOVERNOR)])
      .when(assigned("gA", vue, MAYOR))
      .then([{ type: "TaskAssigned", taskId: "v1", assigneeId: VUE_A, assigneeTier: "WORKER" }]);
  });

  it("is not handed tenant B's task: it waits at the mayor", () => {
    specOf(mayor)
      .given([createdFor(B, "gB", vue), assigned("gB", vue, GOVERNOR)])
      .when(assigned("gB", vue, MAYOR))
      .thenNothing();
  });

  it("does not make its mayor fit for tenant B's task at the governor", () => {
    specOf(governor)
      .given([createdFor(B, "gB", vue)])
      .when(assigned("gB", vue, GOVERNOR))
      .thenNothing();
    specOf(governor)
      .given([createdFor(A, "gA", vue)])
      .when(assigned("gA", vue, GOVERNOR))
      .then([{ type: "TaskAssigned", taskId: "v1", assigneeId: MAYOR, assigneeTier: "MAYOR" }]);
  });
});

describe("a platform-wide worker", () => {
  it("serves every tenant", () => {
    const react = task("r1", "frontend", "react");
    for (const tenantId of [A, B])
      specOf(mayor)
        .given([createdFor(tenantId, `g-${tenantId}`, react), assigned(`g-${tenantId}`, react, GOVERNOR)])
        .when(assigned(`g-${tenantId}`, react, MAYOR))
        .thenMatches((ds) => ds.some((d) => d.type === "TaskAssigned"));
  });
});
