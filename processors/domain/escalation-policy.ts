/**
 * ESCALATION policies: limits and routes of escalations, and how each tier resolves them.
 */
import { jsonObjectProblems } from "./policy.js";

/** Problems with the rules of an ESCALATION policy. */
export function escalationRulesProblems(rules: string): string[] {
  return jsonObjectProblems(rules);
}
