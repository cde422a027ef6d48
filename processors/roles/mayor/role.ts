/**
 * The mayor: hands its tasks to workers (least loaded first), retries failed attempts on other
 * workers, escalates what it cannot finish to its governor, reassigns the work of failed workers
 * and times out attempts past their limit.
 */
import { mayor } from "../../domain/mayor.js";
import { watchesTime } from "../../domain/time-limits.js";
import { agentStatus } from "../shared/agent-status.js";
import { clock, CLOCK_MS } from "../shared/clock.js";
import { defineRole } from "../role.js";

export const mayorRole = defineRole({
  role: "mayor",
  tiers: ["MAYOR"],
  group: "polity-mayor",
  inputs: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  state: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  writes: {
    "polity.tasks.events": [
      "TaskAssigned",
      "TaskRetried",
      "TaskReassigned",
      "TaskTimedOut",
      "ReportSubmitted",
      "EscalationRaised",
      "ConflictRaised",
      "ConflictResolved",
      "ContextProvided",
      "QueryAnswered",
    ],
    "polity.governance.events": ["PolicyEvaluated"],
  },
  summary: "hands tasks to workers, retries on others, escalates to its governor, reassigns from failed workers",
  build(env) {
    return { decider: mayor, extensions: [agentStatus(env.feed), clock(CLOCK_MS, watchesTime)] };
  },
});
