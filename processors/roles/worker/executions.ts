/**
 * The worker's side effects: every attempt the state says is running on a worker this host acts
 * for runs on that worker's executor, and its outcome (ExecutionFinished, with ExecutionProgressed
 * on the way) is decided on by the worker decider. The engine aborts an attempt the state no longer
 * shows running here (cancelled, retried, reassigned).
 */
import { dependencyResults } from "../../domain/context.js";
import type { ExecutionFinished } from "../../domain/decider.js";
import { taskKey } from "../../domain/kernel/keys.js";
import { runningOn } from "../../domain/worker.js";
import type { Extension, SideEffect } from "../../engine/extension.js";
import type { Execution, Executor, Progress } from "../../executors.js";
import type { SilencedAgents } from "../silenced.js";

export function executions(
  hosts: (agentId: string) => boolean,
  executorFor: (agentId: string) => Executor | null,
  silenced: SilencedAgents,
): Extension {
  let unsubscribe: (() => void) | undefined;
  return {
    name: "executions",
    summary: "runs each attempt RUNNING on a hosted worker on its executor; decides on its progress and outcome",
    start(host) {
      // A silenced agent let go: its attempts start again.
      unsubscribe = silenced.onUnsilence(() => {
        for (const slot of host.liveSlots()) slot.startSideEffects();
      });
    },
    stop() {
      unsubscribe?.();
    },
    sideEffects(state) {
      const out: SideEffect[] = [];
      for (const task of runningOn(state, hosts)) {
        if (silenced.has(task.workerId!)) continue;
        const executor = executorFor(task.workerId!);
        if (!executor) continue;
        const execution: Execution = {
          goalId: task.goalId,
          taskId: task.spec.id,
          attempt: task.attempt,
          agentId: task.workerId!,
          spec: task.spec,
          dependencies: dependencyResults(state, task),
        };
        out.push({
          key: `attempt ${taskKey(task.goalId, task.spec.id)}#${task.attempt}`,
          run: async (signal, report) => {
            const started = Date.now();
            const ids = {
              goalId: execution.goalId,
              taskId: execution.taskId,
              agentId: execution.agentId,
              attempt: execution.attempt,
            };
            const progress = (p: Progress) => report({ type: "ExecutionProgressed", ...ids, ...p });
            const outcome = await executor.run(execution, signal, progress).catch((e: Error) => ({
              ok: false as const,
              reason: `executor threw: ${e.message}`,
              kind: "EXECUTION_ERROR" as const,
              retryable: true,
              durationMs: Date.now() - started,
              exitCode: null,
              output: null,
            }));
            // A hung (silenced) agent never reports; its attempt starts again if it resumes.
            if (silenced.has(execution.agentId)) return null;
            return { type: "ExecutionFinished", ...ids, outcome } satisfies ExecutionFinished;
          },
        });
      }
      return out;
    },
  };
}
