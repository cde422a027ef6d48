/**
 * One goal or project: the task DAG with each task's state changing live (goalProgress
 * subscription folded over the read model), phase progress, cost, escalations, the audit timeline,
 * and the commands: emergency stop and, for a project, approving the next phase.
 */
import { useEffect, useRef, useState } from "react";
import { ApiError, gql } from "../api";
import { Badge, Card, Confirm, Empty, ErrorBox, Kpi, Loading, Progress, ago, duration, time } from "../components";
import { Dag } from "../dag";
import { applyEvent, isGoalFinal, mergeReadModel, type GoalLive, type TaskStatus, type TaskView } from "../fold";
import { href } from "../router";
import { useNow, useQuery, useSession, useSubscription, useThrottled } from "../session";

export const PHASES = [
  "INITIATION",
  "FEASIBILITY",
  "REQUIREMENTS",
  "DESIGN",
  "DEVELOPMENT",
  "QA",
  "DEPLOYMENT",
  "LAUNCH",
] as const;

const GOAL = /* GraphQL */ `
  query Goal($id: ID!) {
    goal(id: $id) {
      id
      kind
      status
      title
      description
      priority
      topology
      domainHints
      deadline
      budget
      currentPhase
      constraints {
        key
        value
      }
      phases {
        phase
        startedAt
        endedAt
        planner
      }
      planner
      progress
      tasksTotal
      submittedAt
      completedAt
      openEscalations
      version
      failure {
        reason
        code
        failedTaskIds
      }
      resourceConsumption {
        computeCost
        agentHours
        agentMs
      }
      modelCalls
      tokensIn
      tokensOut
      modelCost
      tasks {
        taskId
        title
        domain
        specialization
        phase
        status
        attempt
        maxAttempts
        dependsOn
        progress
        cost
        executor
        failures
        assignees {
          governor {
            id
          }
          mayor {
            id
          }
          worker {
            id
          }
        }
        lastFailure {
          reason
          kind
        }
        timings {
          createdAt
          startedAt
          completedAt
          durationMs
        }
      }
    }
    escalations(goalId: $id) {
      id
      taskId
      kind
      severity
      status
      reason
      outcome
      decision
      raisedAt
      resolvedAt
      from {
        tier
        agentId
      }
      to {
        tier
        agentId
      }
    }
  }
`;

const TRAIL = /* GraphQL */ `
  query Trail($id: ID!) {
    auditTrail(goalId: $id, limit: 400) {
      seq
      type
      occurredAt
      actorId
      actorTier
      summary
      causedBy
      policy {
        decision
        decidedBy
        reasons
      }
    }
  }
`;

const LIVE = /* GraphQL */ `
  subscription Live($id: ID!) {
    goalProgress(goalId: $id) {
      type
      goalId
      taskId
      agentId
      occurredAt
      loggedAt
      topic
      offset
      replayed
      payload
    }
  }
`;

interface TaskRow {
  taskId: string;
  title: string;
  domain: string;
  specialization: string | null;
  phase: string | null;
  status: TaskStatus;
  attempt: number;
  maxAttempts: number;
  dependsOn: string[];
  progress: number;
  cost: string;
  executor: string | null;
  failures: number;
  assignees: { governor: { id: string } | null; mayor: { id: string } | null; worker: { id: string } | null };
  lastFailure: { reason: string; kind: string } | null;
  timings: { createdAt: string; startedAt: string | null; completedAt: string | null; durationMs: number | null };
}

interface GoalData {
  goal: {
    id: string;
    kind: string | null;
    status: string | null;
    title: string | null;
    description: string | null;
    priority: number | null;
    topology: string | null;
    domainHints: string[];
    deadline: string | null;
    budget: string | null;
    currentPhase: string | null;
    constraints: { key: string; value: string }[];
    phases: { phase: string; startedAt: string; endedAt: string | null; planner: string | null }[];
    planner: string | null;
    progress: number;
    tasksTotal: number;
    submittedAt: string | null;
    completedAt: string | null;
    openEscalations: number;
    version: number;
    failure: { reason: string; code: string | null; failedTaskIds: string[] } | null;
    resourceConsumption: { computeCost: string; agentHours: number; agentMs: number };
    modelCalls: number;
    tokensIn: number;
    tokensOut: number;
    modelCost: string;
    tasks: TaskRow[];
  } | null;
  escalations: {
    id: string;
    taskId: string | null;
    kind: string | null;
    severity: string | null;
    status: string;
    reason: string | null;
    outcome: string | null;
    decision: string | null;
    raisedAt: string | null;
    resolvedAt: string | null;
    from: { tier: string; agentId: string | null } | null;
    to: { tier: string; agentId: string | null } | null;
  }[];
}

interface TrailData {
  auditTrail: {
    seq: number;
    type: string;
    occurredAt: string;
    actorId: string;
    actorTier: string;
    summary: string;
    causedBy: number | null;
    policy: { decision: string; decidedBy: string; reasons: string[] } | null;
  }[];
}

const viewOf = (t: TaskRow): TaskView => ({
  taskId: t.taskId,
  title: t.title,
  domain: t.domain,
  specialization: t.specialization,
  phase: t.phase,
  status: t.status,
  attempt: t.attempt,
  dependsOn: t.dependsOn,
  worker: t.assignees.worker?.id ?? null,
  progress: t.progress,
  cost: t.cost,
  changedAt: t.timings.completedAt ?? t.timings.startedAt ?? t.timings.createdAt,
});

export function GoalPage({ goalId }: { goalId: string }) {
  const session = useSession();
  const now = useNow(5_000);
  // A goal just submitted may not be in the read model yet: asked again for a few seconds.
  const q = useQuery<GoalData>(GOAL, { id: goalId }, { retryWhile: (d) => d.goal === null });
  const trail = useQuery<TrailData>(TRAIL, { id: goalId });
  const live = useRef<GoalLive>({ status: null, currentPhase: null, tasks: new Map(), version: 0 });
  const pending = useRef<Parameters<typeof applyEvent>[1][]>([]);
  const loaded = useRef(false);
  const [, setVersion] = useState(0);
  const [liveError, setLiveError] = useState<ApiError | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [lastEventAt, setLastEventAt] = useState<string | null>(null);
  const rerender = () => setVersion(live.current.version);
  const reloadLater = useThrottled(() => {
    q.refresh();
    trail.refresh();
  }, 1_500);

  useEffect(() => {
    const g = q.data?.goal;
    if (!g) return;
    if (!loaded.current) {
      loaded.current = true;
      live.current.status = g.status;
      live.current.currentPhase = g.currentPhase;
      for (const t of g.tasks) live.current.tasks.set(t.taskId, viewOf(t));
      for (const e of pending.current) applyEvent(live.current, e);
      pending.current = [];
      live.current.version++;
    } else mergeReadModel(live.current, g.status, g.currentPhase, g.tasks.map(viewOf));
    rerender();
    // The read model may be a moment behind the final event: read it again until it has caught up.
    if (isGoalFinal(live.current.status) && !isGoalFinal(g.status)) reloadLater();
  }, [q.data]);

  useSubscription(
    LIVE,
    { id: goalId },
    (e) => {
      setLastEventAt(e.loggedAt);
      if (!loaded.current) {
        pending.current.push(e);
        return;
      }
      const wasFinal = isGoalFinal(live.current.status);
      if (applyEvent(live.current, e)) rerender();
      if (e.type === "PhaseTransitioned" || e.type === "EscalationRaised" || e.type === "EscalationResolved")
        reloadLater();
      if (!wasFinal && isGoalFinal(live.current.status)) reloadLater();
    },
    { onError: setLiveError },
  );

  const g = q.data?.goal;
  if (q.error && !q.data) return <ErrorBox error={q.error} title={`Goal ${goalId}`} />;
  if (!q.data) return <Loading what={`goal ${goalId}`} />;
  if (!g)
    return (
      <div className="page" data-testid="page-goal-missing">
        <h1>Goal not found</h1>
        <p>
          No goal <code>{goalId}</code> in tenant <strong>{session.me.tenantId}</strong>. A goal just submitted appears
          within a second or two; a goal of another tenant never does.
        </p>
        <button onClick={q.reload}>Look again</button>
      </div>
    );

  const tasks = [...live.current.tasks.values()];
  const status = live.current.status ?? g.status;
  const counts = new Map<string, number>();
  for (const t of tasks) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const completed = counts.get("COMPLETED") ?? 0;
  const sel = selected ? live.current.tasks.get(selected) : undefined;
  const selRow = selected ? g.tasks.find((t) => t.taskId === selected) : undefined;
  const final = isGoalFinal(status);
  const phase = live.current.currentPhase ?? g.currentPhase;
  const nextPhase = phase ? PHASES[PHASES.indexOf(phase as (typeof PHASES)[number]) + 1] : undefined;
  const canSteer = session.me.role === "operator" || session.me.role === "admin";
  const manualGate = g.constraints.some((c) => c.key === "phaseGate" && c.value === "manual");

  return (
    <div className="page" data-testid="page-goal" data-goal-status={status ?? ""}>
      <div className="title-row">
        <div>
          <div className="crumbs">
            <a href={href.overview()}>Overview</a> / {g.kind === "PROJECT" ? "project" : "goal"}
          </div>
          <h1>
            {g.title ?? g.id} <Badge status={status} />
          </h1>
          <div className="muted">
            {g.id} · {g.topology} · priority {g.priority ?? "—"} · submitted {time(g.submittedAt)}
            {g.completedAt && ` · ended ${time(g.completedAt)}`}
          </div>
        </div>
        <div className="commands">
          {g.kind === "PROJECT" && nextPhase && (
            <Confirm
              label={`Approve ${nextPhase.toLowerCase()}`}
              title={`Approve the transition ${phase} → ${nextPhase}?`}
              disabled={final || !canSteer}
              disabledWhy={final ? "the project has ended" : `role ${session.me.role} may not steer`}
              testId="approve-phase"
              run={async () => {
                const r = await gql<{
                  requestPhaseTransition: { accepted: boolean; outcome: string | null; projected: boolean };
                }>(
                  session.token,
                  `mutation ($id: ID!, $from: Phase!, $to: Phase!) {
                    requestPhaseTransition(goalId: $id, fromPhase: $from, toPhase: $to, justification: "approved from the dashboard", waitForProjection: true) {
                      accepted projected outcome
                    }
                  }`,
                  { id: g.id, from: phase, to: nextPhase },
                );
                reloadLater();
                return `Request accepted${r.requestPhaseTransition.outcome ? `: ${r.requestPhaseTransition.outcome}` : ""}.`;
              }}
            >
              <p>
                {manualGate
                  ? "This project waits for approval between phases."
                  : "This project moves on by itself; an approval asks for the move now."}{" "}
                The hierarchy refuses a transition while tasks are pending or escalations are open, and says why.
              </p>
            </Confirm>
          )}
          <StopButton
            goalId={g.id}
            disabled={final || !canSteer}
            why={final ? "the goal has ended" : `role ${session.me.role} may not steer`}
            onDone={reloadLater}
          />
        </div>
      </div>
      {g.failure && (
        <div className="error">
          <strong>{status?.toLowerCase()}: </strong>
          {g.failure.reason}
        </div>
      )}
      <ErrorBox error={liveError} title="Live updates" />

      <div className="kpis">
        <Kpi label="tasks completed" value={`${completed}/${tasks.length}`} />
        <Kpi label="running" value={counts.get("RUNNING") ?? 0} />
        <Kpi label="failed attempts" value={g.tasks.reduce((n, t) => n + t.failures, 0)} />
        <Kpi
          label="cost"
          value={g.resourceConsumption.computeCost}
          hint={g.budget ? `budget ${g.budget}` : "no budget set"}
        />
        <Kpi label="agent time" value={duration(g.resourceConsumption.agentMs)} />
        <Kpi label="open escalations" value={g.openEscalations} tone={g.openEscalations ? "warn" : undefined} />
        {g.modelCalls > 0 && <Kpi label="model calls" value={`${g.modelCalls} (${g.tokensIn + g.tokensOut} tokens)`} />}
      </div>

      {g.kind === "PROJECT" && (
        <Card title="Phases">
          <ol className="phases" data-testid="phases">
            {PHASES.map((p) => {
              const rec = g.phases.find((x) => x.phase === p);
              const inPhase = tasks.filter((t) => t.phase === p);
              const done = inPhase.filter((t) => t.status === "COMPLETED").length;
              const state = rec?.endedAt ? "done" : rec || phase === p ? "current" : "todo";
              return (
                <li key={p} className={`phase ${state}`}>
                  <div className="phase-name">{p.toLowerCase()}</div>
                  <Progress
                    value={inPhase.length ? done / inPhase.length : state === "done" ? 1 : 0}
                    label={inPhase.length ? `${done}/${inPhase.length}` : state}
                  />
                  <div className="muted small">
                    {rec
                      ? `${time(rec.startedAt).slice(11)}${rec.endedAt ? `–${time(rec.endedAt).slice(11)}` : ""}`
                      : ""}
                  </div>
                </li>
              );
            })}
          </ol>
        </Card>
      )}

      <div className="grid">
        <Card
          title="Tasks"
          className="wide"
          actions={
            <span className="muted small" data-testid="last-event">
              {lastEventAt ? `last event ${ago(lastEventAt, now)}` : final ? "ended" : "waiting for events"}
            </span>
          }
        >
          <div className="legend">
            {["PENDING", "READY", "ASSIGNED", "ACCEPTED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"].map((s) => (
              <span key={s}>
                <Badge status={s} /> {counts.get(s) ?? 0}
              </span>
            ))}
          </div>
          {tasks.length ? (
            <Dag tasks={tasks} selected={selected} onSelect={setSelected} />
          ) : (
            <Empty>No task yet (the goal is being planned).</Empty>
          )}
          {sel && (
            <div className="task-detail" data-testid="task-detail">
              <h3>
                {sel.title} <Badge status={sel.status} />
              </h3>
              <dl>
                <dt>task</dt>
                <dd>{sel.taskId}</dd>
                <dt>domain</dt>
                <dd>
                  {sel.domain}/{sel.specialization ?? "—"}
                  {sel.phase && ` · ${sel.phase.toLowerCase()}`}
                </dd>
                <dt>attempt</dt>
                <dd>
                  {sel.attempt}
                  {selRow && ` of ${selRow.maxAttempts}`}
                </dd>
                <dt>worker</dt>
                <dd>{sel.worker ?? "—"}</dd>
                <dt>chain</dt>
                <dd>
                  {selRow?.assignees.governor?.id ?? "—"} → {selRow?.assignees.mayor?.id ?? "—"}
                </dd>
                <dt>depends on</dt>
                <dd>{sel.dependsOn.join(", ") || "—"}</dd>
                <dt>cost</dt>
                <dd>{sel.cost ?? "—"}</dd>
                <dt>duration</dt>
                <dd>{duration(selRow?.timings.durationMs)}</dd>
                {selRow?.lastFailure && (
                  <>
                    <dt>last failure</dt>
                    <dd>
                      {selRow.lastFailure.kind}: {selRow.lastFailure.reason}
                    </dd>
                  </>
                )}
              </dl>
            </div>
          )}
        </Card>

        <Card title="Escalations">
          {q.data.escalations.length === 0 ? (
            <Empty>None.</Empty>
          ) : (
            <ul className="alerts">
              {q.data.escalations.map((e) => (
                <li key={e.id}>
                  <Badge status={e.status} /> {e.taskId ?? "goal"}: {e.reason ?? e.kind}
                  <div className="muted small">
                    {e.from?.tier} → {e.to?.tier}
                    {e.decision && ` · ${e.decision}`}
                    {e.outcome && ` · ${e.outcome}`}
                  </div>
                </li>
              ))}
            </ul>
          )}
        </Card>

        <Card title="Details">
          <dl>
            <dt>description</dt>
            <dd>{g.description ?? "—"}</dd>
            <dt>planner</dt>
            <dd>{g.planner ?? "—"}</dd>
            <dt>domains</dt>
            <dd>{g.domainHints.join(", ") || "—"}</dd>
            <dt>budget</dt>
            <dd>{g.budget ?? "none"}</dd>
            <dt>deadline</dt>
            <dd>{time(g.deadline)}</dd>
            {g.constraints.map((c) => (
              <span key={c.key}>
                <dt>{c.key}</dt>
                <dd>{c.value}</dd>
              </span>
            ))}
          </dl>
        </Card>

        <Card
          title="Audit timeline"
          className="wide"
          actions={
            <button className="link" onClick={trail.reload}>
              Replay again
            </button>
          }
        >
          <ErrorBox error={trail.error} />
          {trail.data ? (
            <div className="timeline-scroll">
              <table className="table compact timeline" data-testid="timeline">
                <thead>
                  <tr>
                    <th>#</th>
                    <th>when</th>
                    <th>who</th>
                    <th>event</th>
                    <th>what</th>
                    <th>caused by</th>
                  </tr>
                </thead>
                <tbody>
                  {trail.data.auditTrail.map((t) => (
                    <tr key={t.seq} id={`seq-${t.seq}`}>
                      <td className="num">{t.seq}</td>
                      <td className="nowrap">{time(t.occurredAt).slice(11)}</td>
                      <td className="nowrap">
                        {t.actorTier.toLowerCase()} <span className="muted small">{t.actorId}</span>
                      </td>
                      <td>{t.type}</td>
                      <td>
                        {t.summary}
                        {t.policy && (
                          <div className="muted small">
                            {t.policy.decision} by {t.policy.decidedBy}
                            {t.policy.reasons.length ? `: ${t.policy.reasons.join("; ")}` : ""}
                          </div>
                        )}
                      </td>
                      <td className="num">{t.causedBy ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            !trail.error && <Loading what="the timeline (replayed from the log)" />
          )}
        </Card>
      </div>
    </div>
  );
}

function StopButton(props: { goalId: string; disabled: boolean; why: string; onDone: () => void }) {
  const session = useSession();
  const [reason, setReason] = useState("stopped from the dashboard");
  return (
    <Confirm
      label="Emergency stop"
      title="Stop this goal?"
      danger
      disabled={props.disabled}
      disabledWhy={props.why}
      confirmLabel="Stop the goal"
      testId="stop"
      run={async () => {
        if (!reason.trim()) throw new Error("give a reason: it is recorded in the log");
        const r = await gql<{ emergencyStop: { accepted: boolean; projected: boolean; outcome: string | null } }>(
          session.token,
          `mutation ($id: ID!, $reason: String!) {
            emergencyStop(goalId: $id, reason: $reason, waitForProjection: true) { accepted projected outcome }
          }`,
          { id: props.goalId, reason },
        );
        props.onDone();
        const s = r.emergencyStop;
        return s.projected
          ? `Stopped${s.outcome ? `: ${s.outcome}` : ""}.`
          : "Stop accepted; the hierarchy is stopping the goal.";
      }}
    >
      <p>Every open task is cancelled and nothing more is dispatched. This cannot be undone.</p>
      <label>
        Reason (recorded in the log)
        <input value={reason} onChange={(e) => setReason(e.target.value)} data-testid="stop-reason" />
      </label>
    </Confirm>
  );
}
