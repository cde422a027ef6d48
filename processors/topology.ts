/**
 * Topologies from configuration: one JSON file names each hierarchy's domains, how many mayors a
 * domain has (aamas), and its workers by specialization with their count, capacity and executor.
 * `agentsOf` turns it into the AgentRegistered facts every host announces at start.
 */
import fs from "node:fs";
import path from "node:path";
import type { AgentRegistered, ExecutorKind, Tier, Topology } from "../schemas/generated/types.js";
import type { Payload } from "../schemas/generated/types.js";
import { DEFAULT_RETRY_LIMITS, type RetryLimits } from "./domain/limits.js";
import type { AutoscaleConfig } from "./domain/scaler.js";
import { DEFAULT_PLANNING, PLANNER_KINDS, type PlannerKind, type PlanningConfig } from "./domain/planner.js";
import {
  DEFAULT_DEADLINES,
  deadlineProblems,
  timeoutProblem,
  type DeadlineSettings,
  type TimeLimits,
} from "./domain/time-limits.js";
import { isSchema } from "./ai/json-answer.js";
import type { ModelWorkerConfig } from "./ai/model-executor.js";
import type { ModelPlannerOptions } from "./ai/model-planner.js";
import { modelConfigProblems, type ModelConfig } from "./ai/models.js";

/** The topology run when POLITY_TOPOLOGY_FILE is not set (defined with the other settings in lib/config.ts). */
export { DEFAULT_TOPOLOGY_FILE } from "../lib/config.js";

export interface WorkerGroup {
  count: number;
  capacity: number;
  /** simulated (default), shell or external. */
  executor?: ExecutorKind;
  /** For the shell executor: the command line (run by /bin/sh), its work dir and time limit. */
  shell?: { command: string; cwd?: string; timeoutMs?: number };
  /** For the model executor: the model (a name in `models`), the worker's role, the answer's schema, limits. */
  model?: ModelWorkerConfig;
  /** Autoscaling of this group (domain/scaler.ts); the topology's `autoscale` when absent; off when neither. */
  autoscale?: AutoscaleConfig;
  /**
   * How long one attempt may run on a worker of this group, in ms, before its dispatcher times it
   * out (TaskTimedOut, then a retry or an escalation; domain/time-limits.ts), whatever the executor,
   * external agents included. A task's own `timeoutMs` wins; no limit when neither is set.
   */
  timeoutMs?: number;
}

export interface DomainConfig {
  /** aamas only: mayors in this domain; workers are spread over them round-robin. Default 1. */
  mayors?: number;
  workers: Record<string, WorkerGroup>;
}

export interface SimulatedConfig {
  seed: number;
  /** Mean duration of a task; a task's own estimatedEffortMs wins. 0 runs tasks instantly. */
  meanDurationMs: number;
  /** Probability (0-1) that an attempt fails. */
  failureRate: number;
}

export interface TopologyConfig {
  simulated: SimulatedConfig;
  /** Heartbeat interval every agent registers with, in ms (5000 when absent); the health monitor ticks as often. */
  heartbeatIntervalMs?: number;
  topologies: Partial<
    Record<
      Topology,
      {
        domains: Record<string, DomainConfig>;
        retries?: Partial<RetryLimits>;
        /** Autoscaling of every worker group of the topology (a group's own `autoscale` wins); off when absent. */
        autoscale?: AutoscaleConfig;
        /** How goals submitted without tasks are planned; the template planner when absent. */
        planner?: PlannerSettings;
        /**
         * Goal deadlines (domain/time-limits.ts): the part of the time to a deadline after which a
         * running goal is at risk (0.8) and what a missed one does (`fail`, or `warn`); a goal's
         * constraints `deadlineAtRisk` and `onDeadlineMiss` override them.
         */
        deadlines?: Partial<DeadlineSettings>;
      }
    >
  >;
  /** How often the autoscaler samples the groups' load, in ms. Default 1000. */
  autoscaleIntervalMs?: number;
  /** Language models by name, for the model planner and model workers (processors/ai/models.ts). */
  models?: Record<string, ModelConfig>;
}

/** A topology's `planner`: which planner plans goals without tasks, and the model planner's limits. */
export interface PlannerSettings extends ModelPlannerOptions {
  /** `template` (default) or `model`; a goal's `planner` constraint chooses for itself. */
  kind?: PlannerKind;
  /** The model the model planner asks (a name in `models`); the first configured when absent. */
  model?: string;
  /** Plans asked before a goal is given up (an invalid plan is asked again with its problems). Default 3. */
  maxAttempts?: number;
}

/** How a topology plans (its `planner`, with the configured models), as the president's decider sees it. */
export function planningConfigOf(config: TopologyConfig, topology: Topology): PlanningConfig {
  const p = config.topologies[topology]?.planner;
  const models = Object.keys(config.models ?? {});
  return {
    planner: p?.kind ?? DEFAULT_PLANNING.planner,
    model: p?.model ?? models[0] ?? null,
    maxAttempts: p?.maxAttempts ?? DEFAULT_PLANNING.maxAttempts,
    models,
  };
}

function plannerProblems(where: string, raw: unknown, models: string[]): string[] {
  if (raw === undefined) return [];
  const p = raw as Partial<PlannerSettings> | null;
  if (!p || typeof p !== "object") return [`${where}: give { kind: template | model, model, maxAttempts }`];
  const problems: string[] = [];
  if (p.kind !== undefined && !(PLANNER_KINDS as readonly unknown[]).includes(p.kind))
    problems.push(`${where}.kind must be one of ${PLANNER_KINDS.join(", ")}, got ${JSON.stringify(p.kind)}`);
  if (p.model !== undefined && !models.includes(p.model))
    problems.push(`${where}.model "${String(p.model)}" is not in models (configured: ${models.join(", ") || "none"})`);
  if (p.kind === "model" && p.model === undefined && models.length === 0)
    problems.push(`${where}.kind is "model" but no model is configured: add one under "models"`);
  for (const key of ["maxAttempts", "maxTasks", "maxTokens", "timeoutMs"] as const)
    if (p[key] !== undefined && (!Number.isInteger(p[key]) || p[key] < 1))
      problems.push(`${where}.${key} must be a whole number >= 1`);
  return problems;
}

function modelWorkerProblems(where: string, raw: unknown, models: string[]): string[] {
  const m = raw as Partial<ModelWorkerConfig> | null | undefined;
  if (!m || typeof m !== "object")
    return [`${where}.model is required for the model executor: give { model: <name in models> }`];
  const problems: string[] = [];
  if (typeof m.model !== "string" || !models.includes(m.model))
    problems.push(`${where}.model.model must name a configured model (configured: ${models.join(", ") || "none"})`);
  if (m.systemPrompt !== undefined && typeof m.systemPrompt !== "string")
    problems.push(`${where}.model.systemPrompt must be text`);
  if (m.outputSchema !== undefined && !isSchema(m.outputSchema))
    problems.push(`${where}.model.outputSchema must be a JSON schema object`);
  for (const key of ["maxTokens", "timeoutMs"] as const)
    if (m[key] !== undefined && (!Number.isInteger(m[key]) || m[key] < 1))
      problems.push(`${where}.model.${key} must be a whole number >= 1`);
  return problems;
}

/** A worker group's autoscaling (the group's, else its topology's), or null when it is off. */
export function autoscaleOf(
  config: TopologyConfig,
  topology: Topology,
  domain: string | null,
  specialization: string | null,
): AutoscaleConfig | null {
  const topo = config.topologies[topology];
  const group = domain !== null && specialization !== null ? topo?.domains[domain]?.workers[specialization] : undefined;
  return group?.autoscale ?? topo?.autoscale ?? null;
}

/** Whether any group of the configuration autoscales. */
export function autoscales(config: TopologyConfig): boolean {
  return Object.values(config.topologies).some(
    (t) =>
      !!t?.autoscale ||
      Object.values(t?.domains ?? {}).some((d) => Object.values(d.workers).some((w) => !!w.autoscale)),
  );
}

function autoscaleProblems(where: string, a: unknown): string[] {
  if (a === undefined) return [];
  const c = a as Partial<AutoscaleConfig> | null;
  if (!c || typeof c !== "object") return [`${where}: give { targetLoad, min, max, cooldownMs }`];
  const problems: string[] = [];
  if (typeof c.targetLoad !== "number" || !(c.targetLoad > 0))
    problems.push(`${where}.targetLoad must be a number > 0`);
  if (!Number.isInteger(c.min) || c.min! < 0) problems.push(`${where}.min must be a whole number >= 0`);
  if (!Number.isInteger(c.max) || c.max! < 1 || (Number.isInteger(c.min) && c.max! < c.min!))
    problems.push(`${where}.max must be a whole number >= 1 and >= min`);
  if (!Number.isInteger(c.cooldownMs) || c.cooldownMs! < 0)
    problems.push(`${where}.cooldownMs must be a whole number >= 0`);
  return problems;
}

/**
 * A topology's retry limits (see domain/limits.ts): `retries.worker` attempts per delivery at the
 * worker-level dispatcher, `retries.domain` deliveries within the domain; 5 and 3 when not configured.
 */
export function retryLimitsOf(config: TopologyConfig, topology: Topology): RetryLimits {
  return { ...DEFAULT_RETRY_LIMITS, ...config.topologies[topology]?.retries };
}

/** A topology's time limits (domain/time-limits.ts): its worker groups' `timeoutMs` and its `deadlines`. */
export function timeLimitsOf(config: TopologyConfig, topology: Topology): TimeLimits {
  const topo = config.topologies[topology];
  return {
    groupTimeoutMs: (domain, specialization) =>
      (domain !== null && specialization !== null
        ? topo?.domains[domain]?.workers[specialization]?.timeoutMs
        : undefined) ?? null,
    deadlines: { ...DEFAULT_DEADLINES, ...topo?.deadlines },
  };
}

export interface AgentSpec extends Payload<"AgentRegistered"> {
  shell?: WorkerGroup["shell"];
  model?: WorkerGroup["model"];
}

/** The AgentRegistered payload of a configured agent: its spec without the executor settings, which stay in this process. */
export function registrationOf(spec: AgentSpec): Payload<"AgentRegistered"> {
  const { shell: _shell, model: _model, ...payload } = spec;
  return payload;
}

const TOP: Record<Topology, Tier> = { aamas: "PRESIDENT", dgm: "MASTER" };
const DOMAIN_TIER: Record<Topology, Tier> = { aamas: "GOVERNOR", dgm: "SUB_MASTER" };
const HEARTBEAT_MS = 5_000;

/** Reads and checks a topology file; `npm start` passes loadConfig().topologyFile (POLITY_TOPOLOGY_FILE). */
export function loadTopology(file: string): TopologyConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`cannot read the topology file ${file} (POLITY_TOPOLOGY_FILE): ${(e as Error).message}`, {
      cause: e,
    });
  }
  const problems = topologyProblems(raw);
  if (problems.length > 0) throw new Error(`topology file ${file} is invalid:\n  - ${problems.join("\n  - ")}`);
  const config = raw as TopologyConfig;
  // A model file's relative path is taken from the topology file's folder.
  for (const m of Object.values(config.models ?? {}))
    if (m.backend === "embedded") m.file = path.resolve(path.dirname(file), m.file);
  return config;
}

/** What is wrong with a topology document, field by field. */
export function topologyProblems(raw: unknown): string[] {
  const problems: string[] = [];
  const doc = raw as Partial<TopologyConfig> | null;
  if (!doc || typeof doc !== "object") return ["the file must hold a JSON object"];
  const sim = doc.simulated;
  if (!sim || typeof sim.seed !== "number" || typeof sim.meanDurationMs !== "number" || sim.meanDurationMs < 0)
    problems.push("simulated: give { seed: number, meanDurationMs: number >= 0, failureRate: 0..1 }");
  else if (typeof sim.failureRate !== "number" || sim.failureRate < 0 || sim.failureRate > 1)
    problems.push("simulated.failureRate must be a number from 0 to 1");
  if (
    doc.heartbeatIntervalMs !== undefined &&
    (!Number.isInteger(doc.heartbeatIntervalMs) || doc.heartbeatIntervalMs < 10)
  )
    problems.push("heartbeatIntervalMs must be a whole number of milliseconds >= 10");
  const modelsDoc = doc.models ?? {};
  if (typeof modelsDoc !== "object" || modelsDoc === null || Array.isArray(modelsDoc))
    problems.push("models: give an object of model name -> { backend, ... }");
  else for (const [name, m] of Object.entries(modelsDoc)) problems.push(...modelConfigProblems(name, m));
  const models = Object.keys(modelsDoc);
  const tops = doc.topologies ?? {};
  if (Object.keys(tops).length === 0) problems.push('topologies: configure "aamas", "dgm" or both');
  for (const [name, topo] of Object.entries(tops)) {
    if (name !== "aamas" && name !== "dgm") problems.push(`topologies.${name}: unknown topology; use aamas or dgm`);
    const domains = topo?.domains ?? {};
    const retries = topo?.retries;
    if (retries !== undefined && (typeof retries !== "object" || retries === null))
      problems.push(`topologies.${name}.retries: give { worker: attempts >= 1, domain: deliveries >= 1 }`);
    else
      for (const level of ["worker", "domain"] as const) {
        const n = retries?.[level];
        if (n !== undefined && (!Number.isInteger(n) || n < 1))
          problems.push(`topologies.${name}.retries.${level} must be a whole number >= 1`);
      }
    problems.push(...autoscaleProblems(`topologies.${name}.autoscale`, topo?.autoscale));
    problems.push(...plannerProblems(`topologies.${name}.planner`, topo?.planner, models));
    problems.push(...deadlineProblems(`topologies.${name}.deadlines`, topo?.deadlines));
    if (Object.keys(domains).length === 0) problems.push(`topologies.${name}.domains: configure at least one domain`);
    for (const [domain, d] of Object.entries(domains)) {
      const where = `topologies.${name}.domains.${domain}`;
      if (!/^[a-z0-9][a-z0-9-]*$/.test(domain)) problems.push(`${where}: domain names are lower-case words and dashes`);
      if (d.mayors !== undefined && (!Number.isInteger(d.mayors) || d.mayors < 1))
        problems.push(`${where}.mayors must be a whole number >= 1`);
      if (name === "dgm" && d.mayors !== undefined)
        problems.push(`${where}.mayors: dgm has no mayors; remove the field`);
      const workers = Object.entries(d.workers ?? {});
      if (workers.length === 0) problems.push(`${where}.workers: configure at least one specialization`);
      for (const [spec, w] of workers) {
        if (!Number.isInteger(w.count) || w.count < 1)
          problems.push(`${where}.workers.${spec}.count must be a whole number >= 1`);
        if (!Number.isInteger(w.capacity) || w.capacity < 1)
          problems.push(`${where}.workers.${spec}.capacity must be a whole number >= 1`);
        if (w.executor && !["simulated", "shell", "external", "model"].includes(w.executor))
          problems.push(`${where}.workers.${spec}.executor must be simulated, shell, external or model`);
        if (w.executor === "model") problems.push(...modelWorkerProblems(`${where}.workers.${spec}`, w.model, models));
        if (w.executor === "shell" && !w.shell?.command)
          problems.push(`${where}.workers.${spec}.shell.command is required for the shell executor`);
        problems.push(...autoscaleProblems(`${where}.workers.${spec}.autoscale`, w.autoscale));
        const timeout =
          w.timeoutMs === undefined ? null : timeoutProblem(`${where}.workers.${spec}.timeoutMs`, w.timeoutMs);
        if (timeout) problems.push(timeout);
      }
    }
  }
  return problems;
}

/** Every agent of every configured topology, superiors before subordinates. */
export function agentsOf(config: TopologyConfig): AgentSpec[] {
  const out: AgentSpec[] = [];
  for (const [topologyName, topo] of Object.entries(config.topologies)) {
    const topology = topologyName as Topology;
    const topId = topology === "aamas" ? "aamas-president" : "dgm-master";
    out.push(agent(topId, topology === "aamas" ? "President" : "Master", TOP[topology], topology, null, null, null, 1));
    for (const [domain, d] of Object.entries(topo!.domains)) {
      const govId = `${topology}-${topology === "aamas" ? "governor" : "submaster"}-${domain}`;
      out.push(
        agent(
          govId,
          `${topology === "aamas" ? "Governor" : "Sub-master"} of ${domain}`,
          DOMAIN_TIER[topology],
          topology,
          domain,
          null,
          topId,
          1,
        ),
      );
      const mayorIds: string[] = [];
      if (topology === "aamas") {
        for (let i = 1; i <= (d.mayors ?? 1); i++) {
          const id = `aamas-mayor-${domain}-${i}`;
          mayorIds.push(id);
          out.push(agent(id, `Mayor ${i} of ${domain}`, "MAYOR", topology, domain, null, govId, 1));
        }
      }
      let next = 0;
      for (const [spec, w] of Object.entries(d.workers)) {
        for (let i = 1; i <= w.count; i++) {
          const superior = mayorIds.length > 0 ? mayorIds[next++ % mayorIds.length]! : govId;
          const a = agent(
            `${topology}-worker-${domain}-${spec}-${i}`,
            `${spec} worker ${i} of ${domain}`,
            "WORKER",
            topology,
            domain,
            spec,
            superior,
            w.capacity,
            w.executor ?? "simulated",
          );
          if (w.shell) a.shell = w.shell;
          if (w.model) a.model = w.model;
          out.push(a);
        }
      }
    }
  }
  if (config.heartbeatIntervalMs !== undefined) for (const a of out) a.heartbeatIntervalMs = config.heartbeatIntervalMs;
  return out;
}

function agent(
  agentId: string,
  name: string,
  tier: Tier,
  topology: Topology,
  domain: string | null,
  specialization: string | null,
  superiorId: string | null,
  capacity: number,
  executor: ExecutorKind | null = null,
): AgentSpec {
  return {
    agentId,
    name,
    tier,
    topology,
    domain,
    specialization,
    superiorId,
    capacity,
    executor,
    labels: {},
    heartbeatIntervalMs: HEARTBEAT_MS,
    commandId: null,
  };
}

export type { AgentRegistered };
