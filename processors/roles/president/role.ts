/**
 * The president (DGM: master): validates and decomposes goals and projects, runs their phases,
 * assigns tasks to governors, answers their escalations, and ends goals. It reads the goals'
 * commands and every event topic of a goal; planning by a language model runs beside it as a side
 * effect, and the clock lets it watch deadlines.
 */
import { president } from "../../domain/president.js";
import { watchesTime } from "../../domain/time-limits.js";
import { planningEffects } from "../../ai/model-planner.js";
import { clock, CLOCK_MS } from "../shared/clock.js";
import { defineRole } from "../role.js";
import type { Extension } from "../../engine/extension.js";

export const presidentRole = defineRole({
  role: "president",
  tiers: ["PRESIDENT", "MASTER"],
  group: "polity-president",
  inputs: ["polity.goals.commands", "polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  state: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  writes: {
    "polity.goals.events": [
      "GoalSubmitted",
      "GoalValidated",
      "GoalRejected",
      "PlanRequested",
      "PlanProposed",
      "GoalDecomposed",
      "GoalCompleted",
      "GoalFailed",
      "GoalStopped",
      "GoalSnapshotTaken",
      "PhaseTransitioned",
      "PhaseTransitionRejected",
    ],
    "polity.tasks.events": [
      "TaskCreated",
      "TaskAssigned",
      "TaskCancelled",
      "EscalationRaised",
      "EscalationResolved",
      "ContextProvided",
    ],
    "polity.governance.events": ["PolicyEvaluated", "ConstitutionalViolationDetected"],
    "polity.notifications": ["NotificationBroadcast"],
  },
  summary: "validates, plans and decomposes goals, runs their phases, assigns governors, ends goals",
  build(env) {
    const planning: Extension = {
      name: "planning",
      summary: "asks a language model for each plan the state awaits (PlanRequested without PlanProposed)",
      sideEffects: planningEffects(
        (name) => env.model(name),
        (t) => env.topology.topologies[t]?.planner ?? {},
      ),
    };
    return { decider: president, extensions: [planning, clock(CLOCK_MS, watchesTime)] };
  },
});
