/**
 * The governor dashboard of one domain: its metrics (tasks done and failed, success rate, average
 * duration, utilisation), its agents' status under the governor, and the progress of the goals and
 * projects that have tasks in the domain.
 */
import { Badge, Bars, Card, Empty, ErrorBox, Kpi, Loading, Progress, ago, duration, pct } from "../components";
import { href } from "../router";
import { Load } from "./agents";
import { useNow, useQuery, useSubscription, useThrottled } from "../session";

const DOMAIN = /* GraphQL */ `
  query Domain($domain: String!) {
    agents(filter: { domain: $domain }) {
      id
      name
      tier
      topology
      specialization
      status
      capacity
      lastHeartbeat
      heartbeatIntervalMs
      superior {
        id
      }
      currentTasks {
        id
      }
      performance {
        tasksCompleted
        tasksFailed
        avgCompletionMs
        successRate
      }
    }
    goals(first: 20) {
      ...Recent
    }
    projects(first: 10) {
      ...Recent
    }
  }

  fragment Recent on GoalConnection {
    edges {
      node {
        id
        title
        kind
        status
        topology
        submittedAt
        tasks {
          taskId
          domain
          status
        }
      }
    }
  }
`;

interface DomainData {
  agents: {
    id: string;
    name: string | null;
    tier: string | null;
    topology: string | null;
    specialization: string | null;
    status: string | null;
    capacity: number | null;
    currentTasks: { id: string }[];
    lastHeartbeat: string | null;
    heartbeatIntervalMs: number | null;
    superior: { id: string } | null;
    performance: {
      tasksCompleted: number;
      tasksFailed: number;
      avgCompletionMs: number | null;
      successRate: number | null;
    };
  }[];
  goals: Recent;
  projects: Recent;
}

interface Recent {
  edges: {
    node: {
      id: string;
      title: string | null;
      kind: string | null;
      status: string | null;
      topology: string | null;
      submittedAt: string | null;
      tasks: { taskId: string; domain: string; status: string }[];
    };
  }[];
}

const HEADS = new Set(["GOVERNOR", "SUB_MASTER"]);

export function DomainPage({ domain }: { domain: string }) {
  const now = useNow(1_000);
  const q = useQuery<DomainData>(DOMAIN, { domain }, { pollMs: 5_000 });
  const refresh = useThrottled(q.refresh, 1_000);
  useSubscription(
    "subscription { agentHealth { type agentId occurredAt loggedAt topic offset replayed payload goalId taskId } }",
    {},
    (e) => {
      if (e.type !== "AgentHeartbeat" && q.data?.agents.some((a) => a.id === e.agentId)) refresh();
    },
  );
  if (q.error && !q.data) return <ErrorBox error={q.error} title={`Domain ${domain}`} />;
  if (!q.data) return <Loading what={`domain ${domain}`} />;
  const agents = q.data.agents;
  const heads = agents.filter((a) => a.tier && HEADS.has(a.tier));
  const workers = agents.filter((a) => a.tier === "WORKER");
  const done = workers.reduce((n, a) => n + a.performance.tasksCompleted, 0);
  const failed = workers.reduce((n, a) => n + a.performance.tasksFailed, 0);
  const timed = workers.filter((a) => a.performance.avgCompletionMs !== null);
  const avg = timed.length
    ? timed.reduce((n, a) => n + a.performance.avgCompletionMs! * a.performance.tasksCompleted, 0) /
      Math.max(
        1,
        timed.reduce((n, a) => n + a.performance.tasksCompleted, 0),
      )
    : null;
  const capacity = workers.reduce((n, a) => n + (a.capacity ?? 0), 0);
  const load = workers.reduce((n, a) => n + a.currentTasks.length, 0);
  const local = [...q.data.goals.edges, ...q.data.projects.edges]
    .map((e) => e.node)
    .sort((a, b) => (b.submittedAt ?? "").localeCompare(a.submittedAt ?? ""))
    .map((g) => ({ ...g, mine: g.tasks.filter((t) => t.domain === domain) }))
    .filter((g) => g.mine.length > 0);
  const openHere = local.reduce(
    (n, g) => n + g.mine.filter((t) => !["COMPLETED", "CANCELLED", "FAILED"].includes(t.status)).length,
    0,
  );

  return (
    <div className="page" data-testid="page-domain">
      <div className="crumbs">
        <a href={href.overview()}>Overview</a> / domain
      </div>
      <h1>{domain}</h1>
      <ErrorBox error={q.error} />
      <div className="kpis">
        <Kpi label="agents" value={agents.length} />
        <Kpi
          label="failed agents"
          value={agents.filter((a) => a.status === "FAILED").length}
          tone={agents.some((a) => a.status === "FAILED") ? "bad" : undefined}
        />
        <Kpi label="tasks done" value={done} />
        <Kpi label="tasks failed" value={failed} tone={failed ? "warn" : undefined} />
        <Kpi label="success rate" value={pct(done + failed ? done / (done + failed) : null)} />
        <Kpi label="avg task time" value={duration(avg)} />
        <Kpi
          label="utilisation"
          value={pct(capacity ? load / capacity : null)}
          hint={`${load} of ${capacity} worker slots`}
        />
        <Kpi label="open tasks here" value={openHere} hint="in the 20 most recent goals and 10 most recent projects" />
      </div>
      <div className="grid">
        <Card
          title={`Agents: ${heads.map((h) => (h.tier === "GOVERNOR" ? "governor" : "sub-master")).join(" and ") || "no governor"} and below`}
          className="wide"
        >
          {agents.length === 0 ? (
            <Empty>No agent in this domain.</Empty>
          ) : (
            <table className="table" data-testid="domain-agents">
              <thead>
                <tr>
                  <th>agent</th>
                  <th>tier</th>
                  <th>status</th>
                  <th>load</th>
                  <th>heartbeat</th>
                  <th>done / failed</th>
                  <th>reports to</th>
                </tr>
              </thead>
              <tbody>
                {[...heads, ...agents.filter((a) => !heads.includes(a))].map((a) => (
                  <tr key={a.id}>
                    <td>
                      {a.name ?? a.id}
                      <div className="muted small">
                        {a.id}
                        {a.specialization && ` · ${a.specialization}`}
                      </div>
                    </td>
                    <td>{a.tier?.toLowerCase()}</td>
                    <td>
                      <Badge status={a.status} />
                    </td>
                    <td>
                      <Load agent={a} />
                    </td>
                    <td>{ago(a.lastHeartbeat, now)}</td>
                    <td className="num">
                      {a.performance.tasksCompleted} / {a.performance.tasksFailed}
                    </td>
                    <td className="muted small">{a.superior?.id ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Work done per worker">
          {workers.length ? (
            <Bars
              rows={workers.map((a) => ({
                label: a.id.replace(/^(aamas|dgm)-worker-/, "$1 "),
                value: a.performance.tasksCompleted,
                tone: "completed",
              }))}
            />
          ) : (
            <Empty>No worker.</Empty>
          )}
        </Card>
        <Card title="Goals and projects with work here" className="wide">
          {local.length === 0 ? (
            <Empty>No recent goal has tasks in {domain}.</Empty>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th>goal</th>
                  <th>status</th>
                  <th>tasks here</th>
                  <th>whole goal</th>
                </tr>
              </thead>
              <tbody>
                {local.map((g) => {
                  const mineDone = g.mine.filter((t) => t.status === "COMPLETED").length;
                  const allDone = g.tasks.filter((t) => t.status === "COMPLETED").length;
                  return (
                    <tr key={g.id}>
                      <td>
                        <a href={href.goal(g.id)}>{g.title ?? g.id}</a>
                        <div className="muted small">
                          {g.kind?.toLowerCase()} · {ago(g.submittedAt, now)}
                        </div>
                      </td>
                      <td>
                        <Badge status={g.status} />
                      </td>
                      <td style={{ minWidth: 140 }}>
                        <Progress value={mineDone / g.mine.length} label={`${mineDone}/${g.mine.length}`} />
                      </td>
                      <td style={{ minWidth: 140 }}>
                        <Progress
                          value={g.tasks.length ? allDone / g.tasks.length : 0}
                          label={`${allDone}/${g.tasks.length}`}
                        />
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
        </Card>
      </div>
    </div>
  );
}
