/**
 * SECURITY (who may command whom) and COMMUNICATION (allowed edges of the hierarchy) policies.
 */
import type { PolicyCategory } from "../../schemas/generated/types.js";
import { jsonObjectProblems } from "./policy.js";

/** Problems with the rules of a SECURITY or COMMUNICATION policy. */
export function accessRulesProblems(_category: PolicyCategory, rules: string): string[] {
  return jsonObjectProblems(rules);
}
