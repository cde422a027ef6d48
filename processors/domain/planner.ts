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

/** What a tier does in each phase, after the AAMAS design's duty table (the workers' part). */
export const PHASE_DUTIES: Record<Phase, string> = {
  INITIATION: "Scope and charter",
  FEASIBILITY: "Assess feasibility and risks",
  REQUIREMENTS: "Specify requirements",
  DESIGN: "Design",
  DEVELOPMENT: "Build",
  QA: "Test",
  DEPLOYMENT: "Deploy",
  LAUNCH: "Launch and hand over",
};

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
    const verb = request.phase ? PHASE_DUTIES[request.phase] : "Deliver";
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
          description: `${verb} the ${domain} part of "${request.title}"`,
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
            description: `${verb} the ${s} work of ${domain} for "${request.title}"`,
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
