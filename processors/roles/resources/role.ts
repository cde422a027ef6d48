/**
 * The resource manager: answers budget, compute and capacity requests per goal (the goal's budget,
 * its tasks' costs and durations, the requests: all keyed by goal), raises contention between
 * governors as a conflict, and checks PERFORMANCE policies (PerformanceAlert, once per breach).
 */
import { resources } from "../../domain/resources.js";
import { defineRole } from "../role.js";

export const resourcesRole = defineRole({
  role: "resources",
  tiers: ["SYSTEM"],
  group: "polity-resources",
  inputs: ["polity.governance.events", "polity.tasks.events", "polity.goals.events"],
  state: ["polity.governance.events", "polity.tasks.events", "polity.goals.events"],
  writes: {
    "polity.governance.events": ["ResourceAllocated", "ResourceDenied", "PerformanceAlert", "PolicyEvaluated"],
    "polity.tasks.events": ["ConflictRaised", "ConflictResolved"],
  },
  summary: "allocates or denies budgets and capacity per goal; alerts on SLA breaches",
  build() {
    return { decider: resources, extensions: [] };
  },
});
