/**
 * The request bodies of the worker API (gateway/worker-api.ts), as zod schemas: they validate the
 * bodies and are the OpenAPI request schemas of gateway/openapi-agents.ts. This module imports
 * nothing of the gateway's routers: the document is built while they load.
 */
import { z } from "zod";
import { HEARTBEAT_STATUSES } from "./enums.js";
import { aliased, ID, ID_HINT, id, need, num, oneOf, stringObject, strings, text } from "./fields.js";

/** Longest long poll and context wait, in seconds. */
export const MAX_WAIT_SECONDS = 30;

const d = (description: string) => ({ description });
/** Lists the worker API takes: strings of at most 256 characters. */
const names = (max: number) => strings({ max, maxLength: 256 });

const attemptShape = {
  goalId: id().nullish().meta(d("The goal (alias goal_id).")),
  taskId: id().nullish().meta(d("The task (alias task_id).")),
  attempt: num(1, 1000, true).meta(d("The attempt the agent was given.")),
};
const ATTEMPT_ALIASES = { goal_id: "goalId", task_id: "taskId" } as const;
const oneOfNames = (...fields: [string, string][]) =>
  fields.length === 1
    ? { anyOf: fields[0]!.map((f) => ({ required: [f] })) }
    : { allOf: fields.map((names) => ({ anyOf: names.map((f) => ({ required: [f] })) })) };

/** The attempt a call is about: goalId, taskId (unless the path gives it) and attempt. */
function attemptBody<S extends z.ZodRawShape>(extra: S, taskIdRequired: boolean) {
  return aliased({ ...attemptShape, ...extra }, ATTEMPT_ALIASES, "must be a JSON object").transform((v, ctx) => {
    need(ctx, v, "goalId");
    if (taskIdRequired) need(ctx, v, "taskId");
    return v;
  });
}

export const WorkerAcceptRequest = attemptBody({}, true).meta(oneOfNames(["goalId", "goal_id"], ["taskId", "task_id"]));

export const WorkerProgressRequest = attemptBody(
  {
    progress: num(0, 1).nullish().meta(d("From 0 to 1.")),
    percent: num(0, 100, true).nullish().meta(d("From 0 to 100.")),
    message: text({ max: 4000 }).nullish(),
  },
  false,
)
  .transform((v, ctx) => {
    const given = (x: unknown) => x !== undefined && x !== null;
    if (given(v.progress) && given(v.percent))
      ctx.issues.push({
        code: "custom",
        path: ["progress"],
        input: v,
        message: "give progress (0..1) or percent (0..100), not both",
      });
    else
      need(
        ctx,
        v,
        given(v.percent) ? "percent" : "progress",
        "is required: progress from 0 to 1, or percent from 0 to 100",
      );
    return v;
  })
  .meta({
    ...oneOfNames(["goalId", "goal_id"]),
    description:
      "Give progress (0..1) or percent (0..100), not both. The task comes from the path (a taskId in the body must be the same).",
  });

export const WorkerContextRequest = aliased(
  {
    ...attemptShape,
    question: text({ max: 4000 }).nullish().meta(d("What is needed (alias need).")),
    keys: names(100)
      .nullish()
      .meta(d("Items wanted: output names, `<taskId>.<output>`, input or constraint keys; empty for all.")),
    wait: num(0, MAX_WAIT_SECONDS).nullish().meta(d("Seconds to wait for the answer (default 10).")),
  },
  { ...ATTEMPT_ALIASES, need: "question" },
)
  .transform((v, ctx) => {
    need(ctx, v, "goalId");
    need(ctx, v, "taskId");
    return v;
  })
  .meta(oneOfNames(["goalId", "goal_id"], ["taskId", "task_id"]));

export const WorkerCapabilitiesRequest = z
  .object({
    specialization: text({ max: 64, pattern: ID, hint: ID_HINT }).nullish(),
    capabilities: names(50).nullish().meta(d("Kept as the `capabilities` label.")),
    capacity: num(1, 1000, true).nullish(),
    labels: stringObject().nullish(),
  })
  .transform((v, ctx) => {
    if (Object.values(v).every((x) => x === undefined || x === null))
      ctx.issues.push({
        code: "custom",
        path: [],
        input: v,
        message: "give at least one of specialization, capabilities, capacity, labels",
      });
    return v;
  })
  .meta({
    description: "At least one field.",
    anyOf: ["specialization", "capabilities", "capacity", "labels"].map((f) => ({ required: [f] })),
  });

export const WorkerHeartbeatRequest = aliased(
  {
    load: num(0, 1000).nullish().meta(d("Tasks held / capacity; default from inFlightTasks.")),
    status: oneOf(HEARTBEAT_STATUSES).nullish(),
    inFlightTasks: names(1000).nullish().meta(d("goalId/taskId held; default: what the read model says it holds.")),
    sequence: num(0, Number.MAX_SAFE_INTEGER, true)
      .nullish()
      .meta(d("The agent's heartbeat counter; default: the time in ms.")),
  },
  { in_flight_tasks: "inFlightTasks" },
).meta(d("Every field optional; an empty body is a heartbeat too."));
