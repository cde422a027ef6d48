/**
 * Decomposition: how a goal becomes a graph of tasks. A planner is a plug-in; the default is
 * deterministic (the same goal always yields the same tasks and ids), so replaying the log
 * reproduces every decision. An explicit task graph supplied with the goal is checked here too.
 */
import type { Phase, TaskSpec } from "../../schemas/generated/types.js";

export const PHASES: readonly Phase[] = [
  "INITIATION",
  "FEASIBILITY",
  "REQUIREMENTS",
  "DESIGN",
  "DEVELOPMENT",
  "QA",
  "DEPLOYMENT",
  "LAUNCH",
];

export function nextPhase(phase: Phase): Phase | null {
  return PHASES[PHASES.indexOf(phase) + 1] ?? null;
}

/**
 * What each tier does in each phase of a project, after the AAMAS design's duty table: which tier
 * leads the phase, what the leading work is, what the other specializations contribute, and what
 * the president approves at the phase's gate. Both planners follow it: the template planner turns
 * it into each domain's lead and contributing tasks, the model planner puts it into its prompt.
 */
export interface PhaseDuty {
  /** The tier that leads the phase. */
  lead: "PRESIDENT" | "GOVERNOR" | "MAYOR" | "WORKER";
  /** Short verb phrase used in task titles. */
  verb: string;
  /** The leading work of the phase in each domain. */
  leads: string;
  /** What the domain's other specializations contribute. */
  contributes: string;
  /** What the president approves before the project moves on. */
  approves: string;
}

export const PHASE_DUTIES: Record<Phase, PhaseDuty> = {
  INITIATION: {
    lead: "PRESIDENT",
    verb: "Scope and charter",
    leads: "state the domain's part of the project charter: objectives, scope, stakeholders",
    contributes: "name the constraints and assumptions of this specialization",
    approves: "the project charter and the domains taking part",
  },
  FEASIBILITY: {
    lead: "GOVERNOR",
    verb: "Assess feasibility and risks",
    leads: "assess the domain's technical feasibility, risks and resources needed",
    contributes: "estimate the effort and risks of this specialization's work",
    approves: "the go/no-go decision and the resource plan",
  },
  REQUIREMENTS: {
    lead: "GOVERNOR",
    verb: "Specify requirements",
    leads: "specify the domain's requirements and acceptance criteria",
    contributes: "detail the requirements this specialization must meet",
    approves: "the requirements baseline",
  },
  DESIGN: {
    lead: "MAYOR",
    verb: "Design",
    leads: "design the domain's architecture and interfaces",
    contributes: "design this specialization's components against the domain's architecture",
    approves: "the architecture across domains",
  },
  DEVELOPMENT: {
    lead: "WORKER",
    verb: "Build",
    leads: "build the domain's core that the other parts depend on",
    contributes: "build this specialization's part on the domain's core",
    approves: "feature completeness against the requirements",
  },
  QA: {
    lead: "MAYOR",
    verb: "Test",
    leads: "plan and run the domain's tests against the acceptance criteria",
    contributes: "test this specialization's part and report defects",
    approves: "the quality gate: tests passed, defects closed",
  },
  DEPLOYMENT: {
    lead: "GOVERNOR",
    verb: "Deploy",
    leads: "deploy the domain's release and check it in its environment",
    contributes: "deploy and configure this specialization's part",
    approves: "the release in production",
  },
  LAUNCH: {
    lead: "PRESIDENT",
    verb: "Launch and hand over",
    leads: "launch the domain's part and hand it over to operations",
    contributes: "hand over this specialization's runbooks and monitoring",
    approves: "the launch and the project's closure",
  },
};

/** How a topology plans goals submitted without tasks (the topology file's `planner`). */
export interface PlanningConfig {
  /** `template` (deterministic, inside the decider) or `model` (a language model, a recorded side effect). */
  planner: PlannerKind;
  /** The model (a name in the topology's `models`) the model planner asks; null for the template planner. */
  model: string | null;
  /** Attempts the model planner gets (an invalid plan is asked again with its problems), then the goal is given up. */
  maxAttempts: number;
  /** Names of every configured model, for a goal's `plannerModel` constraint. */
  models: readonly string[];
}

export const PLANNER_KINDS = ["template", "model"] as const;
export type PlannerKind = (typeof PLANNER_KINDS)[number];

export const DEFAULT_PLANNING: PlanningConfig = { planner: "template", model: null, maxAttempts: 3, models: [] };

/** Goal constraints that choose the planner of one goal over its topology's. */
export const PLANNER_CONSTRAINT = "planner";
export const PLANNER_MODEL_CONSTRAINT = "plannerModel";

/** The planning of one goal: its topology's, with the goal's constraints applied; or the problems with those. */
export function planningOf(
  constraints: Record<string, string>,
  topology: PlanningConfig,
): { config: PlanningConfig; problems: string[] } {
  const problems: string[] = [];
  const kind = constraints[PLANNER_CONSTRAINT] ?? topology.planner;
  const model = constraints[PLANNER_MODEL_CONSTRAINT] ?? topology.model ?? topology.models[0] ?? null;
  if (!(PLANNER_KINDS as readonly string[]).includes(kind))
    problems.push(`constraints.${PLANNER_CONSTRAINT} must be one of ${PLANNER_KINDS.join(", ")}, got "${kind}"`);
  else if (kind === "model" && (model === null || !topology.models.includes(model)))
    problems.push(
      model === null
        ? `constraints.${PLANNER_CONSTRAINT} is "model" but the topology configures no model: add one under "models" in the topology file`
        : `constraints.${PLANNER_MODEL_CONSTRAINT} "${model}" is not a configured model; configured: ${topology.models.join(", ") || "none"}`,
    );
  return { config: { ...topology, planner: kind as PlannerKind, model: kind === "model" ? model : null }, problems };
}

export interface PlanRequest {
  goalId: string;
  title: string;
  description: string;
  /** The domains to plan for: the goal's hints, or every domain of the topology when none. */
  domains: string[];
  /** The specializations each domain's workers offer. */
  specializations: (domain: string) => string[];
  /** For a project, the phase to plan; null plans a plain goal. */
  phase: Phase | null;
}

export interface Planner {
  readonly name: string;
  plan(request: PlanRequest): TaskSpec[];
}

function spec(fields: Partial<TaskSpec> & Pick<TaskSpec, "id" | "title" | "domain">): TaskSpec {
  return {
    description: null,
    specialization: null,
    phase: null,
    dependsOn: [],
    estimatedEffortMs: null,
    priority: null,
    inputs: {},
    timeoutMs: null,
    ...fields,
  };
}

/**
 * The default planner. Per domain: a lead task on the domain's first specialization, then one task
 * per other specialization that depends on the lead. A plain goal gets a final integration task
 * (in the first domain) that depends on every domain's work, so results meet in one place.
 */
export const templatePlanner: Planner = {
  name: "templates/v1",
  plan(request) {
    const duty = request.phase ? PHASE_DUTIES[request.phase] : null;
    const verb = duty?.verb ?? "Deliver";
    const about = request.description && request.description !== request.title ? `: ${request.description}` : "";
    const prefix = request.phase ? `${request.phase.toLowerCase()}-` : "";
    const tasks: TaskSpec[] = [];
    for (const domain of request.domains) {
      const specs = request.specializations(domain);
      const [lead, ...rest] = specs.length > 0 ? specs : [null];
      const leadId = `${prefix}${domain}-${lead ?? "lead"}`;
      tasks.push(
        spec({
          id: leadId,
          title: `${verb}: ${domain}${lead ? ` (${lead})` : ""}`,
          description: duty
            ? `${duty.lead.toLowerCase()}-led ${request.phase!.toLowerCase()}: ${duty.leads} for "${request.title}"${about}; the president approves ${duty.approves}`
            : `${verb} the ${domain} part of "${request.title}"${about}`,
          domain,
          specialization: lead ?? null,
          phase: request.phase,
        }),
      );
      for (const s of rest) {
        tasks.push(
          spec({
            id: `${prefix}${domain}-${s}`,
            title: `${verb}: ${domain} (${s})`,
            description: duty
              ? `${s} in ${domain}: ${duty.contributes} for "${request.title}"${about}`
              : `${verb} the ${s} work of ${domain} for "${request.title}"${about}`,
            domain,
            specialization: s,
            phase: request.phase,
            dependsOn: [leadId],
          }),
        );
      }
    }
    if (!request.phase && request.domains.length > 1) {
      const first = request.domains[0]!;
      tasks.push(
        spec({
          id: "integrate",
          title: `Integrate: ${request.title}`,
          description: "Bring every domain's results together",
          domain: first,
          specialization: request.specializations(first)[0] ?? null,
          dependsOn: tasks.map((t) => t.id),
        }),
      );
    }
    return tasks;
  },
};

/**
 * Problems with an explicit task graph, in words naming the tasks: duplicate ids, dependencies on
 * unknown tasks, self-dependencies and cycles. Empty when the graph is a valid DAG.
 */
export function taskGraphProblems(tasks: readonly TaskSpec[]): string[] {
  const problems: string[] = [];
  if (tasks.length === 0)
    problems.push("the task graph is empty: give at least one task, or none to let the planner decompose");
  const ids = new Set<string>();
  for (const t of tasks) {
    if (ids.has(t.id)) problems.push(`task id "${t.id}" is used twice`);
    ids.add(t.id);
  }
  for (const t of tasks) {
    for (const d of t.dependsOn) {
      if (d === t.id) problems.push(`task "${t.id}" depends on itself`);
      else if (!ids.has(d)) problems.push(`task "${t.id}" depends on unknown task "${d}"`);
    }
  }
  if (problems.length > 0) return problems;
  const cycle = findCycle(tasks);
  if (cycle) problems.push(`the tasks form a cycle: ${cycle.join(" -> ")}`);
  return problems;
}

function findCycle(tasks: readonly TaskSpec[]): string[] | null {
  const deps = new Map(tasks.map((t) => [t.id, t.dependsOn]));
  const state = new Map<string, "visiting" | "done">();
  const path: string[] = [];
  const visit = (id: string): string[] | null => {
    if (state.get(id) === "done") return null;
    if (state.get(id) === "visiting") return [...path.slice(path.indexOf(id)), id];
    state.set(id, "visiting");
    path.push(id);
    for (const d of deps.get(id) ?? []) {
      const found = visit(d);
      if (found) return found;
    }
    path.pop();
    state.set(id, "done");
    return null;
  };
  for (const t of tasks) {
    const found = visit(t.id);
    if (found) return found.reverse();
  }
  return null;
}
