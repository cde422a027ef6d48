/**
 * The REST API under /api/v1: the endpoints both source designs list, on the same read side and
 * command paths as GraphQL (gateway/read-side.ts, gateway/commands.ts), so both refuse and answer alike.
 *
 * Handlers only translate HTTP to those calls: path parameters and query strings in, a JSON view of
 * the read-model documents out. Inputs are validated by gateway/inputs.ts (through Commands) and
 * permissions by gateway/auth.ts; nothing here re-checks a body field. Every route is described in
 * gateway/openapi.ts, and a test walks this router to keep the two in step.
 *
 * Commands answer 202 Accepted with a CommandReceipt: the command is durably in the log, and the
 * hierarchy acts on it asynchronously. `?wait=true` waits (bounded) until the read model shows the
 * effect, and the receipt says whether it did (`projected`) and what it shows (`outcome`).
 */
import express, { type Request, type Response } from "express";
import {
  goalModelUsage,
  goalsOf,
  latestPhase,
  noTaskUsage,
  noUsage,
  type AgentDoc,
  type EscalationDoc,
  type GoalDoc,
  type PolicyDoc,
  type TaskDoc,
} from "../projections/mongo/state-store.js";
import { GOAL_RANK, TASK_RANK } from "../processors/domain/kernel/status.js";
import type { Commands, CommandReceipt } from "./commands.js";
import { require, type Action, type Principal } from "./auth.js";
import { forbidden, GatewayError, invalid, notFound } from "./errors.js";
import { modelUsageFor } from "./graphql/analytics.js";
import { designSystemHealth, systemHealth } from "./graphql/health.js";
import { scaleGovernor, submitGovernorTask } from "./design-commands.js";
import type { HealthChecks } from "./health.js";
import { POLICY_CATEGORIES, TIERS, TOPOLOGIES } from "./inputs.js";
import { openApiDocument } from "./openapi.js";
import type { ReadSide } from "./read-side.js";
import { Viewer } from "./visibility.js";
import { sendError } from "./server.js";

export interface RestDeps {
  read: ReadSide;
  commands: Commands;
  health: HealthChecks;
}

type Handler = (req: Request, res: Response) => Promise<unknown>;

/** Runs a handler; a GatewayError becomes its status and JSON error body. */
const handle =
  (h: Handler) =>
  (req: Request, res: Response): void => {
    h(req, res).then(
      (body) => {
        if (!res.headersSent) res.json(body);
      },
      (e) => sendError(res, e),
    );
  };

export const GOAL_STATUSES = Object.keys(GOAL_RANK);
export const TASK_STATUSES = Object.keys(TASK_RANK);
/** Tiers whose status report /governors/{id}/status gives (GOVERNOR in AAMAS, SUB_MASTER in DGM). */
export const GOVERNOR_TIERS = ["GOVERNOR", "SUB_MASTER"];

// --- request helpers --------------------------------------------------------------------------------

const who = (req: Request, action: Action): Principal => require(req.principal ?? null, action);

/** One query-string value; a repeated parameter is refused rather than silently picking one. */
function query(req: Request, name: string): string | null {
  const v = (req.query as Record<string, unknown>)[name];
  if (v === undefined || v === "") return null;
  if (typeof v !== "string") throw invalid(name, "give this query parameter once, as a plain value");
  return v;
}

function oneOfQuery(req: Request, name: string, allowed: readonly string[]): string | null {
  const v = query(req, name);
  if (v !== null && !allowed.includes(v)) throw invalid(name, `must be one of ${allowed.join(", ")}, got "${v}"`);
  return v;
}

/** The agent filter of the agent and metrics lists: `?tier=&domain=&topology=`. */
function agentQuery(req: Request) {
  return {
    tier: oneOfQuery(req, "tier", TIERS),
    domain: query(req, "domain"),
    topology: oneOfQuery(req, "topology", TOPOLOGIES),
  };
}

/** An integer query parameter; range checks stay with the reader it is for. */
function intQuery(req: Request, name: string): number | undefined {
  const v = query(req, name);
  if (v === null) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n)) throw invalid(name, `must be an integer, got "${v}"`);
  return n;
}

function waitOption(req: Request): { waitForProjection: boolean } {
  const v = query(req, "wait");
  if (v === null || v === "false" || v === "0") return { waitForProjection: false };
  if (v === "true" || v === "1") return { waitForProjection: true };
  throw invalid("wait", `must be true or false, got "${v}"`);
}

/**
 * The JSON object a command route was sent. Only the transport is checked here (a body exists and
 * is an object); its fields are the command parser's business.
 */
function body(req: Request): Record<string, unknown> {
  const b: unknown = req.body;
  if (b === undefined)
    throw invalid("body", "send a JSON object with Content-Type: application/json (the body is missing)");
  if (b === null || typeof b !== "object" || Array.isArray(b)) throw invalid("body", "must be a JSON object");
  return b as Record<string, unknown>;
}

/** The body with the ids the path gives; a body naming a different one is refused, not overridden. */
function withPath(req: Request, ids: Record<string, string>): Record<string, unknown> {
  const b = body(req);
  for (const [k, v] of Object.entries(ids))
    if (b[k] !== undefined && b[k] !== null && b[k] !== v)
      throw invalid(k, `is given by the path as "${v}"; leave it out of the body or send the same value`);
  return { ...b, ...ids };
}

const param = (req: Request, name: string) => String(req.params[name]);

/** 202 with the receipt, and where to read the aggregate when there is a route for it. */
function accepted(res: Response, r: CommandReceipt, location?: string): CommandReceipt {
  res.status(202);
  if (location) res.setHeader("Location", location);
  return r;
}

// --- views ------------------------------------------------------------------------------------------
// The read-model documents as the API shows them: `id` instead of `_id`, no projection bookkeeping
// (`_pos`), string maps as objects (the store keeps them as name/value lists for FerretDB's sake).

type Entries = { name: string; value: string }[] | Record<string, string> | null | undefined;
const asObject = (v: Entries): Record<string, string> =>
  !v ? {} : Array.isArray(v) ? Object.fromEntries(v.map((e) => [e.name, e.value])) : v;

export function goalView(g: GoalDoc) {
  const { _id, _pos, goalId: _goalId, ...rest } = g;
  // Every model call of the goal (plans and tasks), named as on the task and in GraphQL.
  const models = goalModelUsage(g);
  return {
    id: _id,
    ...rest,
    domainHints: rest.domainHints ?? [],
    constraints: asObject(rest.constraints),
    outputs: asObject(rest.outputs),
    phases: (rest.phases ?? []).map((p) => ({ ...p, planner: p.planner ?? null })),
    // A document written before plans and model usage were projected has none: none made.
    plans: rest.plans ?? [],
    planUsage: rest.planUsage ?? noUsage(),
    taskUsage: rest.taskUsage ?? noTaskUsage(),
    tokensIn: models.tokensIn,
    tokensOut: models.tokensOut,
    modelCalls: models.calls,
    modelLatencyMs: models.latencyMs,
    modelCost: models.cost,
  };
}

export function taskView(t: TaskDoc) {
  const { _id, _pos, ...rest } = t;
  return {
    id: _id,
    ...rest,
    dependsOn: rest.dependsOn ?? [],
    outputs: asObject(rest.outputs),
    model: rest.model ?? null,
    tokensIn: rest.tokensIn ?? 0,
    tokensOut: rest.tokensOut ?? 0,
    modelCalls: rest.modelCalls ?? 0,
    modelLatencyMs: rest.modelLatencyMs ?? 0,
    usage: rest.usage ?? null,
    attemptUsage: rest.attemptUsage ?? [],
  };
}

/**
 * An agent without its open-task keys: those name goals of every tenant. `currentTasks` is given
 * only by GET /agents/{id}, filtered to the caller's tenant.
 */
export function agentView(a: AgentDoc) {
  // What the agent holds names goals of every tenant: left out here; GET /agents/:id shows the caller's.
  const {
    _id,
    _pos,
    currentTasks,
    currentTaskPhases: _phases,
    currentPhase: _phase,
    assignedProjects: _projects,
    ...rest
  } = a;
  return {
    id: _id,
    ...rest,
    subordinates: rest.subordinates ?? [],
    labels: asObject(rest.labels),
    openTasks: currentTasks?.length ?? 0,
  };
}

/** The agent's tier as the designs name agent types: "worker", "sub_master", "governor", ... */
const agentType = (tier: string | null) => (tier ? tier.toLowerCase() : null);

/**
 * The AgentInfo fields of the designs (DGM AgentInfo, AAMAS agent documents), snake_case, beside
 * agentView's own: `current_load` is the heartbeat's load (tasks held / capacity), `capabilities`
 * the agent's `capabilities` label (comma-separated) or else its specialization and domain.
 */
export function agentInfo(a: AgentDoc) {
  const labels = asObject(a.labels);
  const capabilities = labels.capabilities
    ? labels.capabilities
        .split(",")
        .map((c) => c.trim())
        .filter(Boolean)
    : [a.specialization, a.domain].filter((c): c is string => !!c);
  return {
    agent_id: a._id,
    agent_type: agentType(a.tier),
    domain: a.domain,
    specialization: a.specialization,
    capabilities,
    current_load: a.load ?? 0,
    max_capacity: a.capacity,
    current_task_count: a.currentTasks?.length ?? 0,
    superior_id: a.superiorId,
    last_heartbeat: a.lastHeartbeat ?? null,
    performance_metrics: {
      tasks_completed: a.performance?.tasksCompleted ?? 0,
      tasks_failed: a.performance?.tasksFailed ?? 0,
      success_rate: a.performance?.successRate ?? null,
      avg_completion_ms: a.performance?.avgCompletionMs ?? null,
    },
  };
}

/**
 * Tasks held (not the load fraction) of agents: load x capacity each, summed. A heartbeat's load is
 * already a fraction of the agent's capacity, so a team's utilization is held / capacity.
 */
const held = (agents: AgentDoc[]) => agents.reduce((n, a) => n + (a.load ?? 0) * (a.capacity ?? 0), 0);
const capacityOf = (agents: AgentDoc[]) => agents.reduce((n, a) => n + (a.capacity ?? 0), 0);
const round4 = (n: number) => Math.round(n * 10_000) / 10_000;

function policyView(p: PolicyDoc) {
  const { _id, _pos, policyId, ...rest } = p;
  const versions = (rest.versions ?? []).map((v) => ({ ...v, rules: parseRules(v.rules) }));
  return {
    id: policyId,
    ...rest,
    versions,
    current: versions.find((v) => v.version === rest.currentVersion) ?? null,
  };
}

function parseRules(rules: string): unknown {
  try {
    return JSON.parse(rules);
  } catch {
    return rules;
  }
}

function escalationView(e: EscalationDoc) {
  const { _id, _pos, escalationId, ...rest } = e;
  return { id: escalationId, ...rest, reasonChain: rest.reasonChain ?? [] };
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function workloadView(r: Record<string, unknown> | null) {
  if (!r) return null;
  return {
    openTasks: r.open_tasks ?? 0,
    completedTasks: r.completed_tasks ?? 0,
    failedTasks: r.failed_tasks ?? 0,
    utilization: num(r.utilization),
    avgDurationMs: num(r.avg_duration_ms),
    lastTaskAt: r.last_task_at ?? null,
  };
}

// --- visibility: gateway/visibility.ts, as in GraphQL -----------------------------------------------

const visibleGoal = (read: ReadSide, p: Principal, id: string): Promise<GoalDoc | null> => new Viewer(read, p).goal(id);
const visibleAgents = (read: ReadSide, p: Principal, agents: AgentDoc[]): Promise<AgentDoc[]> =>
  new Viewer(read, p).agents(agents);

async function visibleAgent(read: ReadSide, p: Principal, id: string): Promise<AgentDoc> {
  const seen = await new Viewer(read, p).agent(id);
  if (!seen) throw notFound(`agent "${id}"`);
  return seen;
}

/** A GOVERNOR (AAMAS) or SUB_MASTER (DGM) the caller sees; 404 for any other agent. */
async function visibleGovernor(read: ReadSide, p: Principal, id: string): Promise<AgentDoc> {
  const agent = await visibleAgent(read, p, id);
  if (!agent.tier || !GOVERNOR_TIERS.includes(agent.tier))
    throw notFound(`governor "${id}" (agent ${id} is a ${agent.tier ?? "agent of unknown tier"})`);
  return agent;
}

/**
 * The DGM design's GoalResponse fields beside the receipt: from the read model when the caller
 * waited for it (?wait=true and it got there), else status SUBMITTED, no tasks or agents yet and
 * no estimate. `estimated_completion` is the completion time once the goal has ended, else null:
 * the platform makes no estimate.
 */
async function goalResponse(read: ReadSide, tenantId: string, r: CommandReceipt) {
  const none = {
    goal_id: r.aggregateId,
    status: "SUBMITTED",
    estimated_completion: null,
    tasks_created: 0,
    agents_allocated: 0,
  };
  const goal = r.projected ? await read.goal(tenantId, r.aggregateId) : null;
  if (!goal) return { ...r, ...none };
  const tasks = await read.tasksOf(tenantId, goal._id);
  const agents = new Set<string>();
  for (const t of tasks) for (const a of Object.values(t.assignees ?? {})) if (a) agents.add(a);
  return {
    ...r,
    goal_id: goal._id,
    status: goal.status ?? "SUBMITTED",
    estimated_completion: goal.completedAt ?? null,
    tasks_created: tasks.length,
    agents_allocated: agents.size,
  };
}

/** Types of POST /agents/command: the agent commands the platform has. */
export const AGENT_COMMAND_TYPES = ["scale", "register", "stop", "emergency_stop"] as const;

function noGoalLists(p: Principal): void {
  if (p.role === "agent")
    throw forbidden("an agent token lists no goals; read its own work with GET /agents/{id} or GET /goals/{id}");
}

// --- the router ---------------------------------------------------------------------------------------

export function restRouter(deps: RestDeps): express.Router {
  const { read, commands } = deps;
  const router = express.Router();

  const page = async (req: Request, kind: "GOAL" | "PROJECT") => {
    const p = who(req, "read");
    noGoalLists(p);
    const result = await read.goals(
      p.tenantId,
      { kind, status: oneOfQuery(req, "status", GOAL_STATUSES), topology: oneOfQuery(req, "topology", TOPOLOGIES) },
      intQuery(req, "first"),
      query(req, "after"),
    );
    return {
      items: result.items.map(goalView),
      pageInfo: { endCursor: result.endCursor, hasNextPage: result.hasNextPage },
      totalCount: result.totalCount,
    };
  };

  const goalWithTasks = async (req: Request, kind: "GOAL" | "PROJECT" | null) => {
    const p = who(req, "read");
    const id = param(req, "id");
    const goal = await visibleGoal(read, p, id);
    if (!goal || (kind && goal.kind !== kind)) throw notFound(`${kind === "PROJECT" ? "project" : "goal"} "${id}"`);
    return { ...goalView(goal), tasks: (await read.tasksOf(p.tenantId, goal._id)).map(taskView) };
  };

  // --- documentation and liveness (public) ---

  router.get("/openapi.json", (_req, res) => {
    res.json(openApiDocument());
  });
  router.get("/health", (_req, res) => {
    res.json({ status: "ok" });
  });

  // --- goals ---

  router.post(
    "/goals",
    handle(async (req, res) => {
      const r = await commands.submitGoal(req.principal ?? null, body(req), "GOAL", waitOption(req));
      accepted(res, r, `/api/v1/goals/${encodeURIComponent(r.aggregateId)}`);
      return goalResponse(read, who(req, "submit").tenantId, r);
    }),
  );
  router.get(
    "/goals",
    handle((req) => page(req, "GOAL")),
  );
  router.get(
    "/goals/:id",
    handle((req) => goalWithTasks(req, null)),
  );
  router.get(
    "/goals/:id/tasks",
    handle(async (req) => {
      const p = who(req, "read");
      const id = param(req, "id");
      const status = oneOfQuery(req, "status", TASK_STATUSES);
      if (!(await visibleGoal(read, p, id))) throw notFound(`goal "${id}"`);
      const tasks = await read.tasksOf(p.tenantId, id);
      return { items: tasks.filter((t) => !status || t.status === status).map(taskView) };
    }),
  );
  router.get(
    "/goals/:id/events",
    handle(async (req) => {
      const p = who(req, "read");
      const id = param(req, "id");
      const limit = intQuery(req, "limit") ?? 1000;
      if (limit < 1 || limit > 10_000) throw invalid("limit", "must be from 1 to 10000");
      if (!(await visibleGoal(read, p, id))) throw notFound(`goal "${id}"`);
      return { items: await read.eventTrail(p.tenantId, id, limit) };
    }),
  );
  router.post(
    "/goals/:id/stop",
    handle(async (req, res) => {
      const id = param(req, "id");
      const r = await commands.emergencyStop(req.principal ?? null, withPath(req, { goalId: id }), waitOption(req));
      return accepted(res, r, `/api/v1/goals/${encodeURIComponent(id)}`);
    }),
  );
  router.post(
    "/emergency/stop",
    handle(async (req, res) => {
      const r = await commands.emergencyStop(req.principal ?? null, body(req), waitOption(req));
      return accepted(res, r, `/api/v1/goals/${encodeURIComponent(r.aggregateId)}`);
    }),
  );

  // --- projects ---

  router.post(
    "/projects",
    handle(async (req, res) => {
      const r = await commands.submitGoal(req.principal ?? null, body(req), "PROJECT", waitOption(req));
      accepted(res, r, `/api/v1/projects/${encodeURIComponent(r.aggregateId)}`);
      return goalResponse(read, who(req, "submit").tenantId, r);
    }),
  );
  router.get(
    "/projects",
    handle((req) => page(req, "PROJECT")),
  );
  router.get(
    "/projects/:id",
    handle((req) => goalWithTasks(req, "PROJECT")),
  );
  router.put(
    "/projects/:id/phase",
    handle(async (req, res) => {
      const id = param(req, "id");
      const r = await commands.requestPhaseTransition(
        req.principal ?? null,
        withPath(req, { goalId: id }),
        waitOption(req),
      );
      return accepted(res, r, `/api/v1/projects/${encodeURIComponent(id)}`);
    }),
  );

  // --- tasks ---

  router.post(
    "/tasks/:goalId/:taskId/result",
    handle(async (req, res) => {
      const ids = { goalId: param(req, "goalId"), taskId: param(req, "taskId") };
      return accepted(res, await commands.reportTaskResult(req.principal ?? null, withPath(req, ids)));
    }),
  );

  // --- agents ---

  router.get(
    "/agents",
    handle(async (req) => {
      const p = who(req, "read");
      const agents = await read.agents({ ...agentQuery(req), status: query(req, "status") });
      return { items: (await visibleAgents(read, p, agents)).map((a) => ({ ...agentView(a), ...agentInfo(a) })) };
    }),
  );
  router.post(
    "/agents",
    handle(async (req, res) => {
      const r = await commands.registerAgent(req.principal ?? null, body(req), waitOption(req));
      return accepted(res, r, `/api/v1/agents/${encodeURIComponent(r.aggregateId)}`);
    }),
  );
  router.post(
    "/agents/scale",
    handle(async (req, res) => accepted(res, await commands.scaleAgents(req.principal ?? null, body(req)))),
  );
  router.post(
    "/agents/command",
    handle(async (req, res) => {
      // Agent commands the log carries today; there is no command to terminate one agent (ScaleAgents
      // retires the least loaded of a group).
      const { type, ...rest } = body(req);
      const known = AGENT_COMMAND_TYPES.map((t) => `"${t}"`).join(", ");
      if (type === undefined || type === null) throw invalid("type", `is required: one of ${known}`);
      switch (type) {
        case "scale":
          return accepted(res, await commands.scaleAgents(req.principal ?? null, rest));
        case "register": {
          const r = await commands.registerAgent(req.principal ?? null, rest, waitOption(req));
          return accepted(res, r, `/api/v1/agents/${encodeURIComponent(r.aggregateId)}`);
        }
        case "stop":
        case "emergency_stop": {
          const r = await commands.emergencyStop(req.principal ?? null, rest, waitOption(req));
          return accepted(res, r, `/api/v1/goals/${encodeURIComponent(r.aggregateId)}`);
        }
        default:
          throw invalid("type", `must be one of ${known}, got ${JSON.stringify(type)}`);
      }
    }),
  );
  router.get(
    "/agents/:id",
    handle(async (req) => {
      const p = who(req, "read");
      const agent = await visibleAgent(read, p, param(req, "id"));
      // Open tasks of the caller's tenant only: the goal loader filters by tenant.
      const goals = read.loaders(p.tenantId).goal;
      const currentTasks: string[] = [];
      for (const key of agent.currentTasks ?? [])
        if (await goals.load(key.slice(0, key.indexOf("/")))) currentTasks.push(key);
      // Their phases and goals, as GraphQL's Agent.currentPhase and assignedProjects.
      const visible = new Set(currentTasks);
      const phases = (agent.currentTaskPhases ?? []).filter((tag) => visible.has(tag.slice(0, tag.lastIndexOf("@"))));
      return {
        ...agentView(agent),
        ...agentInfo(agent),
        // Of the caller's tenant, as currentTasks.
        current_tasks: currentTasks,
        current_task_count: currentTasks.length,
        currentTasks,
        currentPhase: latestPhase(phases),
        assignedProjects: goalsOf(currentTasks),
        workload: workloadView(await read.agentWorkload(agent._id)),
      };
    }),
  );
  router.get(
    "/governors/:id/status",
    handle(async (req) => {
      const p = who(req, "read");
      const agent = await visibleGovernor(read, p, param(req, "id"));
      const subordinates = await visibleAgents(read, p, await read.loaders(p.tenantId).subordinates.load(agent._id));
      const sum = (f: (a: AgentDoc) => number | null | undefined) => subordinates.reduce((n, a) => n + (f(a) ?? 0), 0);
      const byStatus: Record<string, number> = {};
      for (const a of subordinates) byStatus[a.status ?? "UNKNOWN"] = (byStatus[a.status ?? "UNKNOWN"] ?? 0) + 1;
      const capacity = capacityOf(subordinates);
      const load = held(subordinates);
      const completed = sum((a) => a.performance?.tasksCompleted);
      const failed = sum((a) => a.performance?.tasksFailed);
      return {
        agent: agentView(agent),
        load: agent.load ?? 0,
        capacity: agent.capacity,
        // The heartbeat's load is already tasks held / capacity.
        utilization: agent.capacity ? (agent.load ?? 0) : null,
        performance: agent.performance,
        workload: workloadView(await read.agentWorkload(agent._id)),
        subordinates: subordinates.map(agentView),
        team: {
          count: subordinates.length,
          byStatus,
          capacity,
          // Tasks the subordinates hold (each one's load x capacity).
          load: round4(load),
          utilization: capacity ? round4(load / capacity) : null,
          tasksCompleted: completed,
          tasksFailed: failed,
          successRate: completed + failed > 0 ? completed / (completed + failed) : null,
        },
      };
    }),
  );
  router.get(
    "/governors/:id/performance",
    handle(async (req) => {
      const p = who(req, "read");
      const governor = await visibleGovernor(read, p, param(req, "id"));
      // The team is everything below the governor (mayors and workers), as its subtree.
      const below = await read.subtree(governor._id);
      below.delete(governor._id);
      const loaded = await read.loaders(p.tenantId).agent.loadMany([...below]);
      const team = await visibleAgents(
        read,
        p,
        loaded.filter((a): a is AgentDoc => !!a && !(a instanceof Error)),
      );
      const workers = team.filter((a) => a.tier === "WORKER");
      const tasks = await read.governorTasks(p.tenantId, governor._id);
      const completed = Number(tasks.completed);
      const failed = Number(tasks.failed);
      const capacity = capacityOf(workers);
      const done = workers.reduce((n, a) => n + (a.performance?.tasksCompleted ?? 0), 0);
      const lost = workers.reduce((n, a) => n + (a.performance?.tasksFailed ?? 0), 0);
      const busyMs = workers.reduce((n, a) => n + (a.performance?.totalCompletionMs ?? 0), 0);
      return {
        governor_id: governor._id,
        agent_type: agentType(governor.tier),
        domain: governor.domain,
        topology: governor.topology,
        tenant_id: p.tenantId,
        // The caller's tenant's tasks the governor held, from the analytics model.
        tasks: {
          total: Number(tasks.total),
          completed,
          failed,
          cancelled: Number(tasks.cancelled),
          open: Number(tasks.open),
          failed_attempts: Number(tasks.failed_attempts),
        },
        tasks_completed: completed,
        tasks_failed: failed,
        success_rate: completed + failed > 0 ? round4(completed / (completed + failed)) : null,
        avg_duration_ms: num(tasks.avg_duration_ms),
        cost: String(tasks.cost),
        // The team now: agents below the governor (their counters are of every tenant).
        team: {
          agents: team.length,
          mayors: team.filter((a) => a.tier === "MAYOR").length,
          workers: workers.length,
          active_workers: workers.filter((a) => !["FAILED", "TERMINATED"].includes(a.status ?? "")).length,
          capacity,
          tasks_held: round4(held(workers)),
          tasks_completed: done,
          tasks_failed: lost,
          success_rate: done + lost > 0 ? round4(done / (done + lost)) : null,
          avg_completion_ms: done > 0 ? Math.round(busyMs / done) : null,
        },
        utilization: capacity ? round4(held(workers) / capacity) : null,
        checked_at: new Date().toISOString(),
      };
    }),
  );
  router.post(
    "/governors/:id/tasks",
    handle(async (req, res) => {
      const p = who(req, "submit");
      const governor = await visibleGovernor(read, p, param(req, "id"));
      const { receipt, taskId, domain } = await submitGovernorTask(
        commands,
        read,
        req.principal ?? null,
        governor,
        body(req),
        waitOption(req),
      );
      accepted(res, receipt, `/api/v1/goals/${encodeURIComponent(receipt.aggregateId)}`);
      return { ...(await goalResponse(read, p.tenantId, receipt)), governor_id: governor._id, domain, task_id: taskId };
    }),
  );
  router.put(
    "/governors/:id/resources",
    handle(async (req, res) => {
      const p = who(req, "govern");
      const governor = await visibleGovernor(read, p, param(req, "id"));
      const scaled = await scaleGovernor(commands, read, req.principal ?? null, governor, body(req));
      accepted(res, scaled.receipt);
      return {
        ...scaled.receipt,
        governor_id: governor._id,
        domain: scaled.domain,
        tier: scaled.tier,
        specialization: scaled.specialization,
      };
    }),
  );

  // --- health and metrics ---

  router.get(
    "/health/agents",
    handle(async (req) => {
      const p = who(req, "read");
      const agents = await visibleAgents(read, p, await read.agents({}));
      const byStatus: Record<string, ReturnType<typeof agentView>[]> = {};
      for (const a of agents) (byStatus[a.status ?? "UNKNOWN"] ??= []).push(agentView(a));
      return {
        total: agents.length,
        counts: Object.fromEntries(Object.entries(byStatus).map(([s, list]) => [s, list.length])),
        byStatus,
      };
    }),
  );
  router.get(
    "/system/health",
    handle(async (req) => systemHealth(deps, who(req, "read").tenantId)),
  );
  router.get(
    "/health/system",
    handle(async (req) => designSystemHealth(await systemHealth(deps, who(req, "read").tenantId))),
  );
  router.get(
    "/metrics/resource",
    handle(async (req) => {
      const p = who(req, "read");
      const filter = agentQuery(req);
      const [agents, budget, usage] = await Promise.all([
        read.agents(filter).then((all) => visibleAgents(read, p, all)),
        read.tenantBudget(p.tenantId),
        // Totals of the tenant; an agent token reads model usage per goal only (GET /metrics/model-usage).
        p.role === "agent" ? Promise.resolve(null) : read.modelUsage(p.tenantId, "TENANT"),
      ]);
      const live = agents.filter((a) => a.status !== "TERMINATED");
      const tiers = new Map<string, AgentDoc[]>();
      for (const a of live) tiers.set(a.tier ?? "UNKNOWN", [...(tiers.get(a.tier ?? "UNKNOWN") ?? []), a]);
      const t = usage?.[0];
      return {
        tenant_id: p.tenantId,
        agents: agents.map((a) => ({
          agent_id: a._id,
          tier: a.tier,
          topology: a.topology,
          domain: a.domain,
          specialization: a.specialization,
          status: a.status,
          load: a.load ?? 0,
          capacity: a.capacity,
          utilization: a.capacity ? (a.load ?? 0) : null,
          tasks_held: round4((a.load ?? 0) * (a.capacity ?? 0)),
          resource_allocation: a.resourceAllocation ?? {},
        })),
        // Agents not terminated, per tier: capacity, tasks held and held / capacity.
        tiers: [...tiers.entries()]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([tier, list]) => {
            const capacity = capacityOf(list);
            return {
              tier,
              agents: list.length,
              capacity,
              tasks_held: round4(held(list)),
              utilization: capacity ? round4(held(list) / capacity) : null,
            };
          }),
        budget: {
          goals: Number(budget.goals),
          goals_with_budget: Number(budget.goals_with_budget),
          total_budget: String(budget.budget),
          open_budget: String(budget.open_budget),
          cost: String(budget.cost),
        },
        model_usage: usage
          ? {
              calls: Number(t?.calls ?? 0),
              tokens_in: Number(t?.tokens_in ?? 0),
              tokens_out: Number(t?.tokens_out ?? 0),
              tokens_total: Number(t?.tokens_total ?? 0),
              latency_ms: Number(t?.latency_ms ?? 0),
              cost: t?.cost === undefined || t?.cost === null ? "0.0000" : String(t.cost),
              models: (t?.models as string[] | undefined) ?? [],
            }
          : null,
        timestamp: new Date().toISOString(),
      };
    }),
  );
  router.get(
    "/system/metrics",
    handle(async (req) => {
      const p = who(req, "read");
      const [counts, report] = await Promise.all([read.counts(p.tenantId), deps.health.report()]);
      return {
        tenantId: p.tenantId,
        goalsByStatus: counts.goalsByStatus,
        tasksByStatus: counts.tasksByStatus,
        agentsByStatus: counts.agentsByStatus,
        projections: report.projections,
        projectionLag: report.projections.reduce((n, x) => n + x.lag, 0),
        checkedAt: report.checkedAt,
      };
    }),
  );
  router.get(
    "/metrics/performance",
    handle(async (req) => {
      const p = who(req, "read");
      const filter = agentQuery(req);
      const [agents, utilization] = await Promise.all([
        read.agents(filter).then((all) => visibleAgents(read, p, all)),
        read.utilization(),
      ]);
      const byAgent = new Map(utilization.map((r) => [String(r.agent_id), r]));
      return {
        items: agents.map((a) => {
          const u = byAgent.get(a._id);
          return {
            agentId: a._id,
            tier: a.tier,
            topology: a.topology,
            domain: a.domain,
            specialization: a.specialization,
            status: a.status,
            load: a.load ?? 0,
            capacity: a.capacity,
            performance: a.performance,
            utilization: u
              ? {
                  openTasks: u.open_tasks ?? 0,
                  capacity: u.capacity ?? null,
                  utilization: num(u.utilization),
                  tasksCompleted: u.tasks_completed ?? 0,
                  tasksFailed: u.tasks_failed ?? 0,
                  successRate: num(u.success_rate),
                  avgDurationMs: num(u.avg_duration_ms),
                }
              : null,
          };
        }),
      };
    }),
  );

  router.get(
    "/metrics/model-usage",
    handle(async (req) => {
      const p = who(req, "read");
      const by = oneOfQuery(req, "by", ["model", "goal", "tenant"]) ?? "model";
      const items = await modelUsageFor(read, p, (id) => visibleGoal(read, p, id), {
        by: by.toUpperCase(),
        goalId: query(req, "goalId"),
        model: query(req, "model"),
        limit: intQuery(req, "limit") ?? null,
      });
      return { by, items };
    }),
  );

  // --- governance ---

  router.get(
    "/policies",
    handle(async (req) => {
      const p = who(req, "read");
      const policies = await new Viewer(read, p).policies({
        category: oneOfQuery(req, "category", POLICY_CATEGORIES),
        status: oneOfQuery(req, "status", ["ACTIVE", "RETIRED"]),
      });
      return { items: policies.map(policyView) };
    }),
  );
  router.post(
    "/policies",
    handle(async (req, res) => {
      const r = await commands.definePolicy(req.principal ?? null, body(req), waitOption(req));
      return accepted(res, r, `/api/v1/policies/${encodeURIComponent(r.aggregateId)}`);
    }),
  );
  router.get(
    "/policies/:id",
    handle(async (req) => {
      const p = who(req, "read");
      const id = param(req, "id");
      const policy = await new Viewer(read, p).policy(id);
      if (!policy) throw notFound(`policy "${id}"`);
      return policyView(policy);
    }),
  );
  router.post(
    "/policies/:id/amend",
    handle(async (req, res) => {
      const id = param(req, "id");
      const r = await commands.amendPolicy(req.principal ?? null, withPath(req, { policyId: id }), waitOption(req));
      return accepted(res, r, `/api/v1/policies/${encodeURIComponent(id)}`);
    }),
  );
  router.get(
    "/escalations",
    handle(async (req) => {
      const p = who(req, "read");
      const escalations = await read.escalations(p.tenantId, {
        goalId: query(req, "goalId"),
        status: oneOfQuery(req, "status", ["OPEN", "RESOLVED"]),
      });
      return { items: escalations.map(escalationView) };
    }),
  );

  // Anything else under /api/v1 is a client error, answered here so it never reaches GraphQL.
  router.use((req, res) => {
    sendError(
      res,
      new GatewayError("NOT_FOUND", `no route ${req.method} /api/v1${req.path}; see /api/v1/openapi.json`),
    );
  });

  return router;
}
