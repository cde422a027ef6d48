/**
 * The master dashboard: KPIs, system-wide performance (throughput, health, read-model lag), the
 * portfolio of goals and projects, resource utilisation across agents, alerts and escalations.
 * The portfolio paints first (one light query); health and analytics follow in their own query.
 */
import { useState } from "react";
import {
  Badge,
  Bars,
  Card,
  Columns,
  Empty,
  ErrorBox,
  Kpi,
  Loading,
  Progress,
  ago,
  duration,
  pct,
  time,
} from "../components";
import { href } from "../router";
import { useNow, useQuery, useSubscription, useThrottled } from "../session";

export interface GoalRow {
  id: string;
  kind: string | null;
  status: string | null;
  title: string | null;
  priority: number | null;
  topology: string | null;
  progress: number;
  tasksTotal: number;
  submittedAt: string | null;
  completedAt: string | null;
  currentPhase: string | null;
  openEscalations: number;
  domainHints: string[];
  resourceConsumption: { computeCost: string; agentMs: number };
}

const GOAL_FIELDS = `id kind status title priority topology progress tasksTotal submittedAt completedAt currentPhase
  openEscalations domainHints resourceConsumption { computeCost agentMs }`;

const STATUSES = ["RUNNING", "COMPLETED", "FAILED", "STOPPED", "REJECTED"] as const;
const counts = (field: "goals" | "projects") =>
  STATUSES.map((s) => `${field}_${s}: ${field}(filter: { status: ${s} }, first: 1) { totalCount }`).join("\n    ");

/**
 * Goals and projects (two lists in the API), newest first: the one read the overview waits for
 * before it shows the portfolio. Counts by status come in a read of their own (each goals list is a
 * sorted find and a count on the state store, the slow part with many goals).
 */
export const PORTFOLIO = /* GraphQL */ `
  query Portfolio($first: Int!) {
    goals(first: $first) {
      totalCount
      pageInfo { hasNextPage }
      edges { node { ${GOAL_FIELDS} } }
    }
    projects(first: $first) {
      totalCount
      pageInfo { hasNextPage }
      edges { node { ${GOAL_FIELDS} } }
    }
  }
`;

const STATUS_COUNTS = /* GraphQL */ `
  query StatusCounts {
    ${counts("goals")}
    ${counts("projects")}
  }
`;

type Connection = { totalCount: number; pageInfo: { hasNextPage: boolean }; edges: { node: GoalRow }[] };
type Portfolio = { goals: Connection; projects: Connection };

const OPERATIONS = /* GraphQL */ `
  query Operations {
    systemHealth {
      status
      checkedAt
      totalAgents
      activeAgents
      failedAgents
      taskQueueLength
      runningTasks
      completedTasks
      failedTasks
      runningGoals
      problems
      components {
        name
        up
        latencyMs
        detail
      }
      projections {
        projection
        lag
      }
    }
    escalations(status: "OPEN") {
      id
      goalId
      taskId
      kind
      severity
      reason
      raisedAt
      from {
        tier
        agentId
      }
      to {
        tier
        agentId
      }
    }
    throughput(hours: 24) {
      hourUtc
      tasksCompleted
      goals
    }
    utilization {
      agentId
      tier
      openTasks
      capacity
      utilization
    }
    agents {
      id
      tier
      domain
      status
    }
  }
`;

interface Operations {
  systemHealth: {
    status: string;
    checkedAt: string;
    totalAgents: number;
    activeAgents: number;
    failedAgents: number;
    taskQueueLength: number;
    runningTasks: number;
    completedTasks: number;
    failedTasks: number;
    runningGoals: number;
    problems: string[];
    components: { name: string; up: boolean; latencyMs: number; detail: string }[];
    projections: { projection: string; lag: number }[];
  };
  escalations: {
    id: string;
    goalId: string;
    taskId: string | null;
    kind: string | null;
    severity: string | null;
    reason: string | null;
    raisedAt: string | null;
    from: { tier: string; agentId: string | null } | null;
    to: { tier: string; agentId: string | null } | null;
  }[];
  throughput: { hourUtc: string; tasksCompleted: number; goals: number }[];
  utilization: {
    agentId: string;
    tier: string | null;
    openTasks: number;
    capacity: number | null;
    utilization: number | null;
  }[];
  agents: { id: string; tier: string | null; domain: string | null; status: string | null }[];
}

const PAGE = 25;
export const PORTFOLIO_PAGE = PAGE;

export function GoalTable({ rows, now }: { rows: GoalRow[]; now: number }) {
  if (rows.length === 0) return <Empty>No goals yet. Submit one from the Submit page or the API.</Empty>;
  return (
    <table className="table" data-testid="goal-table">
      <thead>
        <tr>
          <th>goal</th>
          <th>status</th>
          <th>kind</th>
          <th>progress</th>
          <th>phase</th>
          <th>cost</th>
          <th>escalations</th>
          <th>submitted</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((g) => (
          <tr key={g.id} data-goal={g.id}>
            <td>
              <a href={href.goal(g.id)}>{g.title ?? g.id}</a>
              <div className="muted small">{g.id}</div>
            </td>
            <td>
              <Badge status={g.status} />
            </td>
            <td>{g.kind?.toLowerCase() ?? "—"}</td>
            <td style={{ minWidth: 120 }}>
              <Progress value={g.progress} label={`${Math.round(g.progress * g.tasksTotal)}/${g.tasksTotal}`} />
            </td>
            <td>{g.currentPhase?.toLowerCase() ?? "—"}</td>
            <td className="num">{g.resourceConsumption.computeCost}</td>
            <td className={`num ${g.openEscalations ? "warn-text" : ""}`}>{g.openEscalations}</td>
            <td title={time(g.submittedAt)}>{ago(g.submittedAt, now)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function OverviewPage() {
  const now = useNow(5_000);
  const [pages, setPages] = useState(1);
  // No tenant-wide goal subscription exists: the portfolio is read again every few seconds and
  // whenever an escalation, phase transition or agent change arrives live.
  const portfolio = useQuery<Portfolio>(PORTFOLIO, { first: Math.min(100, PAGE * pages) }, { pollMs: 3_000 });
  // The other reads wait for the portfolio: the state store answers one read at a time, and the
  // portfolio is what the page is for.
  const [portfolioSeen, setPortfolioSeen] = useState(false);
  if (!portfolioSeen && (portfolio.data || portfolio.error)) setPortfolioSeen(true);
  const ops = useQuery<Operations>(OPERATIONS, {}, { pollMs: 10_000, skip: !portfolioSeen });
  const statusCounts = useQuery<Record<string, { totalCount: number }>>(
    STATUS_COUNTS,
    {},
    { pollMs: 10_000, skip: !portfolioSeen },
  );
  const refresh = useThrottled(() => {
    portfolio.refresh();
    ops.refresh();
    statusCounts.refresh();
  }, 1_000);
  useSubscription(
    "subscription { escalations { type goalId occurredAt loggedAt topic offset replayed payload taskId agentId } }",
    {},
    refresh,
  );
  useSubscription(
    "subscription { phaseTransitions { type goalId occurredAt loggedAt topic offset replayed payload taskId agentId } }",
    {},
    refresh,
  );

  const p = portfolio.data;
  const o = ops.data;
  const c = statusCounts.data;
  const count = (status: (typeof STATUSES)[number]) =>
    c ? (c[`goals_${status}`]?.totalCount ?? 0) + (c[`projects_${status}`]?.totalCount ?? 0) : 0;
  const total = p ? p.goals.totalCount + p.projects.totalCount : 0;
  const shown = Math.min(100, PAGE * pages);
  const rows = p
    ? [...p.goals.edges, ...p.projects.edges]
        .map((e) => e.node)
        .sort((a, b) => (b.submittedAt ?? "").localeCompare(a.submittedAt ?? "") || b.id.localeCompare(a.id))
        .slice(0, shown)
    : [];
  const h = o?.systemHealth;
  const domains = [...new Set((o?.agents ?? []).map((a) => a.domain).filter((d): d is string => !!d))].sort();
  const utilization = [...(o?.utilization ?? [])]
    .filter((u) => u.tier === "WORKER" || u.tier === null)
    .sort((a, b) => (b.utilization ?? 0) - (a.utilization ?? 0) || a.agentId.localeCompare(b.agentId))
    .slice(0, 12);
  // The last 24 hours, one column each, empty hours included.
  const byHour = new Map((o?.throughput ?? []).map((t) => [t.hourUtc.slice(0, 13), t]));
  const thisHour = Math.floor(now / 3_600_000) * 3_600_000;
  const hours = Array.from({ length: 24 }, (_, i) => {
    const at = new Date(thisHour - (23 - i) * 3_600_000).toISOString();
    return byHour.get(at.slice(0, 13)) ?? { hourUtc: at, tasksCompleted: 0, goals: 0 };
  });
  const completedToday = hours.reduce((n, h) => n + h.tasksCompleted, 0);
  const totals = STATUSES.map((s) => ({ label: s.toLowerCase(), value: count(s), tone: s.toLowerCase() }));
  const successRate =
    h && h.completedTasks + h.failedTasks > 0 ? h.completedTasks / (h.completedTasks + h.failedTasks) : null;

  return (
    <div className="page" data-testid="page-overview">
      <h1>Overview</h1>
      <ErrorBox error={portfolio.error} title="Goals" />
      <div className="kpis">
        <Kpi
          label="goals and projects"
          value={p ? total : "…"}
          hint={p ? `${p.goals.totalCount} goals, ${p.projects.totalCount} projects` : undefined}
        />
        <Kpi label="running" value={c ? count("RUNNING") : "…"} />
        <Kpi label="tasks queued" value={h ? h.taskQueueLength : "…"} hint="PENDING, READY and ASSIGNED tasks" />
        <Kpi label="tasks running" value={h ? h.runningTasks : "…"} />
        <Kpi
          label="task success"
          value={pct(successRate)}
          tone={successRate !== null && successRate < 0.9 ? "warn" : undefined}
        />
        <Kpi
          label="agents active"
          value={h ? `${h.activeAgents}/${h.totalAgents}` : "…"}
          tone={h && h.failedAgents > 0 ? "bad" : undefined}
        />
        <Kpi
          label="open escalations"
          value={o ? o.escalations.length : "…"}
          tone={o && o.escalations.length > 0 ? "warn" : undefined}
        />
        <Kpi label="system" value={h ? <Badge status={h.status} /> : "…"} />
      </div>

      <div className="grid">
        <Card title="Portfolio" className="wide" actions={<a href={href.submit()}>Submit a goal or project</a>}>
          {p ? (
            <>
              <GoalTable rows={rows} now={now} />
              {total > rows.length && shown < 100 && (
                <button onClick={() => setPages(pages + 1)}>Show more ({total - rows.length} more)</button>
              )}
            </>
          ) : (
            !portfolio.error && <Loading what="goals" />
          )}
        </Card>

        <Card title="Goals by status">{p ? <Bars rows={totals} /> : <Loading what="counts" />}</Card>

        <Card title="Alerts and escalations">
          <ErrorBox error={ops.error} />
          {h && h.problems.length > 0 && (
            <ul className="alerts">
              {h.problems.map((x) => (
                <li key={x} className="alert-item">
                  {x}
                </li>
              ))}
            </ul>
          )}
          {o && o.escalations.length === 0 && h?.problems.length === 0 && (
            <Empty>No alert and no open escalation.</Empty>
          )}
          {o && o.escalations.length > 0 && (
            <ul className="alerts">
              {o.escalations.slice(0, 10).map((e) => (
                <li key={e.id}>
                  <Badge status={e.severity ?? "OPEN"} /> <a href={href.goal(e.goalId)}>{e.goalId}</a>
                  {e.taskId && ` / ${e.taskId}`}: {e.reason ?? e.kind}{" "}
                  <span className="muted">{ago(e.raisedAt, now)}</span>
                  <div className="muted small">
                    {e.from?.tier} → {e.to?.tier}
                  </div>
                </li>
              ))}
            </ul>
          )}
          {!o && !ops.error && <Loading what="alerts" />}
        </Card>

        <Card title="Throughput (tasks completed per hour, UTC)">
          {o ? (
            completedToday ? (
              <Columns
                points={hours.map((t) => ({
                  label: t.hourUtc.slice(11, 13) + "h",
                  value: t.tasksCompleted,
                  title: `${time(t.hourUtc)}: ${t.tasksCompleted} tasks, ${t.goals} goals`,
                }))}
              />
            ) : (
              <Empty>No task completed in the last 24 hours.</Empty>
            )
          ) : (
            <Loading what="throughput" />
          )}
        </Card>

        <Card title="Resource utilisation (workers, busiest first)">
          {o ? (
            utilization.length ? (
              <Bars
                rows={utilization.map((u) => ({
                  label: u.agentId.replace(/^(aamas|dgm)-worker-/, "$1 "),
                  value: u.utilization ?? 0,
                  max: 1,
                  tone: (u.utilization ?? 0) > 0.9 ? "failed" : "running",
                  note: `${u.agentId}: ${u.openTasks}/${u.capacity ?? "?"} open tasks`,
                }))}
                format={(v) => pct(v)}
              />
            ) : (
              <Empty>No worker agents.</Empty>
            )
          ) : (
            <Loading what="utilisation" />
          )}
        </Card>

        <Card title="Domains">
          {o ? (
            domains.length ? (
              <ul className="links">
                {domains.map((d) => {
                  const agents = o.agents.filter((a) => a.domain === d);
                  const failed = agents.filter((a) => a.status === "FAILED").length;
                  return (
                    <li key={d}>
                      <a href={href.domain(d)}>{d}</a>{" "}
                      <span className="muted">
                        {agents.length} agents{failed ? `, ${failed} failed` : ""}
                      </span>
                    </li>
                  );
                })}
              </ul>
            ) : (
              <Empty>No domain has agents.</Empty>
            )
          ) : (
            <Loading what="domains" />
          )}
        </Card>

        <Card title="Platform">
          {h ? (
            <table className="table compact">
              <tbody>
                {h.components.map((c) => (
                  <tr key={c.name}>
                    <td>{c.name}</td>
                    <td>
                      <Badge status={c.up ? "UP" : "DOWN"} />
                    </td>
                    <td className="num">{duration(c.latencyMs)}</td>
                  </tr>
                ))}
                {h.projections.map((x) => (
                  <tr key={x.projection}>
                    <td>read model {x.projection}</td>
                    <td>lag</td>
                    <td className="num">{x.lag} events</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Loading what="health" />
          )}
        </Card>
      </div>
    </div>
  );
}
