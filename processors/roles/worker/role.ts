/**
 * The worker: accepts what is assigned to the agents it hosts, runs each attempt on the agent's
 * executor, and reports progress and the outcome; it heartbeats for its agents and answers the
 * queries and context requests addressed to them.
 */
import { worker } from "../../domain/worker.js";
import type { Executor } from "../../executors.js";
import { defineRole } from "../role.js";
import { workerExecutors } from "./executors.js";
import { executions } from "./executions.js";
import { heartbeats } from "./heartbeats.js";

export const workerRole = defineRole({
  role: "worker",
  tiers: ["WORKER"],
  group: "polity-worker",
  inputs: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  state: ["polity.goals.events", "polity.tasks.events", "polity.governance.events"],
  writes: {
    "polity.tasks.events": [
      "TaskAccepted",
      "TaskStarted",
      "TaskProgressed",
      "TaskCompleted",
      "TaskFailed",
      "QueryAnswered",
    ],
    "polity.governance.events": ["PolicyEvaluated"],
    "polity.agents.events": ["AgentHeartbeat"],
  },
  summary: "runs the attempts assigned to its hosted workers and reports them; heartbeats for them",
  build(env, ofTiers) {
    let executorOf: ((agentId: string) => Executor | null) | undefined;
    // Built on first use: describing the role (describe.ts) builds it without running anything.
    const executorFor = (agentId: string) => (executorOf ??= workerExecutors(env))(agentId);
    // A worker host acts for the workers it runs: not external ones, which act for themselves.
    const hosts = (agentId: string) => ofTiers(agentId) && executorFor(agentId) !== null;
    return {
      decider: worker,
      hosts,
      extensions: [
        executions(hosts, executorFor, env.silenced),
        ...(env.heartbeats ? [heartbeats(env.feed.directory, hosts, env.silenced)] : []),
      ],
    };
  },
});
