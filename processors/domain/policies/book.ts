/**
 * Policies are data: every version of every policy, folded from polity.policies.events into a
 * PolicyBook. Nothing here decides; the policy decider (policy.ts) writes the versions, and any
 * decider reads the book through `ctx.policies` (a global view its host keeps, see
 * processors/host/policy-feed.ts).
 *
 * A version takes effect at its `effectiveFrom` and stays in effect until the next version's. A
 * decision about something that happened at time t consults `book.at(t)`: the version of each
 * policy effective at t. An amendment therefore governs decisions after it and never changes one
 * before it (the policy decider never dates a version before the moment it accepts it).
 *
 * Policies belong to tenants (tenancy.ts): a policy is owned by the tenant whose admin defined it,
 * or is platform-wide when the platform defined it. A tenant's policy governs that tenant's goals
 * only; deciders get the book scoped to the tenant of the input they decide (`forTenant`, done by
 * `scopedContext` for every input, in hosts and specs alike), so no rule module has to remember it.
 *
 * `apply` is idempotent: a version already known, or older than one known, changes nothing.
 */
import type { PolityEvent } from "../../../schemas/reader.js";
import type { PolicyCategory, PolicyRef, Tier } from "../../../schemas/generated/types.js";
import { isEvent, type DecisionContext, type TierInput } from "../decider.js";
import type { HierarchyState } from "../kernel/state.js";
import { concerns, ownerOf, SYSTEM_TENANT } from "../kernel/tenancy.js";

export interface PolicyVersion {
  policyId: string;
  version: number;
  name: string;
  category: PolicyCategory;
  description: string;
  /** The rules as written: a string holding a JSON object, interpreted per category. */
  rules: string;
  appliesToTiers: Tier[];
  domains: string[];
  precedence: number;
  effectiveFrom: Date;
  /** Why the version was written: null for version 1. */
  rationale: string | null;
  /** The owning tenant; null for a platform-wide policy. */
  tenantId: string | null;
}

export interface PolicyRecord {
  policyId: string;
  name: string;
  category: PolicyCategory;
  /** The owning tenant (the envelope tenant of PolicyDefined); null for a platform-wide policy. */
  tenantId: string | null;
  /** Every version, ascending. */
  versions: PolicyVersion[];
  retired: { version: number; effectiveFrom: Date; reason: string } | null;
}

/** Message types the book folds. */
export const POLICY_EVENTS: ReadonlySet<string> = new Set([
  "PolicyDefined",
  "PolicyAmended",
  "PolicyRetired",
  "PolicyEvaluated",
]);

/** Commands of polity.policies.commands, as named in a refusal's PolicyEvaluated subject. */
const POLICY_COMMANDS: ReadonlySet<string> = new Set(["DefinePolicy", "AmendPolicy"]);

export class PolicyBook {
  constructor(
    private readonly policies = new Map<string, PolicyRecord>(),
    /** DefinePolicy and AmendPolicy commands already answered (accepted or refused), by eventId. */
    readonly answered = new Set<string>(),
    /** Set on a tenant's view: `at` leaves out the policies of other tenants. */
    readonly tenantId: string | null = null,
  ) {}

  /**
   * The same book as one tenant's goals see it: its own policies and the platform-wide ones. A
   * view, not a copy: it follows what the book folds afterwards.
   */
  forTenant(tenantId: string): PolicyBook {
    return new PolicyBook(this.policies, this.answered, tenantId);
  }

  /** Folds a policy event; every other event is ignored. */
  apply(event: PolityEvent): void {
    switch (event.type) {
      case "PolicyDefined": {
        const e = event.value;
        if (e.commandId) this.answered.add(e.commandId);
        if (this.policies.has(e.policyId)) return;
        const tenantId = ownerOf(e.envelope.tenantId);
        this.policies.set(e.policyId, {
          policyId: e.policyId,
          name: e.name,
          category: e.category,
          tenantId,
          retired: null,
          versions: [
            {
              policyId: e.policyId,
              version: e.version,
              name: e.name,
              category: e.category,
              description: e.description,
              rules: e.rules,
              appliesToTiers: e.appliesToTiers,
              domains: e.domains,
              precedence: e.precedence,
              effectiveFrom: e.effectiveFrom,
              rationale: null,
              tenantId,
            },
          ],
        });
        return;
      }
      case "PolicyAmended": {
        const e = event.value;
        if (e.commandId) this.answered.add(e.commandId);
        const policy = this.policies.get(e.policyId);
        if (!policy || policy.versions.some((v) => v.version >= e.version)) return;
        policy.versions.push({
          policyId: e.policyId,
          version: e.version,
          name: policy.name,
          category: policy.category,
          description: e.description,
          rules: e.rules,
          appliesToTiers: e.appliesToTiers,
          domains: e.domains,
          precedence: e.precedence,
          effectiveFrom: e.effectiveFrom,
          rationale: e.rationale,
          tenantId: policy.tenantId,
        });
        return;
      }
      case "PolicyRetired": {
        const e = event.value;
        const policy = this.policies.get(e.policyId);
        if (policy && !policy.retired)
          policy.retired = { version: e.version, effectiveFrom: e.effectiveFrom, reason: e.reason };
        return;
      }
      case "PolicyEvaluated": {
        // A refused DefinePolicy/AmendPolicy: its cause is the command, answered once.
        const e = event.value;
        if (POLICY_COMMANDS.has(e.subject.type) && e.envelope.causationId) this.answered.add(e.envelope.causationId);
        return;
      }
      default:
        return;
    }
  }

  get(policyId: string): PolicyRecord | undefined {
    return this.policies.get(policyId);
  }

  /** The latest version written, whether or not it is in effect yet. */
  latest(policyId: string): PolicyVersion | undefined {
    return this.policies.get(policyId)?.versions.at(-1);
  }

  /**
   * The version of each policy in effect at `time` (the latest whose effectiveFrom is not after it),
   * leaving out policies not yet in effect or retired by then; highest precedence first, ties by id.
   * On a tenant's view (`forTenant`), only that tenant's and the platform-wide policies.
   */
  at(time: Date, category?: PolicyCategory): PolicyVersion[] {
    const t = time.getTime();
    const out: PolicyVersion[] = [];
    for (const policy of this.policies.values()) {
      if (category && policy.category !== category) continue;
      if (this.tenantId !== null && !concerns(policy.tenantId, this.tenantId)) continue;
      if (policy.retired && policy.retired.effectiveFrom.getTime() <= t) continue;
      let effective: PolicyVersion | undefined;
      for (const v of policy.versions) if (v.effectiveFrom.getTime() <= t) effective = v;
      if (effective) out.push(effective);
    }
    return out.sort((a, b) => b.precedence - a.precedence || a.policyId.localeCompare(b.policyId));
  }

  get size(): number {
    return this.policies.size;
  }
}

export function refOf(v: Pick<PolicyVersion, "policyId" | "version">): PolicyRef {
  return { policyId: v.policyId, version: v.version };
}

/**
 * The tenant an input is decided for: its goal's tenant when the state knows the goal, else the
 * tenant of the event's envelope; null for a side effect's outcome of a goal the state lost.
 */
export function tenantOfInput(input: TierInput, state: HierarchyState): string | null {
  const goalId = isEvent(input)
    ? (input.value as { goalId?: unknown }).goalId
    : "goalId" in input
      ? input.goalId
      : null;
  const goal = typeof goalId === "string" ? state.goals.get(goalId) : undefined;
  if (goal) return goal.tenantId;
  return isEvent(input) ? (input.value as { envelope: { tenantId: string } }).envelope.tenantId : null;
}

/**
 * The context a decider gets for one input: the policies scoped to the input's tenant. Hosts and
 * specs both call this, so a tenant's policy can only ever govern that tenant's goals. Without a
 * tenant only platform-wide policies apply.
 */
export function scopedContext(ctx: DecisionContext, input: TierInput, state: HierarchyState): DecisionContext {
  const tenantId = tenantOfInput(input, state);
  return { ...ctx, policies: ctx.policies.forTenant(tenantId ?? SYSTEM_TENANT) };
}

/** A shared empty book, for contexts that consult no policies. */
export const NO_POLICIES: PolicyBook = new PolicyBook();
