/**
 * Which executor runs a hosted worker's tasks: a configured worker's own (simulated, shell or model),
 * or for a worker registered at run time (the scaler's) its group's, by its executor kind. External
 * workers act for themselves, and a terminated worker is hosted no more: both have none.
 */
import { groupKey, type AgentInfo } from "../../domain/directory.js";
import { modelExecutor, type ModelWorkerConfig } from "../../ai/model-executor.js";
import { shellExecutor, simulatedExecutor, type Executor } from "../../executors.js";
import { agentsOf, type AgentSpec } from "../../topology.js";
import type { RoleEnv } from "../role.js";

/** The executor of each worker this process hosts, null for the workers it does not run. */
export function workerExecutors(env: RoleEnv): (agentId: string) => Executor | null {
  const { topology } = env;
  const simulated = simulatedExecutor(topology.simulated);
  /** One model executor per configured model worker group, shared by its workers (also those added at run time). */
  const modelOfGroup = new Map<string, Executor>();
  const modelExecutorOf = (a: AgentSpec | AgentInfo, config: ModelWorkerConfig | undefined): Executor | null => {
    const group = groupKey(a.topology, a.domain, a.specialization);
    const known = modelOfGroup.get(group);
    if (known || !config) return known ?? null;
    const model = env.model(config.model);
    if (!model) return null;
    const pricing = topology.models?.[config.model]?.pricing;
    const executor = modelExecutor(model, config, { domain: a.domain, specialization: a.specialization }, pricing);
    modelOfGroup.set(group, executor);
    return executor;
  };
  const executors = new Map<string, Executor>();
  /** The shell executor of each configured worker group that has one, for its workers added at run time. */
  const shellOfGroup = new Map<string, Executor>();
  for (const a of agentsOf(topology)) {
    if (a.tier !== "WORKER") continue;
    if (a.executor === "model") {
      const executor = modelExecutorOf(a, a.model);
      if (executor) executors.set(a.agentId, executor);
    } else if (a.executor === "shell" && a.shell) {
      const shell = shellExecutor(a.shell, env.workRoot);
      executors.set(a.agentId, shell);
      const group = groupKey(a.topology, a.domain, a.specialization);
      if (!shellOfGroup.has(group)) shellOfGroup.set(group, shell);
    } else if (a.executor !== "external") executors.set(a.agentId, simulated);
  }
  return (agentId) => {
    const a: AgentInfo | undefined = env.feed.directory.get(agentId);
    if (!a || a.tier !== "WORKER" || a.status === "TERMINATED") return null;
    const configured = executors.get(agentId);
    if (configured) return configured;
    if (a.executor === "shell") return shellOfGroup.get(groupKey(a.topology, a.domain, a.specialization)) ?? null;
    if (a.executor === "model") return modelExecutorOf(a, undefined);
    return a.executor === "external" ? null : simulated;
  };
}
