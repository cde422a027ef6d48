/**
 * Every agent: health, heartbeat age (ticking, and moved on by each live heartbeat), load and
 * failures. Failures, recoveries, registrations and scaling read the list again.
 */
import { useState } from "react";
import { Badge, Card, Empty, ErrorBox, Kpi, Loading, Progress, ago, duration, pct } from "../components";
import { href } from "../router";
import { useNow, useQuery, useSubscription, useThrottled } from "../session";

const AGENTS = /* GraphQL */ `
  query Agents {
    agents {
      id
      name
      tier
      topology
      domain
      specialization
      status
      capacity
      executor
      lastHeartbeat
      heartbeatIntervalMs
      registeredAt
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
  }
`;

interface AgentRow {
  id: string;
  name: string | null;
  tier: string | null;
  topology: string | null;
  domain: string | null;
  specialization: string | null;
  status: string | null;
  capacity: number | null;
  currentTasks: { id: string }[];
  executor: string | null;
  lastHeartbeat: string | null;
  heartbeatIntervalMs: number | null;
  registeredAt: string | null;
  superior: { id: string } | null;
  performance: {
    tasksCompleted: number;
    tasksFailed: number;
    avgCompletionMs: number | null;
    successRate: number | null;
  };
}

/** A worker's open tasks over its capacity; an agent above the workers holds tasks it delegated. */
export function Load({
  agent,
}: {
  agent: { tier: string | null; capacity: number | null; currentTasks: { id: string }[] };
}) {
  const held = agent.currentTasks.length;
  if (agent.tier !== "WORKER" || !agent.capacity) return <span className="muted">{held ? `holds ${held}` : "—"}</span>;
  return <Progress value={held / agent.capacity} label={`${held}/${agent.capacity}`} />;
}

const TIER_ORDER = ["PRESIDENT", "MASTER", "GOVERNOR", "SUB_MASTER", "MAYOR", "WORKER"];

export function AgentsPage() {
  const now = useNow(1_000);
  const q = useQuery<{ agents: AgentRow[] }>(AGENTS, {}, { pollMs: 15_000 });
  const [beats, setBeats] = useState<Record<string, string>>({});
  const [filter, setFilter] = useState("");
  const refresh = useThrottled(q.refresh, 1_000);
  useSubscription(
    "subscription { agentHealth { type agentId occurredAt loggedAt topic offset replayed payload goalId taskId } }",
    {},
    (e) => {
      if (e.type === "AgentHeartbeat" && e.agentId) setBeats((b) => ({ ...b, [e.agentId!]: e.occurredAt }));
      else refresh();
    },
  );
  if (q.error && !q.data) return <ErrorBox error={q.error} title="Agents" />;
  if (!q.data) return <Loading what="agents" />;
  const f = filter.trim().toLowerCase();
  const agents = q.data.agents
    .filter(
      (a) =>
        !f || [a.id, a.name, a.domain, a.specialization, a.status, a.tier].some((x) => x?.toLowerCase().includes(f)),
    )
    .sort(
      (a, b) =>
        (a.topology ?? "").localeCompare(b.topology ?? "") ||
        TIER_ORDER.indexOf(a.tier ?? "") - TIER_ORDER.indexOf(b.tier ?? "") ||
        a.id.localeCompare(b.id),
    );
  const all = q.data.agents;
  const beatOf = (a: AgentRow) => {
    const live = beats[a.id];
    return live && (!a.lastHeartbeat || live > a.lastHeartbeat) ? live : a.lastHeartbeat;
  };
  const stale = (a: AgentRow) => {
    const at = beatOf(a);
    return !!(at && a.heartbeatIntervalMs && now - new Date(at).getTime() > 3 * a.heartbeatIntervalMs);
  };
  const failures = all.reduce((n, a) => n + a.performance.tasksFailed, 0);
  const workers = all.filter((a) => a.tier === "WORKER");
  const workerSlots = workers.reduce((n, a) => n + (a.capacity ?? 0), 0);
  const workerHeld = workers.reduce((n, a) => n + a.currentTasks.length, 0);
  return (
    <div className="page" data-testid="page-agents">
      <h1>Agents</h1>
      <ErrorBox error={q.error} />
      <div className="kpis">
        <Kpi label="agents" value={all.length} />
        <Kpi
          label="active"
          value={all.filter((a) => a.status === "ACTIVE" || a.status === "BUSY" || a.status === "IDLE").length}
        />
        <Kpi
          label="failed"
          value={all.filter((a) => a.status === "FAILED").length}
          tone={all.some((a) => a.status === "FAILED") ? "bad" : undefined}
        />
        <Kpi
          label="silent now"
          value={all.filter(stale).length}
          hint="no heartbeat for 3 intervals"
          tone={all.some(stale) ? "warn" : undefined}
        />
        <Kpi label="task failures" value={failures} />
        <Kpi
          label="worker load"
          hint="open tasks of this tenant held by workers, over their capacity"
          value={pct(workerSlots ? workerHeld / workerSlots : null)}
        />
      </div>
      <Card
        title="All agents"
        actions={
          <input
            placeholder="filter: id, domain, status…"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
            aria-label="filter agents"
          />
        }
      >
        {agents.length === 0 ? (
          <Empty>No agent{f ? " matches" : ""}.</Empty>
        ) : (
          <table className="table" data-testid="agents-table">
            <thead>
              <tr>
                <th>agent</th>
                <th>tier</th>
                <th>domain</th>
                <th>status</th>
                <th>heartbeat</th>
                <th title="open tasks of this tenant over capacity">load</th>
                <th>done</th>
                <th>failures</th>
                <th>success</th>
                <th>avg time</th>
              </tr>
            </thead>
            <tbody>
              {agents.map((a) => (
                <tr key={a.id} className={stale(a) ? "stale" : undefined} data-agent={a.id}>
                  <td>
                    {a.name ?? a.id}
                    <div className="muted small">
                      {a.id} · {a.topology}
                      {a.executor && ` · ${a.executor}`}
                    </div>
                  </td>
                  <td>{a.tier?.toLowerCase()}</td>
                  <td>{a.domain ? <a href={href.domain(a.domain)}>{a.domain}</a> : "—"}</td>
                  <td>
                    <Badge status={a.status} />
                  </td>
                  <td
                    title={a.heartbeatIntervalMs ? `every ${duration(a.heartbeatIntervalMs)}` : "no heartbeat expected"}
                  >
                    {ago(beatOf(a), now)}
                  </td>
                  <td style={{ minWidth: 90 }}>
                    <Load agent={a} />
                  </td>
                  <td className="num">{a.performance.tasksCompleted}</td>
                  <td className={`num ${a.performance.tasksFailed ? "warn-text" : ""}`}>{a.performance.tasksFailed}</td>
                  <td className="num">{pct(a.performance.successRate)}</td>
                  <td className="num">{duration(a.performance.avgCompletionMs)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </div>
  );
}
