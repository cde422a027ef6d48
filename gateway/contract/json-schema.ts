/**
 * The request schemas as JSON Schema 2020-12 (what OpenAPI 3.1 uses), generated from the zod
 * schemas with z.toJSONSchema: the document's request bodies carry exactly the limits, enums and
 * aliases the validators enforce. The input side is described (what a client sends: a priority by
 * name, a deadline in epoch millis), not what the parsers make of it.
 */
import { z } from "zod";
import {
  AgentCommand,
  EmergencyStopInput,
  GoalInput,
  GovernorResourcesInput,
  GovernorTaskInput,
  PhaseTransitionInput,
  PolicyAmendmentInput,
  PolicyInput,
  RegisterAgentInput,
  ScaleAgentsInput,
  TaskInput,
  TaskResultInput,
} from "./requests.js";
import {
  WorkerAcceptRequest,
  WorkerCapabilitiesRequest,
  WorkerContextRequest,
  WorkerHeartbeatRequest,
  WorkerProgressRequest,
} from "./worker.js";

export type JsonSchema = Record<string, unknown>;

/** Every request body by its OpenAPI component name; a schema named here is a $ref wherever it is used. */
export const REQUEST_BODIES = {
  TaskInput,
  GoalInput,
  EmergencyStopInput,
  PhaseTransitionInput,
  ScaleAgentsInput,
  RegisterAgentInput,
  AgentCommand,
  PolicyInput,
  PolicyAmendmentInput,
  TaskResultInput,
  GovernorTaskInput,
  GovernorResourcesInput,
} satisfies Record<string, z.ZodType>;

export const WORKER_REQUEST_BODIES = {
  WorkerAcceptRequest,
  WorkerProgressRequest,
  WorkerContextRequest,
  WorkerCapabilitiesRequest,
  WorkerHeartbeatRequest,
} satisfies Record<string, z.ZodType>;

/**
 * `{ anyOf: [X, { type: "null" }] }` (zod's nullish) as `X` with "null" among its types, the way
 * the rest of the document writes nullability; a reference or a union keeps the anyOf.
 */
function foldNull(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(foldNull);
  if (s === null || typeof s !== "object") return s;
  const o = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, foldNull(v)])) as JsonSchema;
  const any = o.anyOf as JsonSchema[] | undefined;
  if (any?.length === 2 && any[1]?.type === "null" && Object.keys(any[1]).length === 1) {
    const [x] = any as [JsonSchema];
    if (Array.isArray(x.anyOf) && !("type" in x)) {
      const { anyOf: _, ...rest } = o;
      return { ...x, ...rest, anyOf: [...(x.anyOf as unknown[]), { type: "null" }] };
    }
    if (typeof x.type === "string" && !("$ref" in x)) {
      const { anyOf: _, ...rest } = o;
      return {
        ...x,
        ...rest,
        type: [x.type, "null"],
        ...(Array.isArray(x.enum) ? { enum: [...(x.enum as unknown[]), null] } : {}),
      };
    }
  }
  return o;
}

function generate<K extends string>(bodies: Record<K, z.ZodType>, uri: (id: string) => string): Record<K, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [name, schema] of Object.entries<z.ZodType>(bodies)) registry.add(schema, { id: name });
  const { schemas } = z.toJSONSchema(registry, { target: "draft-2020-12", io: "input", uri, unrepresentable: "any" });
  return Object.fromEntries(
    Object.entries(schemas).map(([name, s]) => {
      const { $schema: _s, $id: _i, ...rest } = s as JsonSchema;
      return [name, foldNull(rest) as JsonSchema];
    }),
  ) as Record<K, JsonSchema>;
}

type Bodies = keyof typeof REQUEST_BODIES;
let cached: Record<Bodies, JsonSchema> | undefined;
/** The request schemas of gateway/openapi.ts, for components.schemas (built once; read-only). */
export function requestSchemas(): Record<Bodies, JsonSchema> {
  return (cached ??= generate(REQUEST_BODIES, (id) => `#/components/schemas/${id}`));
}

type WorkerBodies = keyof typeof WORKER_REQUEST_BODIES;
let cachedWorker: Record<WorkerBodies, JsonSchema> | undefined;
/** The worker API's request schemas, inlined in its operations (gateway/openapi-agents.ts). */
export function workerRequestSchemas(): Record<WorkerBodies, JsonSchema> {
  return (cachedWorker ??= generate(WORKER_REQUEST_BODIES, (id) => `#/components/schemas/${id}`));
}

/** `schema` with `fields` optional: the path gives them (a body naming one must say the same). */
export function pathGiven(schema: JsonSchema, ...fields: string[]): JsonSchema {
  const properties = { ...(schema.properties as Record<string, JsonSchema>) };
  for (const f of fields)
    if (properties[f])
      properties[f] = { ...properties[f], description: "Optional; must equal the path's value if given." };
  const required = ((schema.required as string[] | undefined) ?? []).filter((r) => !fields.includes(r));
  const { required: _, ...rest } = schema;
  return { ...rest, properties, ...(required.length ? { required } : {}) };
}
