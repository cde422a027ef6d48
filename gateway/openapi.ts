/**
 * The OpenAPI 3.1 document of the REST API (gateway/rest.ts), as a plain object. Served publicly at
 * GET /openapi.json and GET /api/v1/openapi.json. A test walks the router and fails when a route is
 * missing here (or documented here without a route), so the two cannot drift apart.
 *
 * Request bodies are generated from the zod schemas that validate them (gateway/contract), so their
 * limits and enums are the validators'; enumerations elsewhere come from gateway/contract/enums.ts,
 * whose lists are the Avro enums'. Response schemas are written here.
 */
import {
  AGENT_STATUSES,
  GOAL_STATUSES,
  PHASES,
  POLICY_CATEGORIES,
  TASK_STATUSES,
  TIERS,
  TOPOLOGIES,
} from "./contract/enums.js";
import { pathGiven, requestSchemas } from "./contract/json-schema.js";
import { ERROR_STATUS } from "./errors.js";
import { MAX_ALIASES, MAX_COST, MAX_ROOT_FIELDS } from "./graphql/limits.js";
import { paths as agentPaths } from "./openapi-agents.js";

type Schema = Record<string, unknown>;

const DECIMAL_PATTERN = "^-?\\d{1,14}(\\.\\d{1,4})?$";

// --- schema helpers -----------------------------------------------------------------------------------

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str = (description?: string, extra: Schema = {}): Schema => ({
  type: "string",
  ...(description ? { description } : {}),
  ...extra,
});
const int = (description?: string, extra: Schema = {}): Schema => ({
  type: "integer",
  ...(description ? { description } : {}),
  ...extra,
});
const numb = (description?: string): Schema => ({ type: "number", ...(description ? { description } : {}) });
const bool = (description?: string): Schema => ({ type: "boolean", ...(description ? { description } : {}) });
const decimal = (description: string): Schema => str(description, { pattern: DECIMAL_PATTERN, examples: ["12.5000"] });
const dateTime = (description?: string): Schema => str(description, { format: "date-time" });
const enumOf = (values: readonly string[], description?: string): Schema => str(description, { enum: [...values] });
const list = (items: Schema, description?: string): Schema => ({
  type: "array",
  items,
  ...(description ? { description } : {}),
});
const stringMap = (description: string): Schema => ({
  type: "object",
  description,
  additionalProperties: { type: "string" },
});
/** JSON Schema 2020-12 nullability: a second type, or for a reference, anyOf with null. */
const orNull = (s: Schema): Schema =>
  "$ref" in s
    ? { anyOf: [s, { type: "null" }] }
    : { ...s, type: [s.type as string, "null"], ...(Array.isArray(s.enum) ? { enum: [...s.enum, null] } : {}) };
const obj = (properties: Record<string, Schema>, required: string[] = [], description?: string): Schema => ({
  type: "object",
  ...(description ? { description } : {}),
  properties,
  ...(required.length ? { required } : {}),
});
const items = (of: string, description: string): Schema => obj({ items: list(ref(of)) }, ["items"], description);
const counts = (description: string): Schema => ({
  type: "object",
  description,
  additionalProperties: { type: "integer" },
});

// --- schemas --------------------------------------------------------------------------------------------

const commandReceipt = obj(
  {
    commandId: str("Event id of the command written to the log."),
    commandType: str("SubmitGoal, StopGoal, RequestPhaseTransition, RegisterAgent, ..."),
    accepted: bool("True: the command is valid and durably in the log."),
    aggregateId: str("The aggregate the command is about: goal id, agent id, policy id, goalId/taskId."),
    projected: bool("True when ?wait=true was asked and the effect reached the read model in time."),
    outcome: orNull(str("What the read model shows after the command, when waited for (e.g. `REJECTED: reason`).")),
  },
  ["commandId", "commandType", "accepted", "aggregateId", "projected", "outcome"],
  "The answer to a command. Accepted means valid and in the log; the hierarchy may still refuse it later, which ?wait=true shows in `outcome`.",
);

const error = obj(
  {
    error: obj(
      {
        code: enumOf(Object.keys(ERROR_STATUS)),
        message: str("What went wrong and what to do about it."),
        field: str(
          'The input field at fault, as a path ("priority", "tasks[2].dependsOn", "body"), when there is one.',
        ),
      },
      ["code", "message"],
    ),
  },
  ["error"],
  "Every REST error.",
);

const modelUsage = obj(
  {
    model: str("Backend and model that answered, e.g. openai:gpt-4o-mini."),
    tokensIn: int("Prompt tokens read."),
    tokensOut: int("Tokens generated."),
    calls: int("Model calls made (retries inside one call count once)."),
    latencyMs: int("Wall time of the calls, retries included."),
    promptDigest: orNull(str("SHA-256 (hex) of the prompt sent.")),
    answerDigest: orNull(str("SHA-256 (hex) of the model's raw answer.")),
  },
  ["model", "tokensIn", "tokensOut", "calls", "latencyMs", "promptDigest", "answerDigest"],
  "What a model call (or one attempt's calls together) used, as the log records it (ModelUsage).",
);

const usageSum = (description: string, cost = false): Schema =>
  obj(
    {
      tokensIn: int(),
      tokensOut: int(),
      calls: int(),
      latencyMs: int(),
      ...(cost ? { cost: decimal("Cost of the completed attempts that called a model.") } : {}),
    },
    ["tokensIn", "tokensOut", "calls", "latencyMs", ...(cost ? ["cost"] : [])],
    description,
  );

const attemptUsage = {
  allOf: [
    ref("ModelUsage"),
    obj(
      {
        attempt: int(),
        outcome: enumOf(["COMPLETED", "FAILED"]),
        cost: orNull(decimal("The attempt's cost; null for a failed attempt (TaskFailed records none).")),
      },
      ["attempt", "outcome", "cost"],
    ),
  ],
  description: "The model usage of one task attempt, with how it ended and what it cost.",
};

const planAttempt = obj(
  {
    requestId: str(),
    phase: orNull(enumOf(PHASES, "Phase planned; null for a plain goal.")),
    attempt: int("From 1."),
    maxAttempts: orNull(int()),
    status: enumOf(["REQUESTED", "ACCEPTED", "REFUSED"], "REQUESTED until answered."),
    modelConfig: orNull(str("The model configuration asked (a topology 'models' name).")),
    feedback: list(str(), "Problems of the previous attempt, given to the planner."),
    requestedAt: orNull(dateTime()),
    planner: orNull(str("Planner that answered, with its version (e.g. model/v1); null until answered.")),
    accepted: orNull(bool("Null until answered.")),
    problems: list(str(), "What the president found wrong with the plan."),
    error: orNull(str("Why the planner produced no plan.")),
    usage: orNull(ref("ModelUsage")),
    taskCount: orNull(int("Tasks proposed; null until answered.")),
    answeredAt: orNull(dateTime()),
  },
  ["requestId", "attempt", "status", "feedback", "accepted", "problems", "usage"],
  "One planning attempt of a goal or a project's phase: its PlanRequested and, once answered, its PlanProposed.",
);

const modelUsageTotal = obj(
  {
    tenantId: str(),
    model: orNull(str("by=model: the model; null otherwise.")),
    goalId: orNull(str("by=goal: the goal; null otherwise.")),
    models: list(str(), "The models used."),
    records: int("Usage records (events carrying a model usage)."),
    calls: int(),
    planCalls: int(),
    taskCalls: int(),
    tokensIn: int(),
    tokensOut: int(),
    tokensTotal: int(),
    latencyMs: int(),
    avgLatencyMs: orNull(numb("Latency per call.")),
    cost: decimal("Cost of the completed task attempts (plans and failed attempts record none)."),
    goals: orNull(int("by=model and by=tenant: goals that used a model.")),
    tasks: orNull(int("by=goal: tasks that used a model.")),
    firstAt: dateTime(),
    lastAt: dateTime(),
  },
  ["tenantId", "models", "calls", "tokensIn", "tokensOut", "cost"],
  "A row of the analytics views model_usage_by_model, model_usage_by_goal or model_usage_by_tenant.",
);

const goal = obj(
  {
    id: str(),
    tenantId: str(),
    kind: orNull(enumOf(["GOAL", "PROJECT"])),
    status: orNull(enumOf(GOAL_STATUSES)),
    title: orNull(str()),
    description: orNull(str()),
    priority: orNull(int()),
    topology: orNull(enumOf(TOPOLOGIES)),
    domainHints: list(str()),
    constraints: stringMap("Constraints as submitted."),
    deadline: orNull(dateTime()),
    budget: orNull(str()),
    currentPhase: orNull(enumOf(PHASES, "A project's current phase; null for a plain goal.")),
    phases: list(
      obj(
        {
          phase: enumOf(PHASES),
          startedAt: dateTime(),
          endedAt: orNull(dateTime()),
          planner: orNull(str("Planner that decomposed the phase; null until then.")),
        },
        ["phase", "startedAt"],
      ),
    ),
    planner: orNull(str("Planner of the last decomposition: explicit, templates/v1, model/v1, ...")),
    plans: list(ref("PlanAttempt"), "Every planning attempt (model planner), in log order."),
    planUsage: usageSum("The plans' model calls summed."),
    taskUsage: usageSum("The tasks' model calls summed over every attempt.", true),
    tokensIn: int("Tokens read by every model call of the goal (plans and task attempts)."),
    tokensOut: int("Tokens written by every model call of the goal."),
    modelCalls: int(),
    modelLatencyMs: int(),
    modelCost: decimal("Cost of the goal's completed task attempts that called a model."),
    result: orNull(str()),
    outputs: stringMap("Outputs of the finished goal."),
    failure: orNull(
      obj({ reason: str(), code: orNull(str()), failedTaskIds: list(str()) }, ["reason", "failedTaskIds"]),
    ),
    version: int("Aggregate version: events of the goal applied to this view."),
    submittedAt: orNull(dateTime()),
    completedAt: orNull(dateTime()),
    taskSummary: counts("Tasks by status."),
    tasksTotal: int(),
    progress: numb("Share of the tasks completed, 0 to 1."),
    resourceConsumption: obj({
      computeCost: str(),
      agentMs: numb(),
      apiCalls: int("External API (model) calls of every task attempt and plan of the goal."),
      resources: list(ref("ResourceUse"), "Per kind of resource, what the goal's tasks asked for."),
    }),
    escalations: obj({ open: int(), total: int() }),
    governorId: orNull(str("The governor (sub-master in dgm) holding most of the goal's tasks.")),
    governorIds: list(str(), "Every governor (sub-master) holding tasks of the goal."),
    mayorIds: list(str(), "Every mayor holding tasks of the goal."),
    phaseProgress: list(ref("PhaseStatus"), "A project's eight phases in SDLC order; empty for a goal."),
    allocations: list(ref("ResourceAllocation"), "Resource requests made for the goal's tasks, in log order."),
    violations: list(ref("ConstitutionalViolation"), "Constitutional violations found about the goal."),
    policyDecisions: counts("Policy decisions (PolicyEvaluated) about the goal, by decision."),
  },
  ["id", "status", "version", "plans", "tokensIn", "tokensOut", "modelCalls", "modelLatencyMs", "modelCost"],
  "A goal, or a project (kind PROJECT) that runs through the eight SDLC phases.",
);

const task = obj(
  {
    id: str("goalId/taskId"),
    goalId: str(),
    taskId: str(),
    tenantId: str(),
    title: str(),
    description: orNull(str()),
    domain: str(),
    specialization: orNull(str()),
    phase: orNull(enumOf(PHASES)),
    dependsOn: list(str()),
    priority: int(),
    maxAttempts: int(),
    parentTaskId: orNull(str()),
    deadline: orNull(dateTime()),
    status: enumOf(TASK_STATUSES),
    attempt: int("The current attempt, from 1."),
    assignees: { type: "object", description: "Agent id per tier.", additionalProperties: { type: "string" } },
    holders: list(str(), "Agents holding the task now."),
    executor: orNull(str()),
    progress: numb(),
    result: orNull(str()),
    outputs: stringMap("Outputs of the completed task."),
    cost: str("Sum of the cost of every attempt (for a model worker, the cost of its tokens)."),
    agentMs: numb(),
    failures: int(),
    failedOn: list(str()),
    lastFailure: orNull(
      obj({ agentId: str(), reason: str(), kind: str(), retryable: bool() }, ["agentId", "reason", "kind"]),
    ),
    model: orNull(str("Model that answered the last attempt that called one; null when none did.")),
    tokensIn: int("Tokens read by the model calls of every attempt."),
    tokensOut: int("Tokens written by the model calls of every attempt."),
    modelCalls: int(),
    modelLatencyMs: int(),
    usage: orNull(ref("AttemptUsage")),
    attemptUsage: list(ref("AttemptUsage"), "Every attempt that called a model, by attempt."),
    cancellation: orNull(obj({ cause: str(), reason: str() })),
    timings: obj({
      createdAt: dateTime(),
      assignedAt: orNull(dateTime()),
      acceptedAt: orNull(dateTime()),
      startedAt: orNull(dateTime()),
      completedAt: orNull(dateTime()),
      durationMs: orNull(numb()),
    }),
  },
  ["id", "goalId", "taskId", "status", "attempt", "tokensIn", "tokensOut", "modelCalls", "usage", "attemptUsage"],
);

const phaseStatus = obj(
  {
    phase: enumOf(PHASES),
    status: enumOf(["PENDING", "ACTIVE", "COMPLETED", "FAILED", "STOPPED"]),
    startedAt: orNull(dateTime()),
    endedAt: orNull(dateTime()),
    tasksTotal: int(),
    tasksCompleted: int(),
    tasksFailed: int(),
    progress: numb("Share of the phase's tasks completed, 0 to 1."),
  },
  ["phase", "status", "tasksTotal", "tasksCompleted", "progress"],
  "Where a project stands in one of its phases.",
);

const resourceUse = obj(
  {
    kind: str(),
    unit: str(),
    requests: int(),
    allocated: int(),
    denied: int(),
    granted: decimal("Granted, summed."),
    held: decimal(
      "What the allocations hold now: a cancelled task's nothing; a completed task's BUDGET its cost, API_QUOTA its model calls, AGENT_CAPACITY nothing; any other what was granted.",
    ),
  },
  ["kind", "unit", "requests", "allocated", "denied", "granted", "held"],
  "One kind of resource a goal's tasks asked for.",
);

const resourceAllocation = obj(
  {
    requestId: str(),
    allocationId: orNull(str()),
    taskId: orNull(str()),
    requesterId: str("The agent that asked, to which the resource is allocated."),
    kind: str(),
    amount: decimal("Asked."),
    granted: orNull(decimal("Granted; null unless allocated.")),
    unit: str(),
    status: enumOf(["REQUESTED", "ALLOCATED", "DENIED"]),
    reasons: list(str()),
    requestedAt: orNull(dateTime()),
    answeredAt: orNull(dateTime()),
    expiresAt: orNull(dateTime()),
  },
  ["requestId", "requesterId", "kind", "amount", "unit", "status"],
  "A resource request made for one of a goal's tasks, and its answer.",
);

const constitutionalViolation = obj(
  {
    violationId: str(),
    taskId: orNull(str()),
    agentId: orNull(str()),
    policyId: str(),
    policyVersion: int(),
    principle: str(),
    description: str(),
    severity: str(),
    enforcement: str(),
    at: dateTime(),
  },
  ["violationId", "policyId", "policyVersion", "principle", "severity", "enforcement", "at"],
);

const agentPerformance = obj(
  {
    tasksCompleted: int(),
    tasksFailed: int(),
    totalCompletionMs: numb(),
    avgCompletionMs: orNull(numb()),
    successRate: orNull(numb("Completed / (completed + failed); null before the first result.")),
  },
  ["tasksCompleted", "tasksFailed"],
);

const agentProperties: Record<string, Schema> = {
  id: str(),
  agentId: str("The same as id."),
  tenantId: orNull(str("The tenant that registered the agent; null for the platform's own agents.")),
  heartbeatSequence: orNull(int("Sequence number of the last heartbeat.")),
  name: orNull(str()),
  tier: orNull(enumOf(TIERS)),
  topology: orNull(enumOf(TOPOLOGIES)),
  domain: orNull(str()),
  specialization: orNull(str()),
  superiorId: orNull(str()),
  subordinates: list(str(), "Ids of the agents directly below."),
  capacity: orNull(int()),
  load: orNull(
    numb("Load the agent last reported in its heartbeat: tasks held divided by capacity (0.0 idle, 1.0 full)."),
  ),
  executor: orNull(str()),
  labels: stringMap("Labels given at registration."),
  heartbeatIntervalMs: orNull(int()),
  status: orNull(enumOf(AGENT_STATUSES)),
  registeredAt: orNull(dateTime()),
  lastHeartbeat: orNull(dateTime()),
  failure: orNull(obj({ reason: str(), at: dateTime() })),
  termination: orNull(obj({ cause: str(), reason: str(), at: dateTime() })),
  openTasks: int("Open tasks the agent holds, all tenants."),
  performance: ref("AgentPerformance"),
  resourceAllocation: {
    type: "object",
    description: "What the agent was allocated, per kind of resource (every ResourceAllocated naming it, all tenants).",
    additionalProperties: obj({
      unit: str(),
      allocations: int(),
      grantedTenThousandths: int("The granted amounts summed, in ten-thousandths."),
      granted: decimal("The same as a decimal."),
    }),
  },
};

/** The designs' AgentInfo fields, beside the camelCase ones (GET /agents, GET /agents/{id}). */
const agentInfoProperties: Record<string, Schema> = {
  agent_id: str("The designs' name of id."),
  agent_type: orNull(str('The tier in lower case, the designs\' agent type: "worker", "sub_master", "governor", ...')),
  capabilities: list(str(), "The agent's `capabilities` label (comma-separated), else its specialization and domain."),
  current_load: numb("The heartbeat's load: tasks held / capacity (0.0 idle, 1.0 full)."),
  max_capacity: orNull(int("The designs' name of capacity.")),
  current_task_count: int("Open tasks the agent holds (GET /agents: all tenants; GET /agents/{id}: the caller's)."),
  superior_id: orNull(str()),
  last_heartbeat: orNull(dateTime()),
  performance_metrics: obj(
    {
      tasks_completed: int(),
      tasks_failed: int(),
      success_rate: orNull(numb()),
      avg_completion_ms: orNull(numb()),
    },
    ["tasks_completed", "tasks_failed", "success_rate", "avg_completion_ms"],
  ),
};
Object.assign(agentProperties, agentInfoProperties);

const agentWorkload = obj(
  {
    openTasks: int(),
    completedTasks: int(),
    failedTasks: int(),
    utilization: orNull(numb("Open tasks / capacity.")),
    avgDurationMs: orNull(numb()),
    lastTaskAt: orNull(dateTime()),
  },
  [],
  "get_agent_workload(agent) of the analytics model (PostgreSQL).",
);

const componentHealth = obj({ name: str(), up: bool(), latencyMs: int(), detail: str() }, [
  "name",
  "up",
  "latencyMs",
  "detail",
]);
const projectionLag = obj(
  { projection: enumOf(["analytics", "state"]), lag: int("Records in the log not yet applied.") },
  ["projection", "lag"],
);

const policyVersion = obj(
  {
    version: int(),
    description: str(),
    rules: { description: "The rules, as JSON." },
    appliesToTiers: list(enumOf(TIERS)),
    domains: list(str()),
    precedence: int(),
    effectiveFrom: dateTime(),
    rationale: orNull(str()),
    at: dateTime(),
  },
  ["version", "rules"],
);

/** The DGM design's GoalResponse fields, beside a SubmitGoal's receipt. */
const goalResponse = obj(
  {
    goal_id: str("The goal's id (aggregateId)."),
    status: str(
      "The goal's status in the read model when ?wait=true got there (SUBMITTED, VALIDATED, RUNNING, REJECTED, ...); SUBMITTED otherwise.",
    ),
    estimated_completion: orNull(
      dateTime("When the goal completed, once it has; null while unknown (the platform makes no estimate)."),
    ),
    tasks_created: int("Tasks the read model shows for the goal (0 unless waited for)."),
    agents_allocated: int("Distinct agents holding its tasks at any tier (0 unless waited for)."),
  },
  ["goal_id", "status", "estimated_completion", "tasks_created", "agents_allocated"],
);

/** Shapes of the source designs (snake_case, as they name them), for the routes added for them. */
const designSchemas: Record<string, Schema> = {
  GoalReceipt: {
    allOf: [ref("CommandReceipt"), goalResponse],
    description: "The receipt of a submitted goal with the DGM design's GoalResponse fields.",
  },
  DesignSystemHealth: obj(
    {
      status: enumOf(
        ["healthy", "degraded", "unhealthy"],
        "healthy; degraded: an agent failed or a read model lags; unhealthy: a server is down.",
      ),
      total_agents: int(),
      active_agents: int("Agents neither failed nor terminated."),
      failed_agents: int("FAILED or UNRESPONSIVE."),
      pending_tasks: int("Tasks of the caller's tenant waiting for a worker (PENDING, READY, ASSIGNED)."),
      running_tasks: int("ACCEPTED or RUNNING."),
      completed_tasks: int(),
      failed_tasks: int("FAILED or TIMED_OUT."),
      running_goals: int(),
      components: {
        type: "object",
        description: "Per server (kafka, registry, mongo, postgres).",
        additionalProperties: obj({ status: enumOf(["up", "down"]), latency_ms: int(), detail: str() }, [
          "status",
          "latency_ms",
          "detail",
        ]),
      },
      projection_lag: obj(
        {
          analytics: orNull(int("Records of the log the analytics model has not applied; null when Kafka is down.")),
          state: orNull(int("The same for the state model.")),
          total: int(),
        },
        ["analytics", "state", "total"],
      ),
      problems: list(str()),
      timestamp: dateTime(),
    },
    [
      "status",
      "total_agents",
      "active_agents",
      "failed_agents",
      "pending_tasks",
      "running_tasks",
      "completed_tasks",
      "failed_tasks",
      "components",
      "projection_lag",
      "timestamp",
    ],
    "The DGM design's SystemHealth: the numbers of GET /system/health (and GraphQL systemHealth), in the design's names.",
  ),
  ResourceMetrics: obj(
    {
      tenant_id: str(),
      agents: list(
        obj(
          {
            agent_id: str(),
            tier: orNull(enumOf(TIERS)),
            topology: orNull(enumOf(TOPOLOGIES)),
            domain: orNull(str()),
            specialization: orNull(str()),
            status: orNull(str()),
            load: numb("The heartbeat's load: tasks held / capacity."),
            capacity: orNull(int()),
            utilization: orNull(numb("The same load; null without a capacity.")),
            tasks_held: numb("load x capacity."),
            resource_allocation: {
              type: "object",
              description:
                "What the agent was allocated per kind of resource (all tenants), as Agent.resourceAllocation.",
            },
          },
          ["agent_id", "load", "capacity", "utilization", "tasks_held"],
        ),
        "Every agent the caller sees (filters: tier, domain, topology), terminated ones included.",
      ),
      tiers: list(
        obj(
          {
            tier: str(),
            agents: int(),
            capacity: int(),
            tasks_held: numb(),
            utilization: orNull(numb("tasks_held / capacity.")),
          },
          ["tier", "agents", "capacity", "tasks_held", "utilization"],
        ),
        "Agents not terminated, per tier.",
      ),
      budget: obj(
        {
          goals: int("Goals of the caller's tenant in the analytics model."),
          goals_with_budget: int(),
          total_budget: decimal("Their budgets summed."),
          open_budget: decimal("Budgets of the goals not ended."),
          cost: decimal("What the tenant's tasks cost so far."),
        },
        ["goals", "goals_with_budget", "total_budget", "open_budget", "cost"],
      ),
      model_usage: orNull(
        obj(
          {
            calls: int(),
            tokens_in: int(),
            tokens_out: int(),
            tokens_total: int(),
            latency_ms: int(),
            cost: decimal("Cost of the completed task attempts that called a model."),
            models: list(str()),
          },
          ["calls", "tokens_in", "tokens_out", "tokens_total", "cost", "models"],
          "The tenant's model usage (model_usage_by_tenant); null for an agent token.",
        ),
      ),
      timestamp: dateTime(),
    },
    ["tenant_id", "agents", "tiers", "budget", "model_usage", "timestamp"],
    "Resource usage: per agent and per tier load, capacity and utilization; the tenant's budgets, cost and model tokens.",
  ),
  GovernorPerformance: obj(
    {
      governor_id: str(),
      agent_type: orNull(str()),
      domain: orNull(str()),
      topology: orNull(enumOf(TOPOLOGIES)),
      tenant_id: str(),
      tasks: obj(
        {
          total: int(),
          completed: int(),
          failed: int("FAILED or TIMED_OUT."),
          cancelled: int(),
          open: int(),
          failed_attempts: int("Attempts that failed or timed out, retried ones included."),
        },
        ["total", "completed", "failed", "cancelled", "open", "failed_attempts"],
        "Tasks of the caller's tenant the governor held (analytics tasks table).",
      ),
      tasks_completed: int(),
      tasks_failed: int(),
      success_rate: orNull(numb("completed / (completed + failed); null before the first outcome.")),
      avg_duration_ms: orNull(numb("Mean execution time of the completed tasks.")),
      cost: decimal("What those tasks cost."),
      team: obj(
        {
          agents: int("Agents below the governor (its subtree)."),
          mayors: int(),
          workers: int(),
          active_workers: int("Workers neither failed nor terminated."),
          capacity: int("The workers' capacity summed."),
          tasks_held: numb("Tasks the workers hold now (load x capacity)."),
          tasks_completed: int("The workers' counters (all tenants)."),
          tasks_failed: int(),
          success_rate: orNull(numb()),
          avg_completion_ms: orNull(numb()),
        },
        ["agents", "workers", "capacity", "tasks_held", "tasks_completed", "tasks_failed"],
        "The team below the governor, now.",
      ),
      utilization: orNull(numb("team.tasks_held / team.capacity.")),
      checked_at: dateTime(),
    },
    [
      "governor_id",
      "tenant_id",
      "tasks",
      "tasks_completed",
      "tasks_failed",
      "success_rate",
      "avg_duration_ms",
      "team",
      "utilization",
    ],
    "A governor's (sub-master's) team performance.",
  ),
  GovernorTaskReceipt: {
    allOf: [
      ref("CommandReceipt"),
      goalResponse,
      obj({ governor_id: str(), domain: str(), task_id: str("The task's id within the goal.") }, [
        "governor_id",
        "domain",
        "task_id",
      ]),
    ],
  },
  GovernorResourcesReceipt: {
    allOf: [
      ref("CommandReceipt"),
      obj({ governor_id: str(), domain: str(), tier: str(), specialization: orNull(str()) }, [
        "governor_id",
        "domain",
        "tier",
        "specialization",
      ]),
    ],
  },
};

const schemas: Record<string, Schema> = {
  Error: error,
  CommandReceipt: commandReceipt,
  Liveness: obj({ status: enumOf(["ok"]) }, ["status"]),
  ModelUsage: modelUsage,
  AttemptUsage: attemptUsage,
  PlanAttempt: planAttempt,
  Goal: goal,
  PhaseStatus: phaseStatus,
  ResourceUse: resourceUse,
  ResourceAllocation: resourceAllocation,
  ConstitutionalViolation: constitutionalViolation,
  Task: task,
  GoalWithTasks: { allOf: [ref("Goal"), obj({ tasks: list(ref("Task")) }, ["tasks"])] },
  GoalPage: obj(
    {
      items: list(ref("Goal")),
      pageInfo: obj({ endCursor: orNull(str("Pass as `after` for the next page.")), hasNextPage: bool() }, [
        "endCursor",
        "hasNextPage",
      ]),
      totalCount: int("Goals matching the filter, all pages."),
    },
    ["items", "pageInfo", "totalCount"],
    "One page, newest first.",
  ),
  TaskList: items("Task", "Tasks of one goal, by id."),
  TrailEvent: obj(
    {
      type: str(),
      occurredAt: dateTime(),
      actorId: str(),
      actorTier: str(),
      eventId: str(),
      causationId: orNull(str()),
      topic: str(),
      partition: int(),
      offset: str(),
      payload: { description: "The event's payload as JSON." },
    },
    ["type", "occurredAt", "eventId", "topic", "partition", "offset"],
    "One event of a goal as the log holds it.",
  ),
  TrailEventList: items("TrailEvent", "A goal's events in log order, from the analytics event table."),
  AgentPerformance: agentPerformance,
  Agent: obj(agentProperties, ["id", "subordinates", "labels", "openTasks"]),
  AgentList: items("Agent", "Agents, by id."),
  AgentWorkload: agentWorkload,
  AgentDetail: {
    allOf: [
      ref("Agent"),
      obj(
        {
          currentTasks: list(str(), "goalId/taskId of the open tasks the agent holds, of the caller's tenant."),
          current_tasks: list(str(), "The designs' name of currentTasks."),
          currentPhase: orNull(enumOf(PHASES, "The latest phase of the project tasks among currentTasks.")),
          assignedProjects: list(str(), "The goals of currentTasks."),
          workload: orNull(ref("AgentWorkload")),
        },
        ["currentTasks", "currentPhase", "assignedProjects", "workload"],
      ),
    ],
  },
  GovernorStatus: obj(
    {
      agent: ref("Agent"),
      load: numb("Load the governor last reported in its heartbeat: tasks held divided by capacity."),
      capacity: orNull(int()),
      utilization: orNull(numb("The heartbeat's load (already tasks held / capacity); null without a capacity.")),
      performance: ref("AgentPerformance"),
      workload: orNull(ref("AgentWorkload")),
      subordinates: list(ref("Agent"), "The agents directly below."),
      team: obj(
        {
          count: int(),
          byStatus: counts("Subordinates by status."),
          capacity: int(),
          load: numb("Tasks the subordinates hold: each one's load x capacity, summed."),
          utilization: orNull(numb("load / capacity.")),
          tasksCompleted: int(),
          tasksFailed: int(),
          successRate: orNull(numb()),
        },
        ["count", "byStatus", "capacity", "load"],
        "Totals over the subordinates.",
      ),
    },
    ["agent", "load", "performance", "subordinates", "team"],
    "A GOVERNOR (AAMAS) or SUB_MASTER (DGM) with its subordinates, load and performance.",
  ),
  AgentsHealth: obj(
    {
      total: int(),
      counts: counts("Agents per status."),
      byStatus: { type: "object", additionalProperties: list(ref("Agent")), description: "Agents per status." },
    },
    ["total", "counts", "byStatus"],
  ),
  ComponentHealth: componentHealth,
  ProjectionLag: projectionLag,
  SystemHealth: obj(
    {
      status: enumOf(
        ["HEALTHY", "DEGRADED", "CRITICAL"],
        "DEGRADED: an agent failed or a read model lags; CRITICAL: a server is down.",
      ),
      checkedAt: dateTime(),
      components: list(ref("ComponentHealth")),
      projections: list(ref("ProjectionLag")),
      totalAgents: int(),
      activeAgents: int(),
      failedAgents: int(),
      agentsByStatus: list(obj({ status: str(), count: int() }, ["status", "count"])),
      taskQueueLength: int("Tasks of the caller's tenant waiting for a worker (PENDING, READY, ASSIGNED)."),
      runningTasks: int(),
      completedTasks: int(),
      failedTasks: int(),
      runningGoals: int(),
      problems: list(str()),
    },
    ["status", "checkedAt", "components", "projections", "totalAgents", "problems"],
    "The same numbers as the GraphQL query systemHealth.",
  ),
  SystemMetrics: obj(
    {
      tenantId: str(),
      goalsByStatus: counts("Goals of the caller's tenant by status."),
      tasksByStatus: counts("Tasks of the caller's tenant by status."),
      agentsByStatus: counts("Agents by status."),
      projections: list(ref("ProjectionLag")),
      projectionLag: int("Sum of the read models' lags."),
      checkedAt: dateTime(),
    },
    ["goalsByStatus", "tasksByStatus", "agentsByStatus", "projections", "projectionLag"],
  ),
  PerformanceReport: obj(
    {
      items: list(
        obj(
          {
            agentId: str(),
            tier: orNull(enumOf(TIERS)),
            topology: orNull(enumOf(TOPOLOGIES)),
            domain: orNull(str()),
            specialization: orNull(str()),
            status: orNull(str()),
            load: int(),
            capacity: orNull(int()),
            performance: ref("AgentPerformance"),
            utilization: orNull(
              obj(
                {
                  openTasks: int(),
                  capacity: orNull(int()),
                  utilization: orNull(numb()),
                  tasksCompleted: int(),
                  tasksFailed: int(),
                  successRate: orNull(numb()),
                  avgDurationMs: orNull(numb()),
                },
                [],
                "The agent_utilization view of the analytics model; null until the agent is projected there.",
              ),
            ),
          },
          ["agentId", "performance", "utilization"],
        ),
      ),
    },
    ["items"],
    "Per agent: its track record from the state model and its utilization from the analytics model.",
  ),
  ModelUsageTotal: modelUsageTotal,
  ModelUsageReport: obj(
    { by: enumOf(["model", "goal", "tenant"]), items: list(ref("ModelUsageTotal")) },
    ["by", "items"],
    "Model usage totals of the caller's tenant.",
  ),
  PolicyVersion: policyVersion,
  Policy: obj(
    {
      id: str(),
      name: orNull(str()),
      category: orNull(enumOf(POLICY_CATEGORIES)),
      status: enumOf(["ACTIVE", "RETIRED"]),
      currentVersion: int(),
      current: orNull(ref("PolicyVersion")),
      versions: list(ref("PolicyVersion")),
      retired: orNull(obj({ reason: str(), effectiveFrom: dateTime(), replacedBy: orNull(str()) })),
    },
    ["id", "status", "currentVersion", "versions"],
  ),
  PolicyList: items("Policy", "Policies, by id."),
  Escalation: obj(
    {
      id: str(),
      goalId: str(),
      taskId: orNull(str()),
      kind: orNull(str()),
      severity: orNull(str()),
      from: orNull(obj({ agentId: str(), tier: str() })),
      to: orNull(obj({ agentId: orNull(str()), tier: str() })),
      reason: orNull(str()),
      reasonChain: list(str(), "Reasons of the escalations that led here, oldest first."),
      previousEscalationId: orNull(str()),
      status: enumOf(["OPEN", "RESOLVED"]),
      outcome: orNull(str()),
      decision: orNull(str()),
      reassignedTo: orNull(str()),
      raisedAt: orNull(dateTime()),
      resolvedAt: orNull(dateTime()),
    },
    ["id", "goalId", "status"],
  ),
  EscalationList: items("Escalation", "Escalations of the caller's tenant's goals, newest first (at most 500)."),
};

// --- operations ---------------------------------------------------------------------------------------

type Access = "public" | "read" | "submit" | "steer" | "govern" | "report";

interface Op {
  id: string;
  summary: string;
  description?: string;
  tag: string;
  access: Access;
  query?: Schema[];
  body?: string;
  /** 200 with this schema, or 202 with a CommandReceipt (or `ok`, when given) for a command. */
  ok?: string;
  command?: boolean;
  notFound?: boolean;
}

const ACCESS_TEXT: Record<Access, string> = {
  public: "Public: no token needed.",
  read: "Any role may read (platform-admin, admin, operator, viewer, agent): a tenant sees its own goals, policies and agents plus the platform-wide ones; an agent token sees its own subtree.",
  submit: "Roles operator, admin and platform-admin.",
  steer: "Roles operator, admin and platform-admin.",
  govern: "Roles admin (its own tenant's policies and agents) and platform-admin (the platform-wide ones).",
  report: "Agent tokens (role agent with an agent claim), for tasks assigned to that agent.",
};

const queryParam = (name: string, schema: Schema, description: string): Schema => ({
  name,
  in: "query",
  required: false,
  description,
  schema,
});
const waitParam = queryParam(
  "wait",
  { type: "boolean", default: false },
  "Wait (bounded) until the read model shows the command's effect; the receipt says whether it did.",
);
const pathParam = (name: string, description: string): Schema => ({
  name,
  in: "path",
  required: true,
  description,
  schema: { type: "string" },
});
const errorResponse = (name: string) => ({ $ref: `#/components/responses/${name}` });

function operation(path: string, o: Op): Schema {
  const params = [...(path.match(/\{(\w+)\}/g) ?? [])].map((p) => {
    const name = p.slice(1, -1);
    return pathParam(name, name === "id" ? "The id of the resource." : `The ${name}.`);
  });
  const parameters = [...params, ...(o.query ?? []), ...(o.command && o.body ? [waitParam] : [])];
  const responses: Record<string, unknown> = {};
  if (o.command) {
    responses["202"] = {
      description: "Accepted: the command is in the log.",
      headers: {
        Location: { description: "Where to read the aggregate, when it has a route.", schema: { type: "string" } },
      },
      content: { "application/json": { schema: ref(o.ok ?? "CommandReceipt") } },
    };
  } else {
    responses["200"] = { description: "OK", content: { "application/json": { schema: ref(o.ok ?? "Liveness") } } };
  }
  if (o.body || o.query?.length || o.command) responses["400"] = errorResponse("BadRequest");
  if (o.access !== "public") {
    responses["401"] = errorResponse("Unauthenticated");
    responses["403"] = errorResponse("Forbidden");
  }
  if (o.notFound || params.length) responses["404"] = errorResponse("NotFound");
  if (o.body) responses["413"] = errorResponse("PayloadTooLarge");
  responses["429"] = errorResponse("RateLimited");
  responses["500"] = errorResponse("Internal");
  return {
    operationId: o.id,
    summary: o.summary,
    description: [o.description, ACCESS_TEXT[o.access]].filter(Boolean).join("\n\n"),
    tags: [o.tag],
    ...(o.access === "public" ? { security: [] } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(o.body ? { requestBody: { required: true, content: { "application/json": { schema: ref(o.body) } } } } : {}),
    responses,
  };
}

const goalFilters = [
  queryParam("status", enumOf(GOAL_STATUSES), "Only goals in this status."),
  queryParam("topology", enumOf(TOPOLOGIES), "Only goals run by this topology."),
  queryParam("first", { type: "integer", minimum: 1, maximum: 100, default: 20 }, "Page size."),
  queryParam("after", { type: "string" }, "pageInfo.endCursor of the previous page."),
];
const agentFilters = [
  queryParam("tier", enumOf(TIERS), "Only agents of this tier."),
  queryParam("domain", str(), "Only agents of this domain."),
  queryParam("topology", enumOf(TOPOLOGIES), "Only agents of this topology."),
];

/**
 * Routes the two source designs list that the API first lacked (issue 19). New routes answer in the
 * designs' snake_case names; the older routes keep camelCase and gained the designs' names beside.
 */
const DESIGN_OPERATIONS: Record<string, Record<string, Op>> = {
  "/health/system": {
    get: {
      id: "designSystemHealth",
      summary: "System health in the DGM design's SystemHealth shape",
      description: "The numbers of GET /system/health, in the design's names; tasks are the caller's tenant's.",
      tag: "health",
      access: "read",
      ok: "DesignSystemHealth",
    },
  },
  "/metrics/resource": {
    get: {
      id: "resourceMetrics",
      summary: "Resource usage: per agent and tier load, capacity, utilization; budgets, cost and model tokens",
      tag: "health",
      access: "read",
      query: agentFilters,
      ok: "ResourceMetrics",
    },
  },
  "/governors/{id}/performance": {
    get: {
      id: "governorPerformance",
      summary: "A governor's team performance",
      description:
        "Tasks of the caller's tenant the governor held (completed, failed, success rate, mean duration, cost), and its team now (agents, capacity, tasks held, utilization). 404 unless the agent is a GOVERNOR or SUB_MASTER.",
      tag: "agents",
      access: "read",
      ok: "GovernorPerformance",
    },
  },
  "/governors/{id}/tasks": {
    post: {
      id: "governorTask",
      summary: "Hand a task to a governor",
      description:
        "Writes SubmitGoal of a goal with this one task, in the governor's domain (and topology): the president routes the task to that domain's governor, as for any goal, and the goal is the caller's tenant's (read it at GET /goals/{id}, stop it like any goal). Where a domain has several governors, the president's usual rule picks among them. Field errors name the body's fields; 404 for an agent that is not a governor.",
      tag: "agents",
      access: "submit",
      body: "GovernorTaskInput",
      command: true,
      ok: "GovernorTaskReceipt",
    },
  },
  "/governors/{id}/resources": {
    put: {
      id: "governorResources",
      summary: "Set the number of agents under a governor",
      description:
        "Writes ScaleAgents for one group of the governor's domain: its workers (optionally of one specialization) or, in aamas, its mayors. A governor's budget, quotas and capacity limits are RESOURCE_ALLOCATION policy rules, set with POST /policies and /policies/{id}/amend, where the tiers and domains they apply to are explicit.",
      tag: "agents",
      access: "govern",
      body: "GovernorResourcesInput",
      command: true,
      ok: "GovernorResourcesReceipt",
    },
  },
};

/** Every route of gateway/rest.ts, by OpenAPI path and lower-case method. */
const OPERATIONS: Record<string, Record<string, Op>> = {
  ...DESIGN_OPERATIONS,
  "/openapi.json": {
    get: { id: "getOpenApi", summary: "This document", tag: "meta", access: "public", ok: "OpenApiDocument" },
  },
  "/health": {
    get: { id: "liveness", summary: "Liveness: the gateway answers", tag: "health", access: "public", ok: "Liveness" },
  },
  "/health/agents": {
    get: { id: "agentsHealth", summary: "Agents grouped by status", tag: "health", access: "read", ok: "AgentsHealth" },
  },
  "/system/health": {
    get: {
      id: "systemHealth",
      summary: "System health (the GraphQL systemHealth numbers)",
      description: "Probes Kafka, the registry, MongoDB and PostgreSQL, and measures the read models' lag.",
      tag: "health",
      access: "read",
      ok: "SystemHealth",
    },
  },
  "/system/metrics": {
    get: {
      id: "systemMetrics",
      summary: "Goals, tasks and agents by status, and projection lag",
      description: "JSON counterpart of the Prometheus /metrics, for the caller's tenant.",
      tag: "health",
      access: "read",
      ok: "SystemMetrics",
    },
  },
  "/metrics/performance": {
    get: {
      id: "agentPerformance",
      summary: "Per-agent performance and utilization",
      tag: "health",
      access: "read",
      query: agentFilters,
      ok: "PerformanceReport",
    },
  },
  "/metrics/model-usage": {
    get: {
      id: "modelUsage",
      summary: "Model usage totals of the caller's tenant, per model, goal or tenant",
      description:
        "Every model call the log records (plans and task attempts, failed ones included), from the analytics views model_usage_by_model, model_usage_by_goal and model_usage_by_tenant. An agent token must give by=goal and a goalId it sees.",
      tag: "health",
      access: "read",
      query: [
        queryParam("by", { ...enumOf(["model", "goal", "tenant"]), default: "model" }, "How totals are grouped."),
        queryParam("goalId", str(), "by=goal: only this goal."),
        queryParam("model", str(), "Only this model (by=goal and by=tenant: rows that used it)."),
        queryParam("limit", { type: "integer", minimum: 1, maximum: 1000, default: 100 }, "Rows at most."),
      ],
      ok: "ModelUsageReport",
    },
  },
  "/goals": {
    post: {
      id: "submitGoal",
      summary: "Submit a goal",
      description:
        "Writes SubmitGoal. With an explicit `tasks` DAG the planner is skipped. Takes this API's GoalInput or the DGM design's GoalRequest; answers with the receipt and the design's GoalResponse fields.",
      tag: "goals",
      access: "submit",
      body: "GoalInput",
      command: true,
      ok: "GoalReceipt",
    },
    get: {
      id: "listGoals",
      summary: "Goals of the caller's tenant, newest first",
      description: "Agent tokens may not list goals.",
      tag: "goals",
      access: "read",
      query: goalFilters,
      ok: "GoalPage",
    },
  },
  "/goals/{id}": {
    get: {
      id: "getGoal",
      summary: "A goal with its tasks",
      description: "404 when the goal does not exist or belongs to another tenant.",
      tag: "goals",
      access: "read",
      ok: "GoalWithTasks",
    },
  },
  "/goals/{id}/tasks": {
    get: {
      id: "listGoalTasks",
      summary: "The tasks of a goal",
      tag: "goals",
      access: "read",
      query: [queryParam("status", enumOf(TASK_STATUSES), "Only tasks in this status.")],
      ok: "TaskList",
    },
  },
  "/goals/{id}/events": {
    get: {
      id: "getGoalEvents",
      summary: "The goal's audit trail: its events in log order",
      tag: "goals",
      access: "read",
      query: [
        queryParam("limit", { type: "integer", minimum: 1, maximum: 10_000, default: 1000 }, "At most this many."),
      ],
      ok: "TrailEventList",
    },
  },
  "/goals/{id}/stop": {
    post: {
      id: "stopGoal",
      summary: "Stop a goal",
      description: "Writes StopGoal: every open task cancelled, nothing new dispatched, GoalStopped recorded.",
      tag: "goals",
      access: "steer",
      body: "StopInput",
      command: true,
    },
  },
  "/emergency/stop": {
    post: {
      id: "emergencyStop",
      summary: "Emergency stop of a goal",
      description: "The same StopGoal as POST /goals/{id}/stop, with the goal id in the body.",
      tag: "goals",
      access: "steer",
      body: "EmergencyStopInput",
      command: true,
      notFound: true,
    },
  },
  "/projects": {
    post: {
      id: "submitProject",
      summary: "Submit a project (a goal that runs through the SDLC phases)",
      tag: "projects",
      access: "submit",
      body: "GoalInput",
      command: true,
      ok: "GoalReceipt",
    },
    get: {
      id: "listProjects",
      summary: "Projects of the caller's tenant, newest first",
      tag: "projects",
      access: "read",
      query: goalFilters,
      ok: "GoalPage",
    },
  },
  "/projects/{id}": {
    get: {
      id: "getProject",
      summary: "A project with its tasks",
      tag: "projects",
      access: "read",
      ok: "GoalWithTasks",
    },
  },
  "/projects/{id}/phase": {
    put: {
      id: "requestPhaseTransition",
      summary: "Ask to move a project to another phase",
      description: "Writes RequestPhaseTransition; the hierarchy may refuse it (PhaseTransitionRejected).",
      tag: "projects",
      access: "steer",
      body: "PhaseTransitionInput",
      command: true,
    },
  },
  "/tasks/{goalId}/{taskId}/result": {
    post: {
      id: "reportTaskResult",
      summary: "An external agent reports the result of the attempt it holds",
      tag: "tasks",
      access: "report",
      body: "TaskResultInput",
      command: true,
    },
  },
  "/agents": {
    get: {
      id: "listAgents",
      summary: "Agents",
      tag: "agents",
      access: "read",
      query: [...agentFilters, queryParam("status", enumOf(AGENT_STATUSES), "Only agents in this status.")],
      ok: "AgentList",
    },
    post: {
      id: "registerAgent",
      summary: "Register an agent",
      tag: "agents",
      access: "govern",
      body: "RegisterAgentInput",
      command: true,
    },
  },
  "/agents/scale": {
    post: {
      id: "scaleAgents",
      summary: "Scale a tier to a number of agents",
      tag: "agents",
      access: "govern",
      body: "ScaleAgentsInput",
      command: true,
    },
  },
  "/agents/command": {
    post: {
      id: "agentCommand",
      summary: "One agent command, chosen by `type`",
      description:
        'Dispatches on `type`: "scale" is POST /agents/scale (role admin), "register" is POST /agents (role admin; honours ?wait), "stop" (or "emergency_stop") is POST /emergency/stop (roles operator and admin; honours ?wait); the other fields are that command\'s input. An unknown or missing type is a 400 naming field "type" and listing the known ones. No command terminates one agent: ScaleAgents retires the least loaded of a group.',
      tag: "agents",
      access: "govern",
      body: "AgentCommand",
      command: true,
    },
  },
  "/agents/{id}": {
    get: {
      id: "getAgent",
      summary: "An agent, its open tasks and workload",
      tag: "agents",
      access: "read",
      ok: "AgentDetail",
    },
  },
  "/governors/{id}/status": {
    get: {
      id: "governorStatus",
      summary: "A governor with its subordinates, load and performance",
      description: "404 when the agent does not exist or is not a GOVERNOR or SUB_MASTER.",
      tag: "agents",
      access: "read",
      ok: "GovernorStatus",
    },
  },
  "/policies": {
    get: {
      id: "listPolicies",
      summary: "Policies",
      tag: "governance",
      access: "read",
      query: [
        queryParam("category", enumOf(POLICY_CATEGORIES), "Only policies of this category."),
        queryParam("status", enumOf(["ACTIVE", "RETIRED"]), "Only policies in this status."),
      ],
      ok: "PolicyList",
    },
    post: {
      id: "definePolicy",
      summary: "Define a policy",
      tag: "governance",
      access: "govern",
      body: "PolicyInput",
      command: true,
    },
  },
  "/policies/{id}": {
    get: { id: "getPolicy", summary: "A policy with its versions", tag: "governance", access: "read", ok: "Policy" },
  },
  "/policies/{id}/amend": {
    post: {
      id: "amendPolicy",
      summary: "Amend a policy (a new version)",
      tag: "governance",
      access: "govern",
      body: "PolicyAmendmentInput",
      command: true,
    },
  },
  "/escalations": {
    get: {
      id: "listEscalations",
      summary: "Escalations of the caller's tenant's goals",
      tag: "governance",
      access: "read",
      query: [
        queryParam("goalId", str(), "Only escalations of this goal."),
        queryParam("status", enumOf(["OPEN", "RESOLVED"]), "Only escalations in this status."),
      ],
      ok: "EscalationList",
    },
  },
};

const errorResponses = {
  BadRequest: "Invalid input (INVALID_INPUT); `error.field` names the field, or `body` for a malformed JSON body.",
  Unauthenticated: "No valid bearer token (UNAUTHENTICATED).",
  Forbidden: "The token's role may not do this (FORBIDDEN).",
  NotFound: "No such resource, or not visible to the caller's tenant (NOT_FOUND).",
  PayloadTooLarge: "The request body is over the gateway's limit (PAYLOAD_TOO_LARGE).",
  RateLimited: "More requests per second than the token's allowance (RATE_LIMITED).",
  Internal: "A failure in the gateway (INTERNAL); the gateway log has the details.",
};

/**
 * The request bodies, generated from the zod schemas that validate them (gateway/contract): their
 * limits and enums are the validators'. Ids a route's path gives are optional in its body.
 */
function requestBodies(): Record<string, Schema> {
  const r = requestSchemas();
  return {
    ...r,
    StopInput: pathGiven(r.EmergencyStopInput, "goalId"),
    PhaseTransitionInput: pathGiven(r.PhaseTransitionInput, "goalId"),
    TaskResultInput: pathGiven(r.TaskResultInput, "goalId", "taskId"),
    PolicyAmendmentInput: pathGiven(r.PolicyAmendmentInput, "policyId"),
  };
}

let cached: Schema | undefined;

/** The OpenAPI 3.1 document of /api/v1 (built once; treat it as read-only). */
export function openApiDocument(): Schema {
  if (cached) return cached;
  const paths: Record<string, Record<string, Schema>> = {};
  for (const [path, methods] of Object.entries(OPERATIONS))
    paths[path] = Object.fromEntries(Object.entries(methods).map(([m, o]) => [m, operation(path, o)]));
  Object.assign(paths, agentPaths); // the worker API (gateway/worker-api.ts, gateway/openapi-agents.ts)
  cached = {
    openapi: "3.1.0",
    info: {
      title: "Polity gateway REST API",
      version: "1.0.0",
      description: `Goals, projects, agents, policies and health of a Polity deployment. The REST API shares its validation, permissions and tenant rules with the GraphQL API at /graphql. Commands answer 202 with a CommandReceipt; add ?wait=true to wait until the read model shows the effect. Errors are JSON: {error: {code, message, field}}. Routes added for the source designs (DGM, AAMAS) answer in their snake_case names. GraphQL refuses, before running it, an operation costing more than ${MAX_COST}, with more than ${MAX_ROOT_FIELDS} root fields or more than ${MAX_ALIASES} aliases (400, the message giving the cost and the limit).`,
    },
    servers: [{ url: "/api/v1" }],
    security: [{ bearer: [] }],
    tags: ["meta", "health", "goals", "projects", "tasks", "agents", "governance"].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description:
            "HS256 JWT with claims sub, role (platform-admin, admin, operator, viewer, agent), tenant (always `platform` for platform-admin), and agent for agent tokens. Mint one with `npm run token -- --role operator`.",
        },
      },
      schemas: {
        ...schemas,
        ...designSchemas,
        ...requestBodies(),
        OpenApiDocument: { type: "object", description: "An OpenAPI 3.1 document." },
      },
      responses: Object.fromEntries(
        Object.entries(errorResponses).map(([name, description]) => [
          name,
          {
            description,
            ...(name === "RateLimited"
              ? { headers: { "Retry-After": { description: "Seconds to wait.", schema: { type: "integer" } } } }
              : {}),
            content: { "application/json": { schema: ref("Error") } },
          },
        ]),
      ),
    },
  };
  return cached;
}
