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
 * `apply` is idempotent: a version already known, or older than one known, changes nothing.
 */
import type { PolityEvent } from "../../schemas/reader.js";
import type { PolicyCategory, PolicyRef, Tier } from "../../schemas/generated/types.js";

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
}

export interface PolicyRecord {
  policyId: string;
  name: string;
  category: PolicyCategory;
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
  private readonly policies = new Map<string, PolicyRecord>();
  /** DefinePolicy and AmendPolicy commands already answered (accepted or refused), by eventId. */
  readonly answered = new Set<string>();

  /** Folds a policy event; every other event is ignored. */
  apply(event: PolityEvent): void {
    switch (event.type) {
      case "PolicyDefined": {
        const e = event.value;
        if (e.commandId) this.answered.add(e.commandId);
        if (this.policies.has(e.policyId)) return;
        this.policies.set(e.policyId, {
          policyId: e.policyId,
          name: e.name,
          category: e.category,
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
   */
  at(time: Date, category?: PolicyCategory): PolicyVersion[] {
    const t = time.getTime();
    const out: PolicyVersion[] = [];
    for (const policy of this.policies.values()) {
      if (category && policy.category !== category) continue;
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

/** A shared empty book, for contexts that consult no policies. */
export const NO_POLICIES: PolicyBook = new PolicyBook();
