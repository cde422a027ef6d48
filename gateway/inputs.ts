/**
 * Validation of what clients send, shared by GraphQL and REST so both refuse the same things with
 * the same words. Each parser takes plain JSON (`unknown`), returns the typed command payload, and
 * throws INVALID_INPUT naming the field path ("priority", "tasks[2].dependsOn") at the first problem.
 * Nothing is written before a parser has accepted the whole input.
 */
import type { GoalRequest } from "../producers/commands.js";
import type {
  ExecutorKind,
  Payload,
  Phase,
  PolicyCategory,
  TaskSpec,
  Tier,
  Topology,
} from "../schemas/generated/types.js";
import { GatewayError, invalid } from "./errors.js";

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
export const TOPOLOGIES: readonly Topology[] = ["aamas", "dgm"];
export const TIERS: readonly Tier[] = ["PRESIDENT", "GOVERNOR", "MAYOR", "MASTER", "SUB_MASTER", "WORKER"];
/** ExecutorKind: a worker registered with `model` runs its group's configured model (topology 'models'). */
export const EXECUTORS: readonly ExecutorKind[] = ["simulated", "shell", "external", "model"];
export const POLICY_CATEGORIES: readonly PolicyCategory[] = [
  "RESOURCE_ALLOCATION",
  "PERFORMANCE",
  "SECURITY",
  "ESCALATION",
  "COMMUNICATION",
  "CONSTITUTIONAL",
];
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const DECIMAL = /^-?\d{1,14}(\.\d{1,4})?$/;

type Json = Record<string, unknown>;

/** A field reader over one JSON object, naming fields by their path from the input's root. */
class Fields {
  constructor(
    private readonly o: Json,
    private readonly path: string,
  ) {}

  static of(raw: unknown, path = ""): Fields {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw))
      throw invalid(path || "input", "must be a JSON object");
    return new Fields(raw as Json, path);
  }

  name(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  has(key: string): boolean {
    return this.o[key] !== undefined && this.o[key] !== null;
  }

  str(key: string, opts: { required?: boolean; max?: number; pattern?: RegExp; hint?: string } = {}): string | null {
    const v = this.o[key];
    if (v === undefined || v === null) {
      if (opts.required) throw invalid(this.name(key), "is required");
      return null;
    }
    if (typeof v !== "string") throw invalid(this.name(key), `must be a string, got ${typeof v}`);
    if (opts.required && !v.trim()) throw invalid(this.name(key), "must not be empty");
    if (opts.max && v.length > opts.max) throw invalid(this.name(key), `must be at most ${opts.max} characters`);
    if (opts.pattern && !opts.pattern.test(v)) throw invalid(this.name(key), opts.hint ?? `has an invalid format`);
    return v;
  }

  required(key: string, opts: { max?: number; pattern?: RegExp; hint?: string } = {}): string {
    return this.str(key, { ...opts, required: true })!;
  }

  int(key: string, opts: { min: number; max: number; required?: boolean }): number | null {
    const v = this.o[key];
    if (v === undefined || v === null) {
      if (opts.required) throw invalid(this.name(key), "is required");
      return null;
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v < opts.min || v > opts.max)
      throw invalid(this.name(key), `must be an integer from ${opts.min} to ${opts.max}, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string): boolean | null {
    const v = this.o[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== "boolean") throw invalid(this.name(key), "must be true or false");
    return v;
  }

  oneOf<T extends string>(key: string, allowed: readonly T[], required = false): T | null {
    const v = this.str(key, { required });
    if (v === null) return null;
    if (!(allowed as readonly string[]).includes(v))
      throw invalid(this.name(key), `must be one of ${allowed.join(", ")}, got "${v}"`);
    return v as T;
  }

  strings(key: string, opts: { max?: number; pattern?: RegExp } = {}): string[] {
    const v = this.o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw invalid(this.name(key), "must be a list of strings");
    if (v.length > (opts.max ?? 100)) throw invalid(this.name(key), `must have at most ${opts.max ?? 100} entries`);
    return v.map((s, i) => {
      if (typeof s !== "string" || !s) throw invalid(`${this.name(key)}[${i}]`, "must be a non-empty string");
      if (opts.pattern && !opts.pattern.test(s)) throw invalid(`${this.name(key)}[${i}]`, "has an invalid format");
      return s;
    });
  }

  /** A string map, given as an object or (GraphQL) as a list of { key, value }. */
  map(key: string): Record<string, string> {
    const v = this.o[key];
    if (v === undefined || v === null) return {};
    const out: Record<string, string> = {};
    const entries: [string, unknown][] = Array.isArray(v)
      ? v.map((e, i) => {
          const f = Fields.of(e, `${this.name(key)}[${i}]`);
          return [f.required("key", { max: 200 }), f.str("value") ?? ""];
        })
      : typeof v === "object"
        ? Object.entries(v as Json)
        : (() => {
            throw invalid(this.name(key), "must be an object of strings");
          })();
    if (entries.length > 100) throw invalid(this.name(key), "must have at most 100 entries");
    for (const [k, value] of entries) {
      if (typeof value !== "string") throw invalid(`${this.name(key)}.${k}`, "must be a string");
      out[k] = value;
    }
    return out;
  }

  date(key: string): Date | null {
    const v = this.str(key);
    if (v === null) return null;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw invalid(this.name(key), `must be an ISO-8601 date-time, got "${v}"`);
    return d;
  }

  list(key: string, max: number): Fields[] {
    const v = this.o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw invalid(this.name(key), "must be a list");
    if (v.length > max) throw invalid(this.name(key), `must have at most ${max} entries`);
    return v.map((e, i) => Fields.of(e, `${this.name(key)}[${i}]`));
  }

  get raw(): Json {
    return this.o;
  }
}

function task(f: Fields): TaskSpec {
  return {
    id: f.required("id", { pattern: ID, hint: "must be 1-128 letters, digits, '.', '_', ':' or '-'" }),
    title: f.required("title", { max: 200 }),
    description: f.str("description", { max: 4000 }),
    domain: f.required("domain", { max: 64 }),
    specialization: f.str("specialization", { max: 64 }),
    phase: f.oneOf("phase", PHASES),
    dependsOn: f.strings("dependsOn", { max: 100, pattern: ID }),
    estimatedEffortMs: f.int("estimatedEffortMs", { min: 0, max: 30 * 24 * 3600 * 1000 }),
    priority: f.int("priority", { min: 1, max: 10 }),
    inputs: f.map("inputs"),
    // One attempt's time limit (processors/domain/time-limits.ts): at most 30 days.
    timeoutMs: f.int("timeoutMs", { min: 1, max: 30 * 24 * 3600 * 1000 }),
  };
}

/**
 * The DGM design's GoalRequest names (snake_case) beside this API's: a client written against the
 * design sends `goal_id`, `domain_hints`; the parser reads the camelCase name and errors name
 * the field as the client sent it. Giving both spellings with different values is refused.
 */
const GOAL_ALIASES: Record<string, string> = { goal_id: "goalId", domain_hints: "domainHints" };
const TASK_ALIASES: Record<string, string> = {
  depends_on: "dependsOn",
  estimated_effort_ms: "estimatedEffortMs",
  timeout_ms: "timeoutMs",
};
/** The design's priority names, on this API's 1 (lowest) to 10 scale. */
export const PRIORITY_NAMES: Readonly<Record<string, number>> = { low: 3, medium: 5, high: 8, critical: 10 };
/** A title derived from a description is its first non-empty line, cut to this length. */
export const DERIVED_TITLE_MAX = 120;

/** `raw` with the aliases renamed; `renamed` maps each camelCase name used back to the alias sent. */
function unalias(raw: Json, aliases: Record<string, string>, path: string, renamed: Map<string, string>): Json {
  const out: Json = { ...raw };
  for (const [alias, name] of Object.entries(aliases)) {
    if (out[alias] === undefined) continue;
    const at = path ? `${path}.${alias}` : alias;
    if (out[name] !== undefined && JSON.stringify(out[name]) !== JSON.stringify(out[alias]))
      throw invalid(at, `and ${name} are the same field; send one of them`);
    out[name] = out[alias];
    delete out[alias];
    renamed.set(path ? `${path}.${name}` : name, at);
  }
  return out;
}

/** The first non-empty line of a description, as a title. */
export function titleFrom(description: string): string {
  const line = description.split(/\r?\n/).find((l) => l.trim()) ?? "";
  const t = line.trim();
  return t.length <= DERIVED_TITLE_MAX ? t : `${t.slice(0, DERIVED_TITLE_MAX - 1)}\u2026`;
}

/**
 * The goal as this API reads it: design aliases renamed, `priority` by name, `deadline` as epoch
 * millis, non-string `constraints` values as their JSON text, and a missing title derived from
 * the description. Only shapes are converted here; parseGoal checks the values.
 */
function designGoal(raw: unknown, renamed: Map<string, string>): unknown {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return raw;
  const g = unalias(raw as Json, GOAL_ALIASES, "", renamed);
  if (typeof g.priority === "string") {
    const n = PRIORITY_NAMES[g.priority.toLowerCase()];
    if (n === undefined)
      throw invalid(
        "priority",
        `must be an integer from 1 to 10 or one of ${Object.keys(PRIORITY_NAMES).join(", ")}, got "${g.priority}"`,
      );
    g.priority = n;
  }
  if (typeof g.deadline === "number") {
    if (!Number.isSafeInteger(g.deadline) || g.deadline < 0)
      throw invalid("deadline", `must be an ISO-8601 date-time or epoch milliseconds, got ${g.deadline}`);
    g.deadline = new Date(g.deadline).toISOString();
  }
  const c = g.constraints;
  if (c && typeof c === "object" && !Array.isArray(c))
    g.constraints = Object.fromEntries(
      Object.entries(c as Json).map(([k, v]) => [
        k,
        typeof v === "string" || v === null || v === undefined
          ? v
          : typeof v === "object"
            ? JSON.stringify(v)
            : String(v),
      ]),
    );
  if ((g.title === undefined || g.title === null) && typeof g.description === "string" && g.description.trim())
    g.title = titleFrom(g.description);
  if (Array.isArray(g.tasks))
    g.tasks = g.tasks.map((t, i) =>
      t && typeof t === "object" && !Array.isArray(t) ? unalias(t as Json, TASK_ALIASES, `tasks[${i}]`, renamed) : t,
    );
  return g;
}

/**
 * SubmitGoal / submitProject input. `kind` comes from the route or mutation, not from the body.
 * Accepts this API's GoalInput and the DGM design's GoalRequest (see designGoal).
 */
export function parseGoal(raw: unknown, kind: "GOAL" | "PROJECT", now = new Date()): GoalRequest {
  const renamed = new Map<string, string>();
  try {
    return goalOf(designGoal(raw, renamed), kind, now);
  } catch (e) {
    // An error about a field the client sent under its design name names it so.
    const field = e instanceof GatewayError ? e.field : undefined;
    const prefix =
      field && [...renamed.keys()].find((k) => field === k || field.startsWith(`${k}.`) || field.startsWith(`${k}[`));
    if (!prefix || !field) throw e;
    const sent = renamed.get(prefix)! + field.slice(prefix.length);
    throw invalid(sent, (e as GatewayError).message.slice(field.length + 2));
  }
}

function goalOf(raw: unknown, kind: "GOAL" | "PROJECT", now: Date): GoalRequest {
  const f = Fields.of(raw);
  const deadline = f.date("deadline");
  if (deadline && deadline.getTime() <= now.getTime())
    throw invalid("deadline", `is already past (${deadline.toISOString()})`);
  const budget = f.str("budget", { pattern: DECIMAL, hint: 'must be a decimal with at most 4 places, e.g. "120.50"' });
  const tasks = f.has("tasks") ? f.list("tasks", 1000).map(task) : null;
  if (tasks && tasks.length === 0)
    throw invalid("tasks", "must not be empty; leave it out to let the planner decompose");
  return {
    goalId: f.str("goalId", { pattern: ID, hint: "must be 1-128 letters, digits, '.', '_', ':' or '-'" }) ?? undefined,
    kind,
    title: f.has("title")
      ? f.required("title", { max: 200 })
      : (() => {
          throw invalid("title", "is required (or send a description: its first line becomes the title)");
        })(),
    description: f.str("description", { max: 4000 }) ?? undefined,
    priority: f.int("priority", { min: 1, max: 10 }) ?? 5,
    topology: f.oneOf("topology", TOPOLOGIES) ?? "aamas",
    domainHints: f.strings("domainHints", { max: 20 }),
    constraints: f.map("constraints"),
    deadline,
    budget,
    tasks,
  };
}

export function parsePhaseTransition(raw: unknown): {
  goalId: string;
  fromPhase: Phase;
  toPhase: Phase;
  justification: string | null;
} {
  const f = Fields.of(raw);
  return {
    goalId: f.required("goalId", { pattern: ID }),
    fromPhase: f.oneOf("fromPhase", PHASES, true)!,
    toPhase: f.oneOf("toPhase", PHASES, true)!,
    justification: f.str("justification", { max: 2000 }),
  };
}

export function parseStop(raw: unknown): { goalId: string; reason: string } {
  const f = Fields.of(raw);
  return { goalId: f.required("goalId", { pattern: ID }), reason: f.required("reason", { max: 2000 }) };
}

export function parseScale(raw: unknown): Omit<Payload<"ScaleAgents">, "trigger" | "loadRatio"> {
  const f = Fields.of(raw);
  return {
    tier: f.oneOf("tier", TIERS, true)!,
    topology: f.oneOf("topology", TOPOLOGIES) ?? "aamas",
    domain: f.str("domain", { max: 64 }),
    specialization: f.str("specialization", { max: 64 }),
    targetCount: f.int("targetCount", { min: 0, max: 1000, required: true })!,
    reason: f.str("reason", { max: 2000 }) ?? "requested through the API",
  };
}

export function parseDefinePolicy(raw: unknown): Payload<"DefinePolicy"> {
  const f = Fields.of(raw);
  return {
    policyId: f.required("policyId", { pattern: ID }),
    name: f.required("name", { max: 200 }),
    category: f.oneOf("category", POLICY_CATEGORIES, true)!,
    description: f.required("description", { max: 4000 }),
    rules: rulesOf(f),
    appliesToTiers: f.strings("appliesToTiers").map((t, i) => tierAt(f, "appliesToTiers", i, t)),
    domains: f.strings("domains", { max: 50 }),
    precedence: f.int("precedence", { min: 0, max: 1000 }) ?? 100,
    effectiveFrom: f.date("effectiveFrom"),
  };
}

export function parseAmendPolicy(raw: unknown): Payload<"AmendPolicy"> {
  const f = Fields.of(raw);
  return {
    policyId: f.required("policyId", { pattern: ID }),
    expectedVersion: f.int("expectedVersion", { min: 1, max: 1_000_000, required: true })!,
    rules: rulesOf(f),
    description: f.str("description", { max: 4000 }),
    appliesToTiers: f.has("appliesToTiers")
      ? f.strings("appliesToTiers").map((t, i) => tierAt(f, "appliesToTiers", i, t))
      : null,
    domains: f.has("domains") ? f.strings("domains", { max: 50 }) : null,
    precedence: f.int("precedence", { min: 0, max: 1000 }),
    rationale: f.required("rationale", { max: 2000 }),
    effectiveFrom: f.date("effectiveFrom"),
  };
}

/** Policy rules are JSON; accepted as a JSON string or as an object, stored as a string. */
function rulesOf(f: Fields): string {
  const v = f.raw.rules;
  if (v === undefined || v === null) throw invalid(f.name("rules"), "is required (a JSON object of rules)");
  const text = typeof v === "string" ? v : JSON.stringify(v);
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
  } catch {
    throw invalid(f.name("rules"), "must be a JSON object (as an object or a string holding one)");
  }
  if (text.length > 64_000) throw invalid(f.name("rules"), "must be at most 64 000 characters");
  return text;
}

function tierAt(f: Fields, key: string, i: number, t: string): Tier {
  if (!(TIERS as readonly string[]).includes(t))
    throw invalid(`${f.name(key)}[${i}]`, `must be one of ${TIERS.join(", ")}, got "${t}"`);
  return t as Tier;
}

export function parseRegisterAgent(raw: unknown): Payload<"RegisterAgent"> {
  const f = Fields.of(raw);
  const agentId = f.required("agentId", { pattern: ID });
  return {
    agentId,
    name: f.str("name", { max: 200 }) ?? agentId,
    tier: f.oneOf("tier", TIERS, true)!,
    topology: f.oneOf("topology", TOPOLOGIES) ?? "aamas",
    domain: f.str("domain", { max: 64 }),
    specialization: f.str("specialization", { max: 64 }),
    superiorId: f.str("superiorId", { pattern: ID }),
    capacity: f.int("capacity", { min: 1, max: 1000 }) ?? 1,
    executor: f.oneOf("executor", EXECUTORS) ?? "external",
    labels: f.map("labels"),
    heartbeatIntervalMs: f.int("heartbeatIntervalMs", { min: 100, max: 3_600_000 }),
  };
}

export type TaskOutcome =
  | { completed: { result: string; outputs: Record<string, string>; cost: string; durationMs: number } }
  | { failed: { reason: string; retryable: boolean; durationMs: number | null } };

export function parseTaskResult(raw: unknown): {
  goalId: string;
  taskId: string;
  attempt: number;
  outcome: TaskOutcome;
} {
  const f = Fields.of(raw);
  const goalId = f.required("goalId", { pattern: ID });
  const taskId = f.required("taskId", { pattern: ID });
  const attempt = f.int("attempt", { min: 1, max: 1000, required: true })!;
  const status = f.oneOf("status", ["COMPLETED", "FAILED"] as const, true)!;
  const durationMs = f.int("durationMs", { min: 0, max: 30 * 24 * 3600 * 1000 });
  const outcome: TaskOutcome =
    status === "COMPLETED"
      ? {
          completed: {
            result: f.required("result", { max: 100_000 }),
            outputs: f.map("outputs"),
            cost:
              f.str("cost", { pattern: DECIMAL, hint: 'must be a decimal with at most 4 places, e.g. "0.1200"' }) ??
              "0.0000",
            durationMs: durationMs ?? 0,
          },
        }
      : {
          failed: {
            reason: f.required("reason", { max: 4000 }),
            retryable: f.bool("retryable") ?? true,
            durationMs,
          },
        };
  return { goalId, taskId, attempt, outcome };
}
