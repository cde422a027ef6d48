/**
 * The request bodies of the gateway's commands, one zod schema each: GraphQL and REST validate
 * with them (gateway/inputs.ts turns their output into command payloads) and the OpenAPI document
 * describes them (json-schema.ts), so a limit is written once. Field order is the order problems
 * are reported in.
 */
import { z } from "zod";
import { EXECUTORS, PHASES, POLICY_CATEGORIES, TIERS, TOPOLOGIES } from "./enums.js";
import {
  aliased,
  bool,
  dateTime,
  decimal,
  id,
  int,
  list,
  MAX_DURATION_MS,
  need,
  oneOf,
  stringMap,
  strings,
  text,
} from "./fields.js";

/** The design's priority names, on this API's 1 (lowest) to 10 scale. */
export const PRIORITY_NAMES: Readonly<Record<string, number>> = { low: 3, medium: 5, high: 8, critical: 10 };
/** A title derived from a description is its first non-empty line, cut to this length. */
export const DERIVED_TITLE_MAX = 120;
export const MAX_TASKS = 1000;
export const MAX_DEPENDS_ON = 100;
export const MAX_DOMAIN_HINTS = 20;
export const MAX_RULES_CHARS = 64_000;

/** The first non-empty line of a description, as a title. */
export function titleFrom(description: string): string {
  const line = description.split(/\r?\n/).find((l) => l.trim()) ?? "";
  const t = line.trim();
  return t.length <= DERIVED_TITLE_MAX ? t : `${t.slice(0, DERIVED_TITLE_MAX - 1)}\u2026`;
}

const d = (description: string) => ({ description });

// --- fields several bodies share -----------------------------------------------------------------------

const title = text({ required: true, max: 200 });
const description = text({ max: 4000 });
const domain = text({ max: 64 });
const specialization = text({ max: 64 });
const phase = oneOf(PHASES);
const priority = int(1, 10);
const estimatedEffortMs = int(0, MAX_DURATION_MS).meta(d("Expected effort, at most 30 days."));
/** One attempt's time limit (processors/domain/time-limits.ts): at most 30 days. */
const timeoutMs = int(1, MAX_DURATION_MS).meta(d("One attempt's time limit, at most 30 days."));
const inputs = stringMap().meta(d("Named inputs handed to the worker (at most 100)."));
const reason = text({ required: true, max: 2000 });
const tier = oneOf(TIERS);
const topology = oneOf(TOPOLOGIES);

/** A priority as a number, or by the DGM design's names (any case). */
const priorityName = z
  .string()
  .refine((n) => Object.hasOwn(PRIORITY_NAMES, n.toLowerCase()), {
    error: (i) =>
      `must be an integer from 1 to 10 or one of ${Object.keys(PRIORITY_NAMES).join(", ")}, got "${String(i.input)}"`,
  })
  .transform((n) => PRIORITY_NAMES[n.toLowerCase()]!)
  .meta({ enum: Object.keys(PRIORITY_NAMES) });
const goalPriority = z
  .union([priority, priorityName], {
    error: (i) => `must be an integer from 1 to 10, got ${JSON.stringify(i.input)}`,
  })
  .meta(
    d(
      `1 (lowest) to 10, default 5; or the DGM design's names: ${Object.entries(PRIORITY_NAMES)
        .map(([k, v]) => `${k} (${v})`)
        .join(", ")}.`,
    ),
  );

/** A deadline: an ISO-8601 date-time, or epoch milliseconds (the DGM design). */
const epochMs = z
  .number()
  .int()
  .min(0, { error: (i) => `must be an ISO-8601 date-time or epoch milliseconds, got ${String(i.input)}` })
  .transform((ms) => new Date(ms));
const deadline = z
  .union([dateTime(), epochMs], {
    error: (i) =>
      typeof i.input === "number"
        ? `must be an ISO-8601 date-time or epoch milliseconds, got ${i.input}`
        : `must be a string, got ${typeof i.input}`,
  })
  .meta(d("Must be in the future: an ISO-8601 date-time, or epoch milliseconds (the DGM design)."));

/** Constraints: strings kept as sent, other JSON values (the DGM design's) kept as their JSON text. */
const constraintValue = z
  .unknown()
  .refine((v) => v !== null && v !== undefined, { error: "must be a string" })
  .transform((v) => (typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v)));
const constraints = stringMap(constraintValue).meta(
  d(
    "Free-form constraints for the planner (at most 100). String values are kept as sent; other values (the DGM design's numbers, lists, objects) are kept as their JSON text.",
  ),
);

/** Policy rules are JSON: an object, or a string holding one; stored as a string. */
const rules = z
  .union([z.string(), z.record(z.string(), z.unknown())], {
    error: (i) =>
      i.input === undefined || i.input === null
        ? "is required (a JSON object of rules)"
        : "must be a JSON object (as an object or a string holding one)",
  })
  .transform((v, ctx) => {
    const json = typeof v === "string" ? v : JSON.stringify(v);
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      parsed = null;
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      ctx.issues.push({
        code: "custom",
        input: v,
        message: "must be a JSON object (as an object or a string holding one)",
      });
    else if (json.length > MAX_RULES_CHARS)
      ctx.issues.push({ code: "custom", input: v, message: "must be at most 64 000 characters" });
    return json;
  })
  .meta(d("A JSON object of rules, as an object or a string holding one (at most 64 000 characters)."));

// --- goals and projects ----------------------------------------------------------------------------------

export const TASK_ALIASES = {
  depends_on: "dependsOn",
  estimated_effort_ms: "estimatedEffortMs",
  timeout_ms: "timeoutMs",
} as const;

const taskShape = {
  id: id(true).meta(d("Task id, unique within the goal; other tasks name it in dependsOn.")),
  title,
  description: description.nullish(),
  domain: text({ required: true, max: 64 }).meta(d("The domain whose agents do the task (e.g. frontend).")),
  specialization: specialization.nullish().meta(d("The worker specialization (e.g. react).")),
  phase: phase.nullish(),
  dependsOn: strings({ max: MAX_DEPENDS_ON, pattern: /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/ })
    .nullish()
    .meta(d(`Ids of tasks that must complete first (at most ${MAX_DEPENDS_ON}).`)),
  estimatedEffortMs: estimatedEffortMs.nullish(),
  priority: priority.nullish(),
  inputs: inputs.nullish(),
  timeoutMs: timeoutMs.nullish(),
};

/** One task of an explicit task DAG. */
export const TaskInput = aliased(taskShape, TASK_ALIASES);

export const GOAL_ALIASES = { goal_id: "goalId", domain_hints: "domainHints" } as const;

/**
 * SubmitGoal / submitProject: this API's GoalInput or the DGM design's GoalRequest (description,
 * priority by name, deadline in epoch millis, domain_hints, no title). The kind comes from the route.
 */
export const GoalInput = aliased(
  {
    goalId: id().nullish().meta(d("Leave out to get a generated id.")),
    title: title
      .nullish()
      .meta(
        d(
          `Required unless a description is given: then its first non-empty line (at most ${DERIVED_TITLE_MAX} characters) is the title.`,
        ),
      ),
    description: description.nullish(),
    priority: goalPriority.nullish(),
    topology: topology.nullish().meta(d("Which hierarchy runs it; default aamas.")),
    domainHints: strings({ max: MAX_DOMAIN_HINTS })
      .nullish()
      .meta(d(`Domains the planner should consider (at most ${MAX_DOMAIN_HINTS}).`)),
    constraints: constraints.nullish(),
    deadline: deadline.nullish(),
    budget: decimal("120.50").nullish().meta(d("A decimal with at most four places.")),
    tasks: z
      .array(TaskInput, { error: "must be a list" })
      .min(1, { error: "must not be empty; leave it out to let the planner decompose" })
      .max(MAX_TASKS, { error: `must have at most ${MAX_TASKS} entries` })
      .nullish()
      .meta(
        d(
          `An explicit task DAG (1 to ${MAX_TASKS} tasks); leave out to let the planner decompose. Each task also accepts depends_on, estimated_effort_ms and timeout_ms.`,
        ),
      ),
  },
  GOAL_ALIASES,
)
  .transform((g, ctx) => {
    if (!g.title && typeof g.description === "string" && g.description.trim()) g.title = titleFrom(g.description);
    need(ctx, g, "title", "is required (or send a description: its first line becomes the title)");
    return g;
  })
  .meta({
    description:
      "A goal or project to submit: this API's GoalInput, or the DGM design's GoalRequest (description, priority, constraints, deadline, domain_hints; no title). Sending a field under both names with different values is refused. The kind comes from the route (/goals or /projects).",
    anyOf: [{ required: ["title"] }, { required: ["description"] }],
  });

export const PhaseTransitionInput = z.object({
  goalId: id(true),
  fromPhase: phase.meta(d("The phase the project is in; a stale one is refused by the hierarchy.")),
  toPhase: phase,
  justification: text({ max: 2000 }).nullish(),
});

export const EmergencyStopInput = z.object({ goalId: id(true), reason });

// --- agents --------------------------------------------------------------------------------------------

export const ScaleAgentsInput = z
  .object({
    tier,
    topology: topology.nullish(),
    domain: domain.nullish(),
    specialization: specialization.nullish(),
    targetCount: int(0, 1000),
    reason: text({ max: 2000 }).nullish(),
  })
  .meta(d("Registers or retires agents until the tier (and domain) has targetCount of them."));

export const RegisterAgentInput = z.object({
  agentId: id(true),
  name: text({ max: 200 }).nullish(),
  tier,
  topology: topology.nullish(),
  domain: domain.nullish(),
  specialization: specialization.nullish(),
  superiorId: id().nullish(),
  capacity: int(1, 1000).nullish(),
  executor: oneOf(EXECUTORS).nullish().meta(d("Default external; model runs the group's configured model.")),
  labels: stringMap().nullish().meta(d("Labels (at most 100).")),
  heartbeatIntervalMs: int(100, 3_600_000).nullish(),
});

/** POST /agents/command: one command by its `type`. */
export const AGENT_COMMANDS = {
  scale: ScaleAgentsInput,
  register: RegisterAgentInput,
  stop: EmergencyStopInput,
  emergency_stop: EmergencyStopInput,
} as const;

export const AgentCommand = z
  .discriminatedUnion("type", [
    ScaleAgentsInput.extend({ type: z.literal("scale") }),
    RegisterAgentInput.extend({ type: z.literal("register") }),
    EmergencyStopInput.extend({ type: z.enum(["stop", "emergency_stop"]) }),
  ])
  .meta({
    description:
      "One command by its `type`: `scale` takes the fields of ScaleAgentsInput (as POST /agents/scale), `register` those of RegisterAgentInput (as POST /agents), `stop` (or `emergency_stop`) those of EmergencyStopInput (as POST /emergency/stop: every open task of the goal cancelled, its agents released). There is no command to terminate one agent: ScaleAgents retires the least loaded agents of a group.",
    discriminator: { propertyName: "type" },
  });

// --- policies --------------------------------------------------------------------------------------------

const appliesToTiers = list(tier, 100, "must be a list of strings");
const domains = strings({ max: 50 }).meta(d("At most 50."));

export const PolicyInput = z.object({
  policyId: id(true),
  name: text({ required: true, max: 200 }),
  category: oneOf(POLICY_CATEGORIES),
  description: text({ required: true, max: 4000 }),
  rules,
  appliesToTiers: appliesToTiers.nullish(),
  domains: domains.nullish(),
  precedence: int(0, 1000).nullish(),
  effectiveFrom: dateTime().nullish(),
});

export const PolicyAmendmentInput = z.object({
  policyId: id(true),
  expectedVersion: int(1, 1_000_000).meta(d("The version being amended; a stale one is refused.")),
  rules,
  description: description.nullish(),
  appliesToTiers: appliesToTiers.nullish(),
  domains: domains.nullish(),
  precedence: int(0, 1000).nullish(),
  rationale: text({ required: true, max: 2000 }),
  effectiveFrom: dateTime().nullish(),
});

// --- task results ----------------------------------------------------------------------------------------

export const TaskResultInput = z
  .object({
    goalId: id(true),
    taskId: id(true),
    attempt: int(1, 1000).meta(d("The attempt the agent was given (TaskAssigned.attempt).")),
    status: oneOf(["COMPLETED", "FAILED"]),
    durationMs: int(0, MAX_DURATION_MS).nullish(),
    result: text({ required: true, max: 100_000 }).nullish().meta(d("Required when COMPLETED.")),
    outputs: stringMap().nullish().meta(d("Named outputs (COMPLETED).")),
    cost: decimal("0.1200").nullish().meta(d("Cost of the attempt (COMPLETED); default 0.0000.")),
    reason: text({ required: true, max: 4000 }).nullish().meta(d("Required when FAILED.")),
    retryable: bool().nullish().meta(d("FAILED: whether another attempt may succeed; default true.")),
  })
  .transform((r, ctx) => {
    need(ctx, r, r.status === "COMPLETED" ? "result" : "reason");
    return r;
  })
  .meta(d("An external agent's result for the attempt it holds."));

// --- the routes the designs give a governor (gateway/design-commands.ts) ---------------------------------

/**
 * POST /governors/{id}/tasks: one task, submitted as a one-task goal in the governor's domain. It is
 * validated as that goal (GoalInput, TaskInput), whose fields these are.
 */
export const GovernorTaskInput = aliased(
  {
    title: taskShape.title
      .nullish()
      .meta(d("Required unless a description is given (its first line becomes the title).")),
    description: taskShape.description,
    taskId: id().nullish().meta(d('The task\'s id in its goal; default "task".')),
    goalId: id().nullish().meta(d("The goal's id; leave out to get a generated one.")),
    specialization: specialization.nullish().meta(d("A worker specialization of the governor's domain (e.g. react).")),
    phase: taskShape.phase,
    priority: taskShape.priority.meta(d("1 (lowest) to 10; default 5.")),
    estimatedEffortMs: taskShape.estimatedEffortMs,
    timeoutMs: taskShape.timeoutMs,
    inputs: taskShape.inputs,
    deadline: deadline.nullish(),
    budget: decimal("120.50").nullish().meta(d("The goal's budget.")),
    constraints: constraints.nullish(),
    domain: domain.nullish().meta(d("Optional; must be the governor's domain.")),
    topology: topology.nullish().meta(d("Optional; must be the governor's topology.")),
  },
  { goal_id: "goalId", task_id: "taskId", estimated_effort_ms: "estimatedEffortMs", timeout_ms: "timeoutMs" },
).meta(
  d(
    "One task for a governor: submitted as a goal of one task in the governor's domain (SubmitGoal), which the president routes to that domain's governor.",
  ),
);

/** PUT /governors/{id}/resources: a ScaleAgents for a group under the governor. */
export const GovernorResourcesInput = z
  .object({
    targetCount: ScaleAgentsInput.shape.targetCount.meta(d("How many agents the group should have.")),
    tier: oneOf(["WORKER", "MAYOR"])
      .nullish()
      .meta(d("The group below the governor: WORKER (default) or MAYOR (aamas only).")),
    specialization: specialization
      .nullish()
      .meta(d("WORKER: only this specialization's workers; leave out for the whole domain.")),
    reason: ScaleAgentsInput.shape.reason,
    domain: domain.nullish().meta(d("Optional; must be the governor's domain.")),
    topology: topology.nullish().meta(d("Optional; must be the governor's topology.")),
  })
  .meta(
    d("The number of agents of one group under the governor: a ScaleAgents for the governor's domain and topology."),
  );
