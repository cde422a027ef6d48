/**
 * The governor (DGM: sub-master): takes the tasks of its domain from the president and hands them
 * to mayors (DGM: to workers), asking a budget first where a policy says so; retries, redelivers,
 * splits or escalates failures; reassigns the work of failed agents; times out attempts.
 */
import { governor } from "../../domain/governor.js";
import { watchesTime } from "../../domain/time-limits.js";
import { agentStatus } from "../shared/agent-status.js";
import { clock, CLOCK_MS } from "../shared/clock.js";
import { defineRole } from "../role.js";

export const governorRole = defineRole({
  role: "governor",
  tiers: ["GOVERNOR", "SUB_MASTER"],
  group: "polity-governor",
  // It also reads the answers to its budget requests (domain/resources.ts), co-partitioned by goal.
  inputs: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  state: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  writes: {
    "polity.tasks.events": [
      "TaskCreated",
      "TaskAssigned",
      "TaskCompleted",
      "TaskRetried",
      "TaskReassigned",
      "TaskTimedOut",
      "ReportSubmitted",
      "EscalationRaised",
      "EscalationResolved",
      "ConflictRaised",
      "ConflictResolved",
      "ContextProvided",
      "QueryAnswered",
    ],
    "polity.governance.events": ["ResourceRequested", "PolicyEvaluated"],
  },
  summary: "hands its domain's tasks to mayors (dgm: workers), retries, splits and escalates failures",
  build(env) {
    return { decider: governor, extensions: [agentStatus(env.feed), clock(CLOCK_MS, watchesTime)] };
  },
});
