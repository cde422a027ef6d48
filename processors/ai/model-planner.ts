/**
 * The model planner: asks a language model for a goal's (or a project phase's) task DAG. It runs
 * in the president's host as a side effect, never inside the decider: the president asked for the
 * plan with PlanRequested, and what this returns (the tasks, or why there are none, with the model,
 * tokens, latency and digests of prompt and answer) is recorded by the president as PlanProposed,
 * which replay reads instead of calling the model again.
 *
 * The answer is constrained to a plan schema: tasks numbered by their position, each naming its
 * domain and specialization from the ones the goal may use, and the numbers of the tasks it depends
 * on. Ids are made here from the numbers, so a model never has to invent consistent ids; whether
 * the graph is sound (no cycle, no unknown task, a worker for every specialization) is the
 * president's check, and its problems go into the next attempt's prompt.
 */
import type { SideEffect } from "../engine/extension.js";
import type { PlanningFinished } from "../domain/decider.js";
import { PHASE_DUTIES } from "../domain/planner.js";
import type { GoalState, HierarchyState, PlanRequest } from "../domain/kernel/state.js";
import type { ModelUsage, TaskSpec, Topology } from "../../schemas/generated/types.js";
import { askForJson } from "./json-answer.js";
import type { ChatModel, JsonSchema } from "./model.js";

/** Name and version of this planner, as recorded in PlanProposed and GoalDecomposed. */
export const MODEL_PLANNER = "model/v1";

export interface ModelPlannerOptions {
  /** Most tasks a plan may have (the schema's bound). Default 8. */
  maxTasks?: number;
  /** Tokens the answer may take. Default 2048. */
  maxTokens?: number;
  /** Time limit of one planning attempt, in ms. Default 120 000. */
  timeoutMs?: number;
}

/** What the goal says that a planner needs, beside the request. */
export type GoalBrief = Pick<GoalState, "goalId" | "title" | "description" | "kind" | "constraints" | "priority">;

/**
 * The plan's JSON schema for a request, written so that a grammar-constrained model can only give a
 * sound plan: position n of the task list may depend only on positions before it (so no cycle and
 * no unknown task), and each task's specialization is one its domain has (a `oneOf` per domain).
 * Strings and lists are bounded, so a rambling model cannot run on. A remote endpoint may ignore
 * the schema; the president checks every plan anyway.
 */
export function planSchema(request: PlanRequest, maxTasks: number): JsonSchema {
  const taskAt = (n: number): JsonSchema => ({
    oneOf: request.domains.map((domain) => {
      const specs = request.specializations[domain] ?? [];
      return {
        type: "object",
        properties: {
          title: { type: "string", minLength: 1, maxLength: 80 },
          description: { type: "string", maxLength: 300 },
          domain: { const: domain },
          specialization: { enum: specs.length > 0 ? specs : [""] },
          dependsOn:
            n === 1
              ? { type: "array", maxItems: 0 }
              : {
                  type: "array",
                  maxItems: Math.min(n - 1, 4),
                  items: { enum: Array.from({ length: n - 1 }, (_, i) => i + 1) },
                },
        },
        required: ["title", "description", "domain", "specialization", "dependsOn"],
        additionalProperties: false,
      };
    }),
  });
  return {
    type: "object",
    properties: {
      tasks: {
        type: "array",
        minItems: 1,
        maxItems: maxTasks,
        prefixItems: Array.from({ length: maxTasks }, (_, i) => taskAt(i + 1)),
      },
    },
    required: ["tasks"],
    additionalProperties: false,
  };
}

/** The system and user prompts for a request: the goal, the domains and their specializations, the phase's duties, earlier problems. */
export function planPrompt(goal: GoalBrief, request: PlanRequest): { system: string; user: string } {
  const system = [
    "You are the planner of a hierarchy of agents (president, governors per domain, mayors, workers per specialization).",
    "Split the goal into a small graph of concrete tasks. Each task belongs to one domain and needs one worker specialization of that domain.",
    "A task lists in dependsOn the numbers (1-based positions in your list) of the tasks that must finish before it starts; list only earlier tasks.",
    "Keep titles under 80 characters and descriptions under 300.",
    "Answer with JSON only, in the schema given.",
  ].join("\n");
  const lines = [
    `Goal: ${goal.title}`,
    goal.description && goal.description !== goal.title ? `Description: ${goal.description}` : null,
    `Priority: ${goal.priority} of 10`,
    Object.keys(goal.constraints).length > 0
      ? `Constraints: ${Object.entries(goal.constraints)
          .map(([k, v]) => `${k}=${v}`)
          .join(", ")}`
      : null,
    "Domains and the worker specializations each has:",
    ...request.domains.map((d) => `- ${d}: ${(request.specializations[d] ?? []).join(", ") || "(any)"}`),
  ];
  if (request.phase) {
    const duty = PHASE_DUTIES[request.phase];
    lines.push(
      `This is the ${request.phase} phase of a project. The ${duty.lead.toLowerCase()} tier leads it.`,
      `Leading work in each domain: ${duty.leads}.`,
      `Other specializations contribute: ${duty.contributes}.`,
      `At the end of the phase the president approves ${duty.approves}. Plan only this phase's tasks.`,
    );
  }
  if (request.feedback.length > 0)
    lines.push(
      `Your previous plan (attempt ${request.attempt - 1}) was refused:`,
      ...request.feedback.map((f) => `- ${f}`),
      "Fix these problems.",
    );
  return { system, user: lines.filter((l): l is string => l !== null).join("\n") };
}

interface PlannedTask {
  title: string;
  description: string;
  domain: string;
  specialization: string;
  dependsOn: number[];
}

/** The task id of the n-th planned task (1-based): `t<n>`, prefixed by the phase in a project. */
export function plannedTaskId(request: Pick<PlanRequest, "phase">, n: number): string {
  return `${request.phase ? `${request.phase.toLowerCase()}-` : ""}t${n}`;
}

/** Turns the model's answer into task specs; numbers that name no task stay as ids the president refuses. */
export function tasksOfAnswer(request: PlanRequest, tasks: PlannedTask[]): TaskSpec[] {
  return tasks.map((t, i) => ({
    id: plannedTaskId(request, i + 1),
    title: t.title,
    description: t.description || null,
    domain: t.domain,
    specialization: t.specialization || null,
    phase: request.phase,
    dependsOn: [...new Set(t.dependsOn)].map((n) => plannedTaskId(request, n)),
    estimatedEffortMs: null,
    priority: null,
    inputs: {},
    timeoutMs: null,
  }));
}

/** Asks the model for a plan; never throws: a failed call is a PlanningFinished with its error. */
export async function planWithModel(
  model: ChatModel,
  goal: GoalBrief,
  request: PlanRequest,
  options: ModelPlannerOptions,
  signal: AbortSignal,
): Promise<PlanningFinished> {
  const maxTasks = options.maxTasks ?? 8;
  const schema = planSchema(request, maxTasks);
  const { system, user } = planPrompt(goal, request);
  const finished = (tasks: TaskSpec[], usage: ModelUsage | null, error: string | null): PlanningFinished => ({
    type: "PlanningFinished",
    goalId: goal.goalId,
    requestId: request.requestId,
    planner: MODEL_PLANNER,
    tasks,
    usage,
    error,
  });
  const answer = await askForJson(
    model,
    { system, user, schema, maxTokens: options.maxTokens ?? 2048 },
    options.timeoutMs ?? 120_000,
    signal,
  );
  if (!answer.ok) return finished([], answer.usage, `no plan: ${answer.reason}`);
  return finished(tasksOfAnswer(request, (answer.value as { tasks: PlannedTask[] }).tasks), answer.usage, null);
}

/**
 * The president host's side effects: one planning call per plan the state awaits, each run by the
 * model its request names. `models` gives the configured models by name.
 */
export function planningEffects(
  models: (name: string) => ChatModel | null,
  options: (topology: Topology) => ModelPlannerOptions,
): (state: HierarchyState) => SideEffect[] {
  return (state) => {
    const out: SideEffect[] = [];
    for (const goalId of state.awaitingPlans) {
      const goal = state.goals.get(goalId);
      const request = goal?.planning;
      if (!goal || !request) continue;
      out.push({
        key: `plan ${request.requestId}`,
        run: async (signal) => {
          const model = request.model ? models(request.model) : null;
          if (!model)
            return {
              type: "PlanningFinished",
              goalId,
              requestId: request.requestId,
              planner: MODEL_PLANNER,
              tasks: [],
              usage: null,
              error: `model "${request.model ?? ""}" is not configured in this process's topology`,
            };
          return planWithModel(model, goal, request, options(goal.topology), signal);
        },
      });
    }
    return out;
  };
}
