/**
 * A broker-free run of the whole hierarchy: the four tier deciders, each with its own state as its
 * host would keep it, over one in-memory log. Every decision is folded by its own host at once
 * (as TierHost does) and appended to the log, where every host reads it in turn; the worker host
 * "runs" each attempt that becomes RUNNING by deciding on an ExecutionFinished for it.
 *
 * Which host takes the next turn is round-robin or drawn from a seeded generator, so tests can
 * shake the interleaving without losing reproducibility.
 */
import type { PolityEvent } from "../../schemas/reader.js";
import type { Envelope, MessageMap, MessageTypeName, Tier } from "../../schemas/generated/types.js";
import {
  isEvent,
  type DecisionContext,
  type ExecutionFinished,
  type TierDecider,
  type TierInput,
} from "../../processors/domain/decider.js";
import type { Role } from "../../processors/domain/directory.js";
import { governor } from "../../processors/domain/governor.js";
import { health } from "../../processors/domain/health.js";
import { mayor } from "../../processors/domain/mayor.js";
import { policy } from "../../processors/domain/policy.js";
import { president } from "../../processors/domain/president.js";
import { resources } from "../../processors/domain/resources.js";
import { scaler } from "../../processors/domain/scaler.js";
import { evolve, initialState, type HierarchyState } from "../../processors/domain/kernel/state.js";
import { taskKey } from "../../processors/domain/kernel/keys.js";
import { runningOn, worker } from "../../processors/domain/worker.js";
import { asEvent, context, DIRECTORY } from "./decider-spec.js";

const ROLE_TIERS: Record<Role, readonly Tier[]> = {
  president: ["PRESIDENT", "MASTER"],
  governor: ["GOVERNOR", "SUB_MASTER"],
  mayor: ["MAYOR"],
  worker: ["WORKER"],
  policy: ["SYSTEM"],
  health: ["SYSTEM"],
  resources: ["SYSTEM"],
  scaler: ["SYSTEM"],
};

// The run has no policy or health host (their inputs are not part of a run); the entries keep Role complete.
const DECIDERS: Record<Role, TierDecider> = { president, governor, mayor, worker, policy, health, resources, scaler };

export interface Attempt {
  goalId: string;
  taskId: string;
  agentId: string;
  attempt: number;
}

export interface RunOptions {
  /** The commands that start the run (SubmitGoal, ...). */
  commands: PolityEvent[];
  /** The outcome of an attempt; every attempt succeeds by default. */
  outcome?: (a: Attempt) => ExecutionFinished["outcome"];
  /** Seed for the order of turns; round-robin when absent. */
  seed?: number;
  /** When true, an attempt finishes on a later turn of its own rather than at once, so attempts overlap. */
  deferExecutions?: boolean;
  /** Called when nothing is left to do; commands it returns are appended and the run goes on. */
  onIdle?: (log: readonly PolityEvent[]) => PolityEvent[];
  maxSteps?: number;
}

export interface Host {
  role: Role;
  state: HierarchyState;
  /** Next log index to read. */
  cursor: number;
}

export interface RunResult {
  log: PolityEvent[];
  hosts: Record<Role, Host>;
  /** Executions reported, in order. */
  executions: Attempt[];
}

export const ok = (a: Attempt): ExecutionFinished["outcome"] => ({
  ok: true,
  result: `${a.taskId} done by ${a.agentId}`,
  outputs: { by: a.agentId },
  durationMs: 1,
  cost: "0.0100",
  exitCode: null,
});

/** mulberry32: a tiny seeded generator, so a failing interleaving can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function runHierarchy(options: RunOptions): RunResult {
  const log: PolityEvent[] = [...options.commands];
  const executions: Attempt[] = [];
  const outcome = options.outcome ?? ok;
  const roles: Role[] = ["president", "governor", "mayor", "worker"];
  const hosts = Object.fromEntries(
    roles.map((role) => [role, { role, state: initialState(), cursor: 0 } satisfies Host]),
  ) as Record<Role, Host>;
  const contexts = Object.fromEntries(
    roles.map((role) => [
      role,
      context({
        hosts: (id) => {
          const tier = DIRECTORY.get(id)?.tier;
          return tier !== undefined && ROLE_TIERS[role].includes(tier);
        },
      }),
    ]),
  ) as Record<Role, DecisionContext>;
  /** Attempts already handed to an executor, as `goal/task#attempt`. */
  const launched = new Set<string>();
  const queued: ExecutionFinished[] = [];

  const decide = (host: Host, input: TierInput) => {
    const cause = isEvent(input) ? (input.value as { envelope: Envelope }).envelope : null;
    if (isEvent(input)) host.state = evolve(host.state, input);
    for (const d of DECIDERS[host.role].decide(input, host.state, contexts[host.role])) {
      const event = asEvent(d, { causationId: cause?.eventId ?? null });
      host.state = evolve(host.state, event);
      log.push(event);
    }
  };

  const launch = (host: Host) => {
    for (const t of runningOn(host.state, contexts.worker.hosts)) {
      const key = `${taskKey(t.goalId, t.spec.id)}#${t.attempt}`;
      if (launched.has(key)) continue;
      launched.add(key);
      const a: Attempt = { goalId: t.goalId, taskId: t.spec.id, agentId: t.workerId!, attempt: t.attempt };
      queued.push({ type: "ExecutionFinished", ...a, outcome: outcome(a) });
    }
  };

  const finishOne = (index: number) => {
    const [f] = queued.splice(index, 1);
    executions.push({ goalId: f!.goalId, taskId: f!.taskId, agentId: f!.agentId, attempt: f!.attempt });
    decide(hosts.worker, f!);
    launch(hosts.worker);
  };

  const next = options.seed === undefined ? null : random(options.seed);
  let turn = 0;
  const maxSteps = options.maxSteps ?? 100_000;
  for (let step = 0; ; step++) {
    if (step > maxSteps) throw new Error(`the run did not settle in ${maxSteps} steps`);
    const ready = roles.filter((r) => hosts[r].cursor < log.length);
    const canFinish = options.deferExecutions && queued.length > 0;
    if (ready.length === 0 && !canFinish) {
      const more = options.onIdle?.(log) ?? [];
      if (more.length === 0) break;
      log.push(...more);
      continue;
    }
    const choices = canFinish ? [...ready, "executor" as const] : ready;
    const pick = next ? choices[Math.floor(next() * choices.length)]! : choices[turn++ % choices.length]!;
    if (pick === "executor") {
      finishOne(next ? Math.floor(next() * queued.length) : 0);
      continue;
    }
    const host = hosts[pick];
    const input = log[host.cursor++]!;
    if (!DECIDERS[pick].reads.has(input.type)) continue;
    decide(host, input);
    if (pick === "worker") {
      launch(host);
      if (!options.deferExecutions) while (queued.length > 0) finishOne(0);
    }
  }
  return { log, hosts, executions };
}

/** The payloads of one type in the log, with their log index. */
export function entries<T extends MessageTypeName>(
  log: readonly PolityEvent[],
  type: T,
): { index: number; value: MessageMap[T] }[] {
  const out: { index: number; value: MessageMap[T] }[] = [];
  log.forEach((e, index) => {
    if (e.type === type) out.push({ index, value: e.value as MessageMap[T] });
  });
  return out;
}
