/**
 * A goal's causal timeline, replayed from the log: every event of the goal (on every goal-keyed
 * topic, read from the one partition that holds the goal), in log order, with who did it, what
 * caused it and what it caused, and the policy decisions with the versions that made them. The
 * versions of the policies the goal consulted, defined or amended while it ran, are shown too.
 */
import type { Kafka } from "kafkajs";
import type { Codec } from "../../schemas/codec.js";
import type {
  ModelUsage,
  PlanProposed,
  PlanRequested,
  PolicyAmended,
  PolicyDefined,
  PolicyEvaluated,
} from "../../schemas/generated/types.js";
import type { ScanProgress } from "./log.js";
import { GOAL_TOPICS, inLogOrder, replay, type ReplayedEvent, type UnreadableRecord } from "./replay.js";

export interface PolicyDecision {
  category: string;
  decision: string;
  /** The deciding policy as `id@vN`. */
  decidedBy: string;
  consulted: string[];
  reasons: string[];
}

/**
 * A planning step: the request (attempt, planner and model asked, the previous attempt's problems
 * given as feedback) or the answer (planner that answered, accepted or refused, with the problems
 * found or the planner's error).
 */
export interface PlanStep {
  requestId: string;
  phase: string | null;
  attempt: number;
  /** On the request: attempts the planner gets. */
  maxAttempts: number | null;
  /** The planner asked (request: 'model') or that answered (answer: e.g. 'model/v1'). */
  planner: string;
  /** On the request: the model configuration asked (topology 'models'). */
  model: string | null;
  /** On the request: problems of the previous attempt, given to the planner. */
  feedback: string[];
  /** On the answer: whether the president accepted the plan; null on the request. */
  accepted: boolean | null;
  /** On the answer: what the president found wrong with the plan. */
  problems: string[];
  /** On the answer: why the planner produced no plan. */
  error: string | null;
  /** On the answer: tasks proposed. */
  taskCount: number | null;
}

export interface TimelineEntry {
  seq: number;
  occurredAt: string;
  topic: string;
  partition: number;
  offset: string;
  eventId: string;
  type: string;
  actor: string;
  actorTier: string;
  causationId: string | null;
  /** seq of the entry that caused this one; null when the cause is outside the goal (or none). */
  causedBy: number | null;
  /** seq of the entries this one caused. */
  caused: number[];
  summary: string;
  /** The event's fields other than the envelope, as decoded. */
  payload: Record<string, unknown>;
  /** On PolicyEvaluated: the decision. */
  policy: PolicyDecision | null;
  /** On PlanRequested and PlanProposed: the planning step. */
  plan: PlanStep | null;
  /**
   * On an event that records a model call (PlanProposed, TaskCompleted, TaskFailed): its usage,
   * with the digests of the prompt and the answer.
   */
  usage: ModelUsage | null;
  /**
   * On other events: the policy versions consulted by the evaluation made for the same cause (the
   * evaluation written with this decision), as `id@vN`.
   */
  decidedUnder: string[];
}

export interface Timeline {
  goalId: string;
  entries: TimelineEntry[];
  unreadable: UnreadableRecord[];
  /** Records read and decoded to find the goal's events. */
  scanned: number;
}

const SUMMARY_FIELDS = [
  "title",
  "taskId",
  "phase",
  "from",
  "to",
  "attempt",
  "assigneeId",
  "agentId",
  "workerId",
  "kind",
  "status",
  "outcome",
  "decision",
  "amount",
  "grantedAmount",
  "reason",
  "reasons",
  "result",
  "tasksCompleted",
  "taskCount",
  "message",
];

function short(v: unknown): string {
  const text = Array.isArray(v) ? v.join("; ") : v instanceof Date ? v.toISOString() : String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** A line of the payload's telling fields, in a fixed order. */
export function summarise(value: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const f of SUMMARY_FIELDS) {
    const v = value[f];
    if (v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0)) continue;
    if (typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)) continue;
    parts.push(`${f}=${short(v)}`);
  }
  return parts.join(" ");
}

const ref = (id: string, version: number) => `${id}@v${version}`;

/** A SHA-256 digest shortened for a line (the payload keeps it whole). */
const digest = (d: string | null) => (d ? d.slice(0, 12) : "none");

/** The planning step of a PlanRequested or PlanProposed. */
export function planStep(type: string, value: Record<string, unknown>): PlanStep | null {
  if (type === "PlanRequested") {
    const v = value as unknown as PlanRequested;
    return {
      requestId: v.requestId,
      phase: v.phase,
      attempt: v.attempt,
      maxAttempts: v.maxAttempts,
      planner: v.planner,
      model: v.model,
      feedback: v.feedback,
      accepted: null,
      problems: [],
      error: null,
      taskCount: null,
    };
  }
  if (type === "PlanProposed") {
    const v = value as unknown as PlanProposed;
    return {
      requestId: v.requestId,
      phase: v.phase,
      attempt: v.attempt,
      maxAttempts: null,
      planner: v.planner,
      model: v.usage?.model ?? null,
      feedback: [],
      accepted: v.accepted,
      problems: v.problems,
      error: v.error,
      taskCount: v.tasks.length,
    };
  }
  return null;
}

/** A model call on one line: model, tokens in/out, calls, latency and the answer's digest. */
function usageLine(u: ModelUsage): string {
  return `model=${u.model} tokens=${u.tokensIn}/${u.tokensOut} calls=${u.calls} latencyMs=${u.latencyMs} answer=${digest(u.answerDigest)}`;
}

/** The summary of a planning step, in the style of the others (field=value). */
function planSummary(plan: PlanStep, usage: ModelUsage | null): string {
  const parts = plan.phase ? [`phase=${plan.phase}`] : [];
  if (plan.accepted === null) {
    parts.push(`attempt=${plan.attempt}/${plan.maxAttempts ?? "?"}`, `planner=${plan.planner}`);
    if (plan.model) parts.push(`model=${plan.model}`);
    if (plan.feedback.length) parts.push(`feedback=${short(plan.feedback)}`);
    return parts.join(" ");
  }
  parts.push(
    `attempt=${plan.attempt}`,
    `planner=${plan.planner}`,
    `accepted=${plan.accepted}`,
    `tasks=${plan.taskCount}`,
  );
  if (plan.error) parts.push(`error=${short(plan.error)}`);
  if (plan.problems.length) parts.push(`problems=${short(plan.problems)}`);
  if (usage) parts.push(usageLine(usage));
  return parts.join(" ");
}

function withoutEnvelope(value: Record<string, unknown>): Record<string, unknown> {
  const { envelope: _envelope, ...rest } = value;
  return rest;
}

/** Builds the timeline of events already replayed (exported for tests of the shaping alone). */
export function timelineOf(
  goalId: string,
  goalEvents: ReplayedEvent[],
  policyEvents: ReplayedEvent[],
): TimelineEntry[] {
  const ordered = inLogOrder(goalEvents);
  // Policy versions the goal consulted, defined or amended between its first and last event.
  const consulted = new Set<string>();
  for (const e of ordered)
    if (e.event.type === "PolicyEvaluated")
      for (const p of (e.event.value as PolicyEvaluated).consultedPolicies) consulted.add(p.policyId);
  const first = ordered[0]?.envelope.occurredAt.getTime() ?? 0;
  const last = ordered.at(-1)?.envelope.occurredAt.getTime() ?? 0;
  const changes = policyEvents.filter((e) => {
    const v = e.event.value as PolicyDefined | PolicyAmended;
    const t = e.envelope.occurredAt.getTime();
    return consulted.has(v.policyId) && t >= first && t <= last;
  });
  const all = inLogOrder([...ordered, ...changes]);

  const seqOf = new Map<string, number>();
  all.forEach((e, i) => seqOf.set(e.envelope.eventId, i + 1));
  const evaluationsByCause = new Map<string, string[]>();
  for (const e of all) {
    if (e.event.type !== "PolicyEvaluated" || !e.envelope.causationId) continue;
    const v = e.event.value as PolicyEvaluated;
    const list = evaluationsByCause.get(e.envelope.causationId) ?? [];
    for (const p of v.consultedPolicies)
      if (!list.includes(ref(p.policyId, p.version))) list.push(ref(p.policyId, p.version));
    evaluationsByCause.set(e.envelope.causationId, list);
  }
  const entries: TimelineEntry[] = all.map((e, i) => {
    const value = e.event.value as unknown as Record<string, unknown>;
    let policy: PolicyDecision | null = null;
    if (e.event.type === "PolicyEvaluated") {
      const v = e.event.value as PolicyEvaluated;
      policy = {
        category: v.category,
        decision: v.decision,
        decidedBy: ref(v.policyId, v.policyVersion),
        consulted: v.consultedPolicies.map((p) => ref(p.policyId, p.version)),
        reasons: v.reasons,
      };
    }
    let summary = summarise(value);
    if (e.event.type === "PolicyDefined" || e.event.type === "PolicyAmended") {
      const v = e.event.value as PolicyDefined | PolicyAmended;
      summary = `${ref(v.policyId, v.version)} ${v.category} rules=${short(v.rules)}`;
    }
    const plan = planStep(e.event.type, value);
    // A plain copy: the decoded record is an instance of the schema's record type.
    const recorded = value.usage as ModelUsage | null | undefined;
    const usage = recorded ? { ...recorded } : null;
    if (plan) summary = planSummary(plan, usage);
    else if (usage) summary = `${summary} ${usageLine(usage)}`.trim();
    return {
      seq: i + 1,
      occurredAt: e.envelope.occurredAt.toISOString(),
      topic: e.topic,
      partition: e.partition,
      offset: e.offset,
      eventId: e.envelope.eventId,
      type: e.event.type,
      actor: e.envelope.actor.id,
      actorTier: e.envelope.actor.tier,
      causationId: e.envelope.causationId ?? null,
      causedBy: e.envelope.causationId ? (seqOf.get(e.envelope.causationId) ?? null) : null,
      caused: [],
      summary,
      payload: withoutEnvelope(value),
      policy,
      plan,
      usage,
      decidedUnder:
        e.event.type === "PolicyEvaluated" || !e.envelope.causationId
          ? []
          : (evaluationsByCause.get(e.envelope.causationId) ?? []),
    };
  });
  for (const entry of entries) if (entry.causedBy !== null) entries[entry.causedBy - 1]!.caused.push(entry.seq);
  return entries;
}

export interface TimelineOptions {
  kafka: Kafka;
  codec: Codec;
  goalId: string;
  topicPrefix?: string;
  /** Start at this time (offsets-for-times) instead of the start of the log. */
  from?: Date;
  /** Only events of this tenant (a goal id is unique per tenant, not across tenants). */
  tenantId?: string;
  onProgress?: (p: ScanProgress & { phase: string }) => void;
}

export async function goalTimeline(options: TimelineOptions): Promise<Timeline> {
  const { kafka, codec, goalId } = options;
  const common = { kafka, codec, ...(options.topicPrefix ? { topicPrefix: options.topicPrefix } : {}) };
  // The goal's partitions and the policy versions are read at once, each in its own group.
  const [goal, policies] = await Promise.all([
    replay({
      ...common,
      topics: GOAL_TOPICS,
      key: goalId,
      ...(options.from ? { from: options.from } : {}),
      filter: (e) =>
        e.envelope.correlationId === goalId &&
        (options.tenantId === undefined || e.envelope.tenantId === options.tenantId),
      ...(options.onProgress ? { onProgress: (p: ScanProgress) => options.onProgress!({ ...p, phase: "goal" }) } : {}),
    }),
    replay({
      ...common,
      topics: ["polity.policies.events"],
      filter: (e) => e.event.type === "PolicyDefined" || e.event.type === "PolicyAmended",
      ...(options.onProgress
        ? { onProgress: (p: ScanProgress) => options.onProgress!({ ...p, phase: "policies" }) }
        : {}),
    }),
  ]);
  return {
    goalId,
    entries: timelineOf(goalId, goal.events, policies.events),
    unreadable: [...goal.unreadable, ...policies.unreadable],
    scanned: goal.decoded + policies.decoded,
  };
}

/** The timeline as a fixed-width table, one line per event, policy decisions on their own lines. */
export function timelineTable(timeline: Timeline): string {
  const rows = timeline.entries.map((e) => [
    String(e.seq),
    e.occurredAt.replace("T", " ").replace("Z", ""),
    `${e.actor} (${e.actorTier})`,
    e.type,
    e.causedBy === null ? "" : `#${e.causedBy}`,
    e.caused.length ? e.caused.map((s) => `#${s}`).join(",") : "",
    e.summary,
  ]);
  const head = ["#", "when (UTC)", "who", "event", "cause", "caused", "details"];
  const widths = head.map((h, i) => Math.min(i === 6 ? 200 : 48, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const out = [`Timeline of goal ${timeline.goalId}: ${timeline.entries.length} event(s)`, line(head)];
  timeline.entries.forEach((e, i) => {
    out.push(line(rows[i]!));
    const pad = " ".repeat(widths[0]! + 2);
    if (e.policy)
      out.push(
        `${pad}policy ${e.policy.category} ${e.policy.decision} by ${e.policy.decidedBy}; consulted ${e.policy.consulted.join(", ") || "none"}`,
        ...e.policy.reasons.map((r) => `${pad}  reason: ${r}`),
      );
    else if (e.decidedUnder.length) out.push(`${pad}decided under ${e.decidedUnder.join(", ")}`);
    if (e.plan?.accepted === null)
      out.push(
        `${pad}plan request ${e.plan.requestId}: attempt ${e.plan.attempt} of ${e.plan.maxAttempts ?? "?"} to ${e.plan.planner}${e.plan.model ? ` (model ${e.plan.model})` : ""}`,
        ...e.plan.feedback.map((f) => `${pad}  feedback: ${f}`),
      );
    else if (e.plan)
      out.push(
        `${pad}plan ${e.plan.accepted ? "accepted" : "refused"} (${e.plan.requestId}) from ${e.plan.planner}: ${e.plan.taskCount} task(s)` +
          (e.usage ? `; prompt ${digest(e.usage.promptDigest)}, answer ${digest(e.usage.answerDigest)}` : ""),
        ...(e.plan.error ? [`${pad}  error: ${e.plan.error}`] : []),
        ...e.plan.problems.map((p) => `${pad}  problem: ${p}`),
      );
  });
  for (const u of timeline.unreadable)
    out.push(`unreadable record ${u.topic}[${u.partition}]@${u.offset}: ${u.reason}`);
  return out.join("\n");
}

/** The timeline as JSON lines: one object per event. */
export function timelineJsonLines(timeline: Timeline): string {
  return timeline.entries.map((e) => JSON.stringify({ goalId: timeline.goalId, ...e })).join("\n");
}
