/**
 * The worker API under /api/v1 (the DGM design's worker endpoints): how an agent that speaks only
 * HTTP does what an external agent on Kafka does (processors/examples/external-agent.ts): receive its
 * assignments, accept them, report progress, ask its superior for context, update its capabilities
 * and heartbeat. Its result goes through the existing POST /tasks/{goalId}/{taskId}/result.
 *
 * Every call speaks for the agent of its bearer token (role agent, `agent` claim) and only for it: an
 * attempt it does not hold is refused with 403 before anything is written. Work arrives by pull, so
 * an agent behind NAT needs no inbound port: a long poll (GET /tasks/next) or a server-sent event
 * stream (GET /agents/me/tasks/stream). Both start from the read model (assignments open when the
 * agent connects) and continue with the gateway's live feed (gateway/live.ts, with its recent
 * history, so an assignment written between the two reads is not missed), so nothing is lost across
 * reconnects: what the agent has not accepted is offered again.
 *
 * The writes are the agent's own events (producers/commands.ts), written as the agent: TaskAccepted
 * and TaskStarted, TaskProgressed, ContextRequested, AgentHeartbeat, and AgentRegistered for a
 * capability update. The read model lags the log by a moment, so a check that needs the agent's own
 * recent write (accept, then progress) waits for the projection, bounded, before it refuses.
 */
import express, { type Request, type Response } from "express";
import {
  acceptAndStartTask,
  agentHeartbeat,
  contextRequestId,
  reportTaskProgress,
  requestTaskContext,
  reregisterAgent,
  type AgentSelf,
  type AttemptRef,
} from "../producers/commands.js";
import type { EventWriter } from "../producers/writer.js";
import type { AgentDoc, TaskDoc } from "../projections/mongo/state-store.js";
import { ATTEMPT_OVER, TASK_RANK } from "../processors/domain/kernel/status.js";
import { concerns, SYSTEM_TENANT } from "../processors/domain/kernel/tenancy.js";
import type { AgentStatus, TaskAssigned, TaskSpec } from "../schemas/generated/types.js";
import { require, type Principal } from "./auth.js";
import { forbidden, invalid, notFound } from "./errors.js";
import type { LiveEvent, LiveFeed } from "./live.js";
import { MAX_WAIT_SECONDS } from "./contract/worker.js";
import { parseAccept, parseCapabilities, parseContextRequest, parseHeartbeat, parseProgress } from "./inputs.js";
import type { ReadSide } from "./read-side.js";
import { agentView, taskView } from "./rest.js";
import { sendError } from "./server.js";

export interface WorkerApiDeps {
  read: ReadSide;
  writer: EventWriter;
  live: LiveFeed;
  /** How long a check waits for the read model to show the agent's own recent writes. Default 5 s. */
  projectionWaitMs?: number;
  /** Interval of the SSE stream's keep-alive comments. Default 15 s. */
  keepAliveMs?: number;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const ID_HINT = "must be 1-128 letters, digits, '.', '_', ':' or '-'";

/** An assignment as the worker API shows it: enough to do the work without another lookup. */
export interface Assignment {
  goalId: string;
  taskId: string;
  attempt: number;
  assignedBy: string | null;
  priority: number;
  timeoutMs: number | null;
  task: TaskSpec;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const attemptKey = (a: { goalId: string; taskId: string; attempt: number }) => `${a.goalId}/${a.taskId}#${a.attempt}`;

// --- request parsing: each field named as the client sent it ------------------------------------------

/**
 * The JSON object a call was sent; its fields are the parsers' business (gateway/inputs.ts, with the
 * worker API's schemas in gateway/contract/worker.ts). `optional`: a missing body is an empty one.
 */
function body(req: Request, optional = false): Record<string, unknown> {
  const b: unknown = req.body;
  if (b === undefined || (optional && b === null)) {
    if (optional) return {};
    throw invalid("body", "send a JSON object with Content-Type: application/json (the body is missing)");
  }
  if (b === null || typeof b !== "object" || Array.isArray(b)) throw invalid("body", "must be a JSON object");
  return b as Record<string, unknown>;
}

/** ?wait=<seconds>: 0 to MAX_WAIT_SECONDS, default `fallback`. */
function waitSeconds(req: Request, fallback: number): number {
  const v = req.query.wait;
  if (v === undefined || v === "") return fallback;
  if (typeof v !== "string" || !/^\d+(\.\d+)?$/.test(v) || Number(v) > MAX_WAIT_SECONDS)
    throw invalid("wait", `must be a number of seconds from 0 to ${MAX_WAIT_SECONDS}, got ${JSON.stringify(v)}`);
  return Number(v);
}

// --- the agent's view of its work ------------------------------------------------------------------------

/** The agent of the bearer token; refused for any other kind of token. */
function agentOf(req: Request): { p: Principal; agentId: string; self: AgentSelf } {
  const p = require(req.principal ?? null, "report");
  if (p.role !== "agent" || !p.agentId)
    throw forbidden(
      "the worker API is for agent tokens (role agent, with an agent claim): mint one with `npm run token -- --role agent --agent <id>`",
    );
  return { p, agentId: p.agentId, self: { tenantId: p.tenantId, agentId: p.agentId } };
}

function isAssignmentTo(e: LiveEvent, agentId: string, tenantId: string): boolean {
  if (e.event.type !== "TaskAssigned") return false;
  const v = e.event.value;
  return v.assigneeTier === "WORKER" && v.assigneeId === agentId && v.envelope.tenantId === tenantId;
}

function fromEvent(v: TaskAssigned): Assignment {
  return {
    goalId: v.goalId,
    taskId: v.taskId,
    attempt: v.attempt,
    assignedBy: v.assignedBy,
    priority: v.priority,
    timeoutMs: v.timeoutMs,
    task: v.task,
  };
}

export class WorkerDesk {
  private readonly waitMs: number;
  /** Attempts this gateway accepted lately: a retry before the read model shows it writes nothing. */
  private readonly accepted = new Map<string, number>();

  constructor(private readonly deps: WorkerApiDeps) {
    this.waitMs = deps.projectionWaitMs ?? 5_000;
  }

  /**
   * The task once the read model shows `ready` for it (or the wait runs out); null when it does not
   * exist for the agent's tenant.
   */
  private async taskWhen(p: Principal, ref: AttemptRef, ready: (t: TaskDoc) => boolean): Promise<TaskDoc | null> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const t = await this.deps.read.task(p.tenantId, ref.goalId, ref.taskId);
      if ((t && ready(t)) || Date.now() >= deadline) return t;
      await sleep(100);
    }
  }

  /**
   * The agent's attempt, checked: it exists (404), it is the agent's (403), it is the current one
   * and not over (400 on `attempt`). `needs` waits for the agent's own write to show (accepted).
   */
  async heldAttempt(p: Principal, agentId: string, ref: AttemptRef, needs: "assigned" | "accepted"): Promise<TaskDoc> {
    const rank = TASK_RANK[needs === "assigned" ? "ASSIGNED" : "ACCEPTED"];
    const task = await this.taskWhen(
      p,
      ref,
      (t) =>
        t.attempt > ref.attempt ||
        ATTEMPT_OVER.has(t.status) ||
        (t.attempt === ref.attempt &&
          !!t.assignees.WORKER &&
          (t.assignees.WORKER !== agentId || TASK_RANK[t.status] >= rank)),
    );
    if (!task) throw notFound(`task "${ref.taskId}" of goal "${ref.goalId}"`);
    if (task.assignees.WORKER !== agentId)
      throw forbidden(`task "${ref.taskId}" is not assigned to agent ${agentId}; an agent acts only on its own tasks`);
    if (task.attempt !== ref.attempt)
      throw invalid("attempt", `the current attempt of "${ref.taskId}" is ${task.attempt}, not ${ref.attempt}`);
    if (ATTEMPT_OVER.has(task.status))
      throw invalid("attempt", `attempt ${ref.attempt} of "${ref.taskId}" is over: the task is ${task.status}`);
    return task;
  }

  /** Whether an assignment read from the log is still open for the agent, by the read model. */
  private async stillOpen(p: Principal, a: Assignment): Promise<boolean> {
    if (this.accepted.has(attemptKey(a))) return false;
    const t = await this.deps.read.task(p.tenantId, a.goalId, a.taskId);
    if (!t) return true; // not projected yet
    if (t.attempt !== a.attempt) return t.attempt < a.attempt;
    if (t.assignees.WORKER && t.assignees.WORKER !== p.agentId) return false;
    return TASK_RANK[t.status] <= TASK_RANK.ASSIGNED;
  }

  /**
   * The agent's open assignments by the read model (assigned to it, not accepted yet), with their
   * task specs from the goal's logged TaskAssigned (the read model keeps no task inputs).
   */
  async openAssignments(p: Principal, agentId: string): Promise<Assignment[]> {
    const { read } = this.deps;
    const me = await read.agent(agentId);
    const out: Assignment[] = [];
    for (const key of me?.currentTasks ?? []) {
      const [goalId, taskId] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
      const t = await read.task(p.tenantId, goalId, taskId);
      if (!t || t.status !== "ASSIGNED" || t.assignees.WORKER !== agentId) continue;
      if (this.accepted.has(attemptKey(t))) continue;
      out.push(await this.assignmentOf(p, t, agentId));
    }
    return out.sort((a, b) => b.priority - a.priority || a.goalId.localeCompare(b.goalId));
  }

  private async assignmentOf(p: Principal, t: TaskDoc, agentId: string): Promise<Assignment> {
    const trail = await this.deps.read.eventTrail(p.tenantId, t.goalId, 10_000);
    const logged = trail
      .filter((e) => e.type === "TaskAssigned")
      .map((e) => e.payload as Omit<TaskAssigned, "envelope">)
      .find((v) => v.taskId === t.taskId && v.attempt === t.attempt && v.assigneeId === agentId);
    if (logged) return fromEvent(logged as TaskAssigned);
    return {
      goalId: t.goalId,
      taskId: t.taskId,
      attempt: t.attempt,
      assignedBy: t.assignees.MAYOR ?? t.assignees.SUB_MASTER ?? null,
      priority: t.priority,
      timeoutMs: null,
      task: {
        id: t.taskId,
        title: t.title,
        description: t.description,
        domain: t.domain,
        specialization: t.specialization,
        phase: t.phase,
        dependsOn: t.dependsOn ?? [],
        estimatedEffortMs: null,
        priority: t.priority,
        inputs: {},
        timeoutMs: null,
      },
    };
  }

  /**
   * Calls `each` with every open assignment of the agent: those open now, then each new one from
   * the live feed, until `signal` aborts or `each` returns true. Each attempt is offered once.
   */
  async watch(p: Principal, agentId: string, signal: AbortSignal, each: (a: Assignment) => boolean | void) {
    // Subscribe (with the recent history) before reading the read model: nothing falls between.
    const sub = this.deps.live.subscribe((e) => isAssignmentTo(e, agentId, p.tenantId), undefined, { replay: true });
    const stop = () => void sub.return();
    signal.addEventListener("abort", stop, { once: true });
    const offered = new Set<string>();
    const offer = (a: Assignment) => {
      if (offered.has(attemptKey(a))) return false;
      offered.add(attemptKey(a));
      return each(a) === true;
    };
    try {
      for (const a of await this.openAssignments(p, agentId)) if (signal.aborted || offer(a)) return;
      for await (const e of sub) {
        if (signal.aborted) return;
        const a = fromEvent(e.event.value as TaskAssigned);
        if (!offered.has(attemptKey(a)) && (await this.stillOpen(p, a)) && offer(a)) return;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      stop();
    }
  }

  /** The agent's next open assignment, waiting up to `waitMs` for one; null when none came. */
  async next(p: Principal, agentId: string, waitMs: number, gone: AbortSignal): Promise<Assignment | null> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), waitMs);
    const onGone = () => abort.abort();
    gone.addEventListener("abort", onGone, { once: true });
    let found: Assignment | null = null;
    try {
      await this.watch(p, agentId, abort.signal, (a) => {
        found = a;
        return true;
      });
    } finally {
      clearTimeout(timer);
      gone.removeEventListener("abort", onGone);
    }
    return found;
  }

  async accept(p: Principal, self: AgentSelf, ref: AttemptRef) {
    const task = await this.heldAttempt(p, self.agentId, ref, "assigned");
    const key = attemptKey(ref);
    if (TASK_RANK[task.status] > TASK_RANK.ASSIGNED || this.accepted.has(key))
      return { ...ref, agentId: self.agentId, status: task.status, written: false };
    const sent = await acceptAndStartTask(this.deps.writer, self, ref);
    this.accepted.set(key, Date.now());
    // Forget acceptances the read model has long shown.
    for (const [k, at] of this.accepted) if (Date.now() - at > 10 * 60_000) this.accepted.delete(k);
    return {
      ...ref,
      agentId: self.agentId,
      status: "RUNNING",
      written: true,
      eventIds: sent.map((s) => s.envelope.eventId),
    };
  }

  async progress(p: Principal, self: AgentSelf, ref: AttemptRef, percent: number, message: string | null) {
    const task = await this.heldAttempt(p, self.agentId, ref, "accepted");
    if (task.status === "ASSIGNED")
      throw invalid(
        "attempt",
        `attempt ${ref.attempt} of "${ref.taskId}" is not accepted yet: POST /tasks/accept first`,
      );
    const sent = await reportTaskProgress(this.deps.writer, self, ref, { percent, message });
    return { ...ref, agentId: self.agentId, percent, eventId: sent.envelope.eventId };
  }

  /** The answer to a context request of the agent, from the live feed's history or the goal's log. */
  private async contextState(p: Principal, agentId: string, goalId: string, requestId: string) {
    let asked = false;
    let answer: Record<string, unknown> | null = null;
    const look = (type: string, v: Record<string, unknown>) => {
      if (v.requestId !== requestId || v.requesterId !== agentId) return;
      if (type === "ContextRequested") asked = true;
      if (type === "ContextProvided") answer ??= v;
    };
    const sub = this.deps.live.subscribe(
      (e) => e.event.type === "ContextRequested" || e.event.type === "ContextProvided",
      undefined,
      { replay: true },
    );
    sub.end();
    for await (const e of sub) look(e.event.type, e.event.value as unknown as Record<string, unknown>);
    if (!answer || !asked)
      for (const e of await this.deps.read.eventTrail(p.tenantId, goalId, 10_000))
        look(e.type, e.payload as Record<string, unknown>);
    return { asked, answer: answer as Record<string, unknown> | null };
  }

  private answerView(requestId: string, answer: Record<string, unknown> | null) {
    if (!answer) return { requestId, status: "PENDING" as const };
    const { envelope: _e, ...v } = answer;
    return { requestId, status: "ANSWERED" as const, ...v };
  }

  async requestContext(
    p: Principal,
    self: AgentSelf,
    ref: AttemptRef,
    need: string,
    keys: string[],
    waitMs: number,
    gone: AbortSignal,
  ) {
    await this.heldAttempt(p, self.agentId, ref, "assigned");
    const requestId = contextRequestId(self.agentId, ref.taskId, ref.attempt);
    // Listen before asking, so an answer that comes at once is not missed.
    const sub = this.deps.live.subscribe(
      (e) =>
        e.event.type === "ContextProvided" &&
        e.event.value.requestId === requestId &&
        e.event.value.requesterId === self.agentId,
    );
    try {
      const known = await this.contextState(p, self.agentId, ref.goalId, requestId);
      if (known.answer) return { ...this.answerView(requestId, known.answer), asked: false };
      if (!known.asked) await requestTaskContext(this.deps.writer, self, ref, need, keys);
      const timer = setTimeout(() => void sub.return(), waitMs);
      const onGone = () => void sub.return();
      gone.addEventListener("abort", onGone, { once: true });
      try {
        const first = await sub.next();
        const answer = first.done ? null : (first.value.event.value as unknown as Record<string, unknown>);
        return { ...this.answerView(requestId, answer), asked: !known.asked };
      } finally {
        clearTimeout(timer);
        gone.removeEventListener("abort", onGone);
      }
    } finally {
      await sub.return();
    }
  }

  async contextAnswer(p: Principal, agentId: string, goalId: string, requestId: string) {
    const { asked, answer } = await this.contextState(p, agentId, goalId, requestId);
    if (!asked && !answer) throw notFound(`context request "${requestId}" of agent ${agentId} in goal "${goalId}"`);
    return this.answerView(requestId, answer);
  }

  /** The agent as registered; only an external worker speaks for itself (the platform acts for the others). */
  async registeredSelf(p: Principal, agentId: string): Promise<AgentDoc> {
    const me = await this.deps.read.agent(agentId);
    if (!me?.tier || !concerns(ownerOfAgent(me), p.tenantId))
      throw notFound(`agent "${agentId}" (register it first, or declare it in the topology)`);
    if (me.executor !== "external")
      throw forbidden(
        `agent ${agentId} runs on the platform's ${me.executor ?? "own"} executor, which heartbeats and registers for it; only an external agent speaks for itself`,
      );
    if (me.status === "TERMINATED") throw forbidden(`agent ${agentId} is terminated; it may not act any more`);
    return me;
  }

  async heartbeat(
    p: Principal,
    self: AgentSelf,
    beat: { load: number | null; status: AgentStatus | null; inFlightTasks: string[] | null; sequence: number | null },
  ) {
    const me = await this.registeredSelf(p, self.agentId);
    const inFlightTasks = beat.inFlightTasks ?? [...(me.currentTasks ?? [])].sort();
    const capacity = me.capacity ?? 1;
    const load = beat.load ?? (capacity > 0 ? inFlightTasks.length / capacity : 0);
    const status = beat.status ?? (inFlightTasks.length === 0 ? "IDLE" : load >= 1 ? "OVERLOADED" : "BUSY");
    const now = new Date();
    // Without a counter of its own, the agent's heartbeats are numbered by their time (still increasing).
    const sequence = beat.sequence ?? now.getTime();
    const sent = await agentHeartbeat(this.deps.writer, self, {
      tier: me.tier!,
      status,
      load,
      capacity,
      inFlightTasks,
      sequence,
      at: now,
    });
    return {
      agentId: self.agentId,
      status,
      load,
      sequence,
      heartbeatIntervalMs: me.heartbeatIntervalMs,
      eventId: sent.envelope.eventId,
    };
  }

  async updateCapabilities(
    p: Principal,
    self: AgentSelf,
    update: {
      specialization: string | null;
      capabilities: string[] | null;
      capacity: number | null;
      labels: Record<string, string> | null;
    },
  ) {
    const me = await this.registeredSelf(p, self.agentId);
    const labels = { ...asMap(me.labels), ...(update.labels ?? {}) };
    if (update.capabilities) labels.capabilities = update.capabilities.join(",");
    const registration = {
      agentId: self.agentId,
      name: me.name ?? self.agentId,
      tier: me.tier!,
      topology: me.topology!,
      domain: me.domain,
      specialization: update.specialization ?? me.specialization,
      superiorId: me.superiorId,
      capacity: update.capacity ?? me.capacity ?? 1,
      executor: me.executor,
      labels,
      heartbeatIntervalMs: me.heartbeatIntervalMs ?? 5_000,
    };
    // Under the tenant that owns the agent (the envelope says whose it is): ownership does not move.
    const owner = ownerOfAgent(me) ?? SYSTEM_TENANT;
    const sent = await reregisterAgent(this.deps.writer, { tenantId: owner, agentId: self.agentId }, registration);
    return { ...registration, eventId: sent.envelope.eventId };
  }

  async me(p: Principal, agentId: string) {
    const me = await this.deps.read.agent(agentId);
    if (!me?.tier) throw notFound(`agent "${agentId}"`);
    const tasks: ReturnType<typeof taskView>[] = [];
    for (const key of me.currentTasks ?? []) {
      const t = await this.deps.read.task(p.tenantId, key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1));
      if (t) tasks.push(taskView(t));
    }
    return { ...agentView(me), heartbeatIntervalMs: me.heartbeatIntervalMs, lastHeartbeat: me.lastHeartbeat, tasks };
  }
}

/** The tenant owning an agent (null: platform-wide), as the read model keeps it. */
const ownerOfAgent = (a: AgentDoc): string | null => (a as { tenantId?: string | null }).tenantId ?? null;

type Entries = { name: string; value: string }[] | Record<string, string> | null | undefined;
const asMap = (v: Entries): Record<string, string> =>
  !v ? {} : Array.isArray(v) ? Object.fromEntries(v.map((e) => [e.name, e.value])) : { ...v };

// --- the router ---------------------------------------------------------------------------------------

type Handler = (req: Request, res: Response, gone: AbortSignal) => Promise<unknown>;

/** Runs a handler; a GatewayError becomes its status and JSON body; `gone` aborts when the client leaves. */
const handle =
  (h: Handler) =>
  (req: Request, res: Response): void => {
    const gone = new AbortController();
    res.on("close", () => gone.abort());
    h(req, res, gone.signal).then(
      (body) => {
        if (!res.headersSent && !res.writableEnded) res.json(body);
      },
      (e) => {
        if (!res.headersSent) sendError(res, e);
      },
    );
  };

export function workerApiRouter(deps: WorkerApiDeps): express.Router {
  const desk = new WorkerDesk(deps);
  const router = express.Router();

  router.get(
    "/tasks/next",
    handle(async (req, res, gone) => {
      const { p, agentId } = agentOf(req);
      const waitMs = waitSeconds(req, 0) * 1000;
      const next = await desk.next(p, agentId, waitMs, gone);
      if (!next) return res.status(204).end();
      return next;
    }),
  );

  router.get("/agents/me/tasks/stream", (req, res) => {
    let who: ReturnType<typeof agentOf>;
    try {
      who = agentOf(req);
    } catch (e) {
      return sendError(res, e);
    }
    res.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    res.write(`: assignments of ${who.agentId}\n\n`);
    const gone = new AbortController();
    const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), deps.keepAliveMs ?? 15_000);
    res.on("close", () => {
      clearInterval(keepAlive);
      gone.abort();
    });
    desk
      .watch(who.p, who.agentId, gone.signal, (a) => {
        res.write(`id: ${attemptKey(a)}\nevent: task\ndata: ${JSON.stringify(a)}\n\n`);
      })
      .catch((e: Error) => {
        res.write(`event: error\ndata: ${JSON.stringify({ message: e.message })}\n\n`);
        res.end();
      });
  });

  router.post(
    "/tasks/accept",
    handle(async (req) => {
      const { p, self } = agentOf(req);
      return desk.accept(p, self, parseAccept(body(req)));
    }),
  );

  router.post(
    "/tasks/:taskId/update",
    handle(async (req) => {
      const { p, self } = agentOf(req);
      const taskId = String(req.params.taskId);
      if (!ID.test(taskId)) throw invalid("taskId", ID_HINT);
      const { ref, percent, message } = parseProgress(body(req), taskId);
      return desk.progress(p, self, ref, percent, message);
    }),
  );

  router.post(
    "/context/request",
    handle(async (req, res, gone) => {
      const { p, self } = agentOf(req);
      const { ref, need, keys, waitSeconds } = parseContextRequest(body(req));
      const waitMs = waitSeconds * 1000;
      const r = await desk.requestContext(p, self, ref, need, keys, waitMs, gone);
      if (r.status === "PENDING") {
        const poll = `/api/v1/context/${encodeURIComponent(r.requestId)}?goalId=${encodeURIComponent(ref.goalId)}`;
        res.status(202).setHeader("Location", poll);
        return { ...r, poll };
      }
      return r;
    }),
  );

  router.get(
    "/context/:requestId",
    handle(async (req, res) => {
      const { p, agentId } = agentOf(req);
      const goalId = req.query.goalId;
      if (typeof goalId !== "string" || !ID.test(goalId))
        throw invalid("goalId", `is required in the query; ${ID_HINT}`);
      const r = await desk.contextAnswer(p, agentId, goalId, String(req.params.requestId));
      if (r.status === "PENDING") res.status(202);
      return r;
    }),
  );

  router.post(
    "/capabilities/update",
    handle(async (req, res) => {
      const { p, self } = agentOf(req);
      const update = parseCapabilities(body(req));
      res.status(202);
      return desk.updateCapabilities(p, self, update);
    }),
  );

  router.post(
    "/agents/me/heartbeat",
    handle(async (req, res) => {
      const { p, self } = agentOf(req);
      const beat = parseHeartbeat(body(req, true));
      res.status(202);
      return desk.heartbeat(p, self, beat);
    }),
  );

  router.get(
    "/agents/me",
    handle(async (req) => {
      const { p, agentId } = agentOf(req);
      return desk.me(p, agentId);
    }),
  );

  return router;
}
