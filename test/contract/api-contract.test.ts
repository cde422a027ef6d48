/**
 * One contract (gateway/contract): the API's enums are the Avro enums, and the OpenAPI document's
 * request bodies carry the limits the validators enforce, because both come from the same zod
 * schemas. No stack needed: the routers are walked with empty dependencies.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { Kind, parse, type EnumTypeDefinitionNode } from "graphql";
import { GOAL_RANK, TASK_RANK } from "../../processors/domain/kernel/status.js";
import { AVRO_DIR } from "../../schemas/avro-types.js";
import { GRAPHQL_ENUMS, HEARTBEAT_STATUSES, NON_AGENT_TIERS, zodEnums } from "../../gateway/contract/enums.js";
import { MAX_DURATION_MS } from "../../gateway/contract/fields.js";
import { requestSchemas, workerRequestSchemas } from "../../gateway/contract/json-schema.js";
import { AGENT_COMMANDS, MAX_DEPENDS_ON, MAX_DOMAIN_HINTS, MAX_TASKS } from "../../gateway/contract/requests.js";
import { GatewayError } from "../../gateway/errors.js";
import * as agents from "../../gateway/graphql/agents.js";
import * as goals from "../../gateway/graphql/goals.js";
import * as governance from "../../gateway/graphql/governance.js";
import * as tasks from "../../gateway/graphql/tasks.js";
import { parseGoal, parseHeartbeat, parseRegisterAgent } from "../../gateway/inputs.js";
import { openApiDocument } from "../../gateway/openapi.js";
import { components as workerComponents, paths as workerPaths } from "../../gateway/openapi-agents.js";
import { AGENT_COMMAND_TYPES, restRouter, type RestDeps } from "../../gateway/rest.js";
import { workerApiRouter, type WorkerApiDeps } from "../../gateway/worker-api.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

/** The symbols of every Avro enum under schemas/avro, by name. */
function avroEnums(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".avsc")) {
        const s = JSON.parse(fs.readFileSync(p, "utf8")) as { type?: string; name?: string; symbols?: string[] };
        if (s.type === "enum" && s.name && s.symbols) out.set(s.name, s.symbols);
      }
    }
  };
  walk(AVRO_DIR);
  return out;
}
const AVRO = avroEnums();
/** The symbols an API enum of this name must have: the Avro enum's (Tier: the agents' tiers). */
function expected(name: string): string[] {
  const symbols = AVRO.get(name);
  assert.ok(symbols, `no Avro enum ${name} under schemas/avro`);
  return name === "Tier" ? symbols.filter((s) => !(NON_AGENT_TIERS as readonly string[]).includes(s)) : symbols;
}

const refused = (f: () => unknown, field: string) =>
  assert.throws(f, (e: unknown) => e instanceof GatewayError && e.code === "INVALID_INPUT" && e.field === field);

describe("the API contract", () => {
  it("gives every GraphQL enum that has an Avro namesake exactly the Avro symbols", () => {
    const sdl = [goals, agents, governance, tasks].map((m) => m.typeDefs).join("\n");
    const enums = new Map(
      parse(sdl)
        .definitions.filter((d): d is EnumTypeDefinitionNode => d.kind === Kind.ENUM_TYPE_DEFINITION)
        .map((d) => [d.name.value, (d.values ?? []).map((v) => v.name.value)]),
    );
    for (const name of Object.keys(GRAPHQL_ENUMS)) {
      assert.ok(enums.has(name), `GraphQL enum ${name} is not in the typeDefs`);
      assert.deepEqual(enums.get(name), expected(name), `GraphQL enum ${name}`);
    }
    // Any other GraphQL enum named like an Avro one must be listed in GRAPHQL_ENUMS.
    for (const name of enums.keys())
      if (AVRO.has(name)) assert.ok(name in GRAPHQL_ENUMS, `GraphQL enum ${name} is not generated from Avro`);
  });

  it("gives every zod enum of the request schemas exactly its Avro enum's symbols", () => {
    for (const [name, schema] of Object.entries(zodEnums)) assert.deepEqual(schema.options, expected(name), name);
    const agentStatus = expected("AgentStatus");
    for (const s of HEARTBEAT_STATUSES) assert.ok(agentStatus.includes(s), `heartbeat status ${s}`);
    // The read models rank exactly the Avro statuses.
    assert.deepEqual(Object.keys(GOAL_RANK).sort(), [...expected("GoalStatus")].sort());
    assert.deepEqual(Object.keys(TASK_RANK).sort(), [...expected("TaskStatus")].sort());
  });

  it("documents the request bodies as the zod schemas generate them, limits included", () => {
    const doc = openApiDocument() as Json;
    const schemas = doc.components.schemas;
    const generated = requestSchemas();
    for (const name of ["GoalInput", "TaskInput", "RegisterAgentInput", "ScaleAgentsInput", "PolicyInput"] as const)
      assert.deepEqual(schemas[name], generated[name], `${name} is the generated schema`);

    const goal = schemas.GoalInput.properties;
    assert.equal(goal.domainHints.maxItems, MAX_DOMAIN_HINTS);
    assert.equal(goal.domainHints.maxItems, 20);
    assert.equal(goal.domain_hints.maxItems, 20, "the alias carries the same limit");
    assert.deepEqual([goal.tasks.minItems, goal.tasks.maxItems], [1, MAX_TASKS]);
    assert.equal(MAX_TASKS, 1000);
    assert.deepEqual(goal.tasks.items, { $ref: "#/components/schemas/TaskInput" });
    const task = schemas.TaskInput.properties;
    assert.equal(task.dependsOn.maxItems, MAX_DEPENDS_ON);
    assert.equal(task.dependsOn.maxItems, 100);
    assert.equal(task.depends_on.maxItems, 100);
    assert.equal(task.estimatedEffortMs.maximum, 30 * 24 * 3600 * 1000);
    assert.equal(task.estimatedEffortMs.maximum, MAX_DURATION_MS);
    assert.deepEqual([task.timeoutMs.minimum, task.timeoutMs.maximum], [1, MAX_DURATION_MS]);
    assert.deepEqual([task.priority.minimum, task.priority.maximum], [1, 10]);
    assert.deepEqual(schemas.RegisterAgentInput.properties.tier.enum, expected("Tier"));
    assert.deepEqual(schemas.ScaleAgentsInput.properties.targetCount, { type: "integer", minimum: 0, maximum: 1000 });
    // Ids the path gives are optional in the bodies of those routes.
    assert.ok(!schemas.TaskResultInput.required.includes("goalId"));
    assert.ok(schemas.EmergencyStopInput.required.includes("goalId"));
    assert.ok(!(schemas.StopInput.required ?? []).includes("goalId"));
    // The worker API's bodies, too.
    const worker = workerRequestSchemas() as Json;
    assert.deepEqual(workerComponents.schemas.WorkerHeartbeatRequest, worker.WorkerHeartbeatRequest);
    assert.equal(worker.WorkerCapabilitiesRequest.properties.capabilities.maxItems, 50);
    assert.deepEqual(workerPaths["/tasks/accept"]!.post!.requestBody, {
      required: true,
      content: { "application/json": { schema: worker.WorkerAcceptRequest } },
    });
  });

  it("enforces the documented limits: one more than the document allows is refused, naming the field", () => {
    const doc = openApiDocument() as Json;
    const goal = doc.components.schemas.GoalInput.properties;
    const task = doc.components.schemas.TaskInput.properties;
    const t = (i: number, extra: Json = {}) => ({ id: `t${i}`, title: "T", domain: "backend", ...extra });
    const hints = (n: number) => Array.from({ length: n }, (_, i) => `d${i}`);
    assert.equal(
      parseGoal({ title: "g", domainHints: hints(goal.domainHints.maxItems) }, "GOAL").domainHints?.length,
      20,
    );
    refused(() => parseGoal({ title: "g", domainHints: hints(goal.domainHints.maxItems + 1) }, "GOAL"), "domainHints");
    refused(() => parseGoal({ title: "g", domain_hints: hints(21) }, "GOAL"), "domain_hints");
    refused(() => parseGoal({ title: "g", tasks: [] }, "GOAL"), "tasks");
    const many = Array.from({ length: goal.tasks.maxItems }, (_, i) => t(i));
    assert.equal(parseGoal({ title: "g", tasks: many }, "GOAL").tasks?.length, 1000);
    refused(() => parseGoal({ title: "g", tasks: [...many, t(1000)] }, "GOAL"), "tasks");
    const deps = hints(task.dependsOn.maxItems + 1);
    refused(() => parseGoal({ title: "g", tasks: [t(0, { dependsOn: deps })] }, "GOAL"), "tasks[0].dependsOn");
    refused(() => parseGoal({ title: "g", tasks: [t(0, { depends_on: deps })] }, "GOAL"), "tasks[0].depends_on");
    const max = task.estimatedEffortMs.maximum as number;
    assert.equal(
      parseGoal({ title: "g", tasks: [t(0, { estimatedEffortMs: max })] }, "GOAL").tasks?.[0]?.estimatedEffortMs,
      max,
    );
    refused(
      () => parseGoal({ title: "g", tasks: [t(0, { estimatedEffortMs: max + 1 })] }, "GOAL"),
      "tasks[0].estimatedEffortMs",
    );
    refused(() => parseGoal({ title: "g", tasks: [t(0, { timeout_ms: 0 })] }, "GOAL"), "tasks[0].timeout_ms");
    refused(() => parseGoal({ title: "g", priority: 11 }, "GOAL"), "priority");
    refused(() => parseGoal({ title: "g", goalId: "a", goal_id: "b" }, "GOAL"), "goal_id");
    refused(() => parseRegisterAgent({ agentId: "a", tier: "SYSTEM" }), "tier");
    refused(() => parseHeartbeat({ status: "FAILED" }), "status");
  });

  it("keeps the DGM GoalRequest's forms: priority by name, deadline in epoch millis, no title", () => {
    const deadline = Date.now() + 3_600_000;
    const g = parseGoal(
      { description: "Ship it\nsoon", priority: "HIGH", deadline, constraints: { max_cost: 5, tags: ["a"] } },
      "GOAL",
    );
    assert.deepEqual(
      [g.title, g.priority, g.deadline?.getTime(), g.constraints],
      ["Ship it", 8, deadline, { max_cost: "5", tags: '["a"]' }],
    );
    refused(() => parseGoal({ priority: 3 }, "GOAL"), "title");
    refused(() => parseGoal({ title: "g", priority: "urgent" }, "GOAL"), "priority");
    refused(() => parseGoal({ title: "g", deadline: -1 }, "GOAL"), "deadline");
    refused(() => parseGoal({ title: "g", constraints: { a: null } }, "GOAL"), "constraints.a");
    refused(
      () => parseGoal({ title: "g", tasks: [{ id: "a", title: "A", domain: "d", inputs: [{ key: 1 }] }] }, "GOAL"),
      "tasks[0].inputs[0].key",
    );
  });

  it("documents every agent command the router takes, and every route the routers serve", () => {
    assert.deepEqual(Object.keys(AGENT_COMMANDS), [...AGENT_COMMAND_TYPES]);
    const doc = openApiDocument() as Json;
    const documented = doc.components.schemas.AgentCommand.oneOf.flatMap(
      (s: Json) => s.properties.type.enum ?? [s.properties.type.const],
    );
    assert.deepEqual(documented.sort(), [...AGENT_COMMAND_TYPES].sort());
    const layers = [...restRouter({} as RestDeps).stack, ...workerApiRouter({} as WorkerApiDeps).stack] as unknown as {
      route?: { path: string; methods: Record<string, boolean> };
    }[];
    const routed = new Set<string>();
    for (const layer of layers)
      for (const [method, on] of Object.entries(layer.route?.methods ?? {})) {
        if (!on || method === "_all") continue;
        const p = layer.route!.path.replace(/:(\w+)/g, "{$1}");
        routed.add(`${method} ${p}`);
        assert.ok(doc.paths[p]?.[method], `${method.toUpperCase()} /api/v1${p} is not documented`);
      }
    for (const [p, methods] of Object.entries(doc.paths as Record<string, object>))
      for (const method of Object.keys(methods))
        assert.ok(routed.has(`${method} ${p}`), `${method} ${p} is not routed`);
  });
});
