/**
 * The commands the source designs give a governor, expressed with the commands the platform has
 * (nothing new reaches the log): each checks what it can against the read model, then goes through
 * gateway/commands.ts, so validation, permissions and the receipt are those of every other command.
 *
 * - A task handed to a governor (AAMAS: the president hands a state its work) is a SubmitGoal of a
 *   one-task goal whose task is in the governor's domain: the president routes a task to the
 *   governor of its domain, exactly as for any other goal. It is a goal of the caller's tenant,
 *   readable at /goals/{id}, stoppable like any goal.
 * - A governor's resources are its agents: PUT /governors/{id}/resources is a ScaleAgents for a
 *   worker group (or the mayors) of the governor's domain. Budgets, quotas and capacity limits are
 *   rules of RESOURCE_ALLOCATION policies, which apply to tiers and domains with precedence and
 *   versions: they are set through /policies, where their scope is explicit, not hidden behind a
 *   per-governor route.
 */
import type { AgentDoc } from "../projections/mongo/state-store.js";
import type { Principal } from "./auth.js";
import type { CommandReceipt, Commands, WriteOptions } from "./commands.js";
import { GatewayError, invalid } from "./errors.js";
import { titleFrom } from "./inputs.js";
import type { ReadSide } from "./read-side.js";

type Json = Record<string, unknown>;

/** Body fields of a governor task that are the goal's; every other known one is the task's. */
const GOAL_FIELDS = ["goalId", "deadline", "budget", "constraints"] as const;
/** The task's fields, as TaskInput names them (the one task of the goal). */
const TASK_FIELDS = ["title", "description", "specialization", "phase", "priority", "estimatedEffortMs", "inputs"];
const ALIASES: Record<string, string> = {
  goal_id: "goalId",
  task_id: "taskId",
  estimated_effort_ms: "estimatedEffortMs",
  timeout_ms: "timeoutMs",
};

function unaliased(body: Json): Json {
  const out: Json = { ...body };
  for (const [alias, name] of Object.entries(ALIASES)) {
    if (out[alias] === undefined) continue;
    if (out[name] !== undefined && JSON.stringify(out[name]) !== JSON.stringify(out[alias]))
      throw invalid(alias, `and ${name} are the same field; send one of them`);
    out[name] = out[alias];
    delete out[alias];
  }
  return out;
}

/** A body field that must agree with what the governor gives (its domain, its topology). */
function sameAs(body: Json, field: string, value: string | null, what: string): void {
  if (body[field] !== undefined && body[field] !== null && body[field] !== value)
    throw invalid(field, `is the governor's ${what} ("${value}"); leave it out or send the same value`);
}

/** The worker specializations of a domain in a topology, from the agents the read model knows. */
async function specializations(read: ReadSide, governor: AgentDoc): Promise<string[]> {
  const workers = await read.agents({ tier: "WORKER", domain: governor.domain, topology: governor.topology });
  return [...new Set(workers.map((w) => w.specialization).filter((s): s is string => !!s))].sort();
}

async function knownSpecialization(read: ReadSide, governor: AgentDoc, value: unknown): Promise<void> {
  if (typeof value !== "string" || !value) return; // the parser names a wrong type
  const known = await specializations(read, governor);
  if (known.length && !known.includes(value))
    throw invalid(
      "specialization",
      `no worker of domain ${governor.domain} (${governor.topology}) has specialization "${value}"; known: ${known.join(", ")}`,
    );
}

function domainOf(governor: AgentDoc): string {
  if (!governor.domain)
    throw new GatewayError(
      "INVALID_INPUT",
      `governor ${governor._id} has no domain: no task can be routed to it`,
      "id",
    );
  return governor.domain;
}

/**
 * POST /governors/{id}/tasks: one task for the governor's domain, as a one-task goal. Errors name
 * the body's fields ("title", "specialization"), not the goal's task list they end up in.
 */
export async function submitGovernorTask(
  commands: Commands,
  read: ReadSide,
  principal: Principal | null,
  governor: AgentDoc,
  raw: Json,
  options: WriteOptions,
): Promise<{ receipt: CommandReceipt; taskId: string; domain: string }> {
  const body = unaliased(raw);
  const domain = domainOf(governor);
  sameAs(body, "domain", domain, "domain");
  sameAs(body, "topology", governor.topology, "topology");
  if (body.tasks !== undefined)
    throw invalid("tasks", "a governor is handed one task: send its fields, or POST /goals for a task graph");
  if (Array.isArray(body.dependsOn) && body.dependsOn.length)
    throw invalid("dependsOn", "a task handed to a governor alone has nothing to depend on");
  await knownSpecialization(read, governor, body.specialization);
  const title =
    body.title ??
    (typeof body.description === "string" && body.description.trim() ? titleFrom(body.description) : undefined);
  const taskId = body.taskId ?? "task";
  const task: Json = { id: taskId, domain };
  for (const k of TASK_FIELDS) if (body[k] !== undefined) task[k] = body[k];
  if (title !== undefined) task.title = title;
  if (body.timeoutMs !== undefined) task.timeoutMs = body.timeoutMs;
  const goal: Json = {
    title,
    description: body.description,
    priority: body.priority,
    topology: governor.topology ?? undefined,
    domainHints: [domain],
    tasks: [task],
  };
  for (const k of GOAL_FIELDS) if (body[k] !== undefined) goal[k] = body[k];
  try {
    const receipt = await commands.submitGoal(principal, goal, "GOAL", options);
    return { receipt, taskId: String(taskId), domain };
  } catch (e) {
    // "tasks[0].specialization" is the body's "specialization"; the task's id is the body's taskId.
    if (!(e instanceof GatewayError) || !e.field?.startsWith("tasks[0].")) throw e;
    const inner = e.field.slice("tasks[0].".length);
    const field = inner === "id" ? "taskId" : inner.startsWith("id.") ? `taskId${inner.slice(2)}` : inner;
    throw invalid(field, e.message.slice(e.field.length + 2));
  }
}

/**
 * PUT /governors/{id}/resources: the number of agents of one group under the governor, as
 * ScaleAgents (admin only): `tier` WORKER (default, with an optional `specialization`) or MAYOR
 * (AAMAS), always in the governor's domain and topology.
 */
export async function scaleGovernor(
  commands: Commands,
  read: ReadSide,
  principal: Principal | null,
  governor: AgentDoc,
  body: Json,
): Promise<{ receipt: CommandReceipt; domain: string; tier: string; specialization: string | null }> {
  const domain = domainOf(governor);
  sameAs(body, "domain", domain, "domain");
  sameAs(body, "topology", governor.topology, "topology");
  const below = governor.topology === "dgm" ? ["WORKER"] : ["WORKER", "MAYOR"];
  const tier = body.tier ?? "WORKER";
  if (typeof tier !== "string" || !below.includes(tier))
    throw invalid(
      "tier",
      `must be one of ${below.join(", ")} (the tiers below this governor), got ${JSON.stringify(tier)}`,
    );
  if (tier === "MAYOR" && body.specialization !== undefined && body.specialization !== null)
    throw invalid("specialization", "mayors have no specialization; leave it out");
  if (tier === "WORKER") await knownSpecialization(read, governor, body.specialization);
  const receipt = await commands.scaleAgents(principal, {
    ...body,
    tier,
    domain,
    topology: governor.topology ?? undefined,
    reason: body.reason ?? `resources of governor ${governor._id} set through the API`,
  });
  return {
    receipt,
    domain,
    tier,
    specialization: typeof body.specialization === "string" ? body.specialization : null,
  };
}
