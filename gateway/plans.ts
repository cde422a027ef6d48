/**
 * Per-tenant plans (the AAMAS design's tiers): what a tenant may ask of the platform at once. The
 * gateway enforces them: a submission is refused when the tenant already has its plan's number of
 * goals running, or when the goal lists more tasks than the plan allows; the rate limit takes the
 * plan's requests per second for the whole tenant.
 *
 * Which tenant has which plan is configuration: POLITY_TENANT_PLANS (lib/config.ts), a JSON object
 * from tenant id to a plan name, or to a plan name with limits of its own:
 *
 *   {"acme": "starter", "globex": {"plan": "professional", "maxConcurrentGoals": 80}, "*": "professional"}
 *
 * `*` is the plan of every tenant not named; without it, unknown tenants get enterprise, so a
 * deployment that configures nothing limits nobody more than before.
 */
import { ConfigError } from "../lib/config.js";

export interface PlanLimits {
  /** Goals of the tenant running at once (submitted and not yet completed, failed, stopped or rejected). */
  maxConcurrentGoals: number;
  /** Tasks one goal may list. */
  maxTasksPerGoal: number;
  /** Requests per second for the whole tenant, with a burst of twice that. */
  requestsPerSecond: number;
}

export const PLANS = {
  starter: { maxConcurrentGoals: 5, maxTasksPerGoal: 20, requestsPerSecond: 10 },
  professional: { maxConcurrentGoals: 50, maxTasksPerGoal: 100, requestsPerSecond: 50 },
  enterprise: { maxConcurrentGoals: 500, maxTasksPerGoal: 1000, requestsPerSecond: 500 },
} as const satisfies Record<string, PlanLimits>;

export type PlanName = keyof typeof PLANS;
const PLAN_NAMES = Object.keys(PLANS) as PlanName[];

/** The plan of unknown tenants when the configuration names none (`*`). */
export const DEFAULT_PLAN: PlanName = "enterprise";

export interface TenantPlan extends PlanLimits {
  plan: PlanName;
}

export type PlanAssignment = PlanName | ({ plan: PlanName } & Partial<PlanLimits>);

const LIMIT_KEYS = ["maxConcurrentGoals", "maxTasksPerGoal", "requestsPerSecond"] as const;

function resolve(assignment: PlanAssignment, where: string): TenantPlan {
  const { plan, ...own } = typeof assignment === "string" ? { plan: assignment } : assignment;
  if (!PLAN_NAMES.includes(plan))
    throw new ConfigError(`${where}: plan ${JSON.stringify(plan)} is not one of ${PLAN_NAMES.join(", ")}`);
  for (const [key, value] of Object.entries(own)) {
    if (!(LIMIT_KEYS as readonly string[]).includes(key))
      throw new ConfigError(`${where}.${key}: unknown limit; limits are ${LIMIT_KEYS.join(", ")}`);
    if (!Number.isInteger(value) || (value as number) < 1)
      throw new ConfigError(`${where}.${key}: must be a whole number of at least 1, got ${JSON.stringify(value)}`);
  }
  return { plan, ...PLANS[plan], ...own };
}

export class TenantPlans {
  private readonly byTenant: Map<string, TenantPlan>;
  private readonly fallback: TenantPlan;

  constructor(assignments: Record<string, PlanAssignment> = {}, where = "plans") {
    const { "*": other, ...tenants } = assignments;
    this.fallback = resolve(other ?? DEFAULT_PLAN, `${where}["*"]`);
    this.byTenant = new Map(
      Object.entries(tenants).map(([tenant, a]) => [tenant, resolve(a, `${where}[${JSON.stringify(tenant)}]`)]),
    );
  }

  /** Plans from POLITY_TENANT_PLANS's text (null or empty: every tenant on the default plan). */
  static parse(json: string | null | undefined, where = "POLITY_TENANT_PLANS"): TenantPlans {
    if (!json) return new TenantPlans({}, where);
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch (e) {
      throw new ConfigError(`${where} is not JSON: ${(e as Error).message}`);
    }
    if (raw === null || typeof raw !== "object" || Array.isArray(raw))
      throw new ConfigError(`${where} must be a JSON object from tenant id to plan (${PLAN_NAMES.join(", ")})`);
    return new TenantPlans(raw as Record<string, PlanAssignment>, where);
  }

  of(tenantId: string): TenantPlan {
    return this.byTenant.get(tenantId) ?? this.fallback;
  }
}
