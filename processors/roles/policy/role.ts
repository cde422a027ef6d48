/**
 * The policy engine: answers DefinePolicy and AmendPolicy (with the expected version) from the
 * versions it wrote, as PolicyDefined / PolicyAmended, or refuses them (PolicyEvaluated). Every
 * process reads all versions through its own PolicyFeed, not through this role.
 */
import { policy } from "../../domain/policy.js";
import { defineRole } from "../role.js";

export const policyRole = defineRole({
  role: "policy",
  tiers: ["SYSTEM"],
  group: "polity-policy",
  inputs: ["polity.policies.commands", "polity.policies.events"],
  state: ["polity.policies.events"],
  writes: {
    "polity.policies.events": ["PolicyDefined", "PolicyAmended"],
    "polity.governance.events": ["PolicyEvaluated"],
  },
  summary: "versions policies on command; refusals are PolicyEvaluated",
  build() {
    return { decider: policy, extensions: [] };
  },
});
