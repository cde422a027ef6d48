/**
 * Policies: each with its versions (the first is the definition, the later ones amendments with
 * their rationale and effective time), the latest denials and constitutional violations (analytics
 * views policy_denials and constitutional_violations, of the caller's tenant), and the goals the
 * policies refused.
 */
import { useState } from "react";
import { Badge, Card, Empty, ErrorBox, Kpi, Loading, ago, time } from "../components";
import { href } from "../router";
import { useNow, useQuery } from "../session";

const POLICIES = /* GraphQL */ `
  query Policies {
    policies {
      id
      name
      category
      status
      currentVersion
      versions {
        version
        description
        rules
        appliesToTiers
        domains
        precedence
        effectiveFrom
        rationale
        at
      }
    }
    denials: policyDenials(limit: 50) {
      occurredAt
      type
      goalId
      policyId
      category
      subjectType
      subjectId
      reasons
      eventId
    }
    violations: constitutionalViolations(limit: 50) {
      occurredAt
      goalId
      taskId
      policyId
      policyVersion
      principle
      severity
      enforcement
      eventId
    }
    rejected: goals(filter: { status: REJECTED }, first: 25) {
      totalCount
      edges {
        node {
          id
          title
          submittedAt
          failure {
            reason
            code
          }
        }
      }
    }
  }
`;

interface PolicyVersion {
  version: number;
  description: string;
  rules: unknown;
  appliesToTiers: string[];
  domains: string[];
  precedence: number;
  effectiveFrom: string;
  rationale: string | null;
  at: string;
}

interface PoliciesData {
  policies: {
    id: string;
    name: string | null;
    category: string | null;
    status: string;
    currentVersion: number;
    versions: PolicyVersion[];
  }[];
  denials: {
    occurredAt: string;
    type: string;
    goalId: string | null;
    policyId: string | null;
    category: string | null;
    subjectType: string | null;
    subjectId: string | null;
    reasons: string[];
    eventId: string;
  }[];
  violations: {
    occurredAt: string;
    goalId: string | null;
    taskId: string | null;
    policyId: string | null;
    policyVersion: number | null;
    principle: string | null;
    severity: string | null;
    enforcement: string | null;
    eventId: string;
  }[];
  rejected: {
    totalCount: number;
    edges: {
      node: {
        id: string;
        title: string | null;
        submittedAt: string | null;
        failure: { reason: string; code: string | null } | null;
      };
    }[];
  };
}

export function PoliciesPage() {
  const now = useNow(10_000);
  const q = useQuery<PoliciesData>(POLICIES, {}, { pollMs: 10_000 });
  const [open, setOpen] = useState<string | null>(null);
  if (q.error && !q.data) return <ErrorBox error={q.error} title="Policies" />;
  if (!q.data) return <Loading what="policies" />;
  const { policies, rejected, denials, violations } = q.data;
  const categories = new Map<string, number>();
  for (const p of policies) categories.set(p.category ?? "?", (categories.get(p.category ?? "?") ?? 0) + 1);
  const amendments = policies.reduce((n, p) => n + Math.max(0, p.versions.length - 1), 0);
  return (
    <div className="page" data-testid="page-policies">
      <h1>Policies</h1>
      <ErrorBox error={q.error} />
      <div className="kpis">
        <Kpi label="policies" value={policies.length} />
        <Kpi label="active" value={policies.filter((p) => p.status === "ACTIVE").length} />
        <Kpi label="amendments" value={amendments} />
        <Kpi label="goals refused" value={rejected.totalCount} tone={rejected.totalCount ? "warn" : undefined} />
        <Kpi label="denials" value={denials.length} tone={denials.length ? "warn" : undefined} />
        <Kpi label="violations" value={violations.length} tone={violations.length ? "warn" : undefined} />
      </div>
      <div className="grid">
        <Card title="Policies and their versions" className="wide">
          {policies.length === 0 ? (
            <Empty>No policy is defined. An admin defines one with the definePolicy mutation (see GraphiQL).</Empty>
          ) : (
            <table className="table" data-testid="policies-table">
              <thead>
                <tr>
                  <th>policy</th>
                  <th>category</th>
                  <th>status</th>
                  <th>version</th>
                  <th>applies to</th>
                  <th>last change</th>
                </tr>
              </thead>
              <tbody>
                {policies.map((p) => {
                  const current = p.versions.find((v) => v.version === p.currentVersion) ?? p.versions.at(-1);
                  return [
                    <tr key={p.id} className="clickable" onClick={() => setOpen(open === p.id ? null : p.id)}>
                      <td>
                        {p.name ?? p.id}
                        <div className="muted small">{p.id}</div>
                      </td>
                      <td>{p.category?.toLowerCase().replace(/_/g, " ")}</td>
                      <td>
                        <Badge status={p.status} />
                      </td>
                      <td className="num">
                        v{p.currentVersion}{" "}
                        {p.versions.length > 1 && (
                          <span className="muted small">({p.versions.length - 1} amendments)</span>
                        )}
                      </td>
                      <td className="small">
                        {current?.appliesToTiers.join(", ").toLowerCase() || "all tiers"}
                        {current?.domains.length ? ` · ${current.domains.join(", ")}` : ""}
                      </td>
                      <td>{ago(current?.at, now)}</td>
                    </tr>,
                    open === p.id && (
                      <tr key={`${p.id}-versions`} className="details">
                        <td colSpan={6}>
                          <ol className="versions">
                            {[...p.versions].reverse().map((v) => (
                              <li key={v.version}>
                                <strong>v{v.version}</strong> {v.version === 1 ? "defined" : "amended"} {time(v.at)},
                                effective {time(v.effectiveFrom)}: {v.description}
                                {v.rationale && <div className="muted">rationale: {v.rationale}</div>}
                                <pre className="rules">{JSON.stringify(v.rules, null, 2)}</pre>
                              </li>
                            ))}
                          </ol>
                        </td>
                      </tr>
                    ),
                  ];
                })}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="By category">
          {[...categories].map(([c, n]) => (
            <div key={c} className="row-between">
              <span>{c.toLowerCase().replace(/_/g, " ")}</span>
              <span className="num">{n}</span>
            </div>
          ))}
          {categories.size === 0 && <Empty>—</Empty>}
        </Card>
        <Card title="Denials (latest policy decisions that denied)" className="wide">
          {denials.length === 0 ? (
            <Empty>No policy denied anything.</Empty>
          ) : (
            <table className="table" data-testid="policy-denials">
              <thead>
                <tr>
                  <th>policy</th>
                  <th>subject</th>
                  <th>goal</th>
                  <th>reasons</th>
                  <th>when</th>
                </tr>
              </thead>
              <tbody>
                {denials.map((d) => (
                  <tr key={d.eventId}>
                    <td className="nowrap">
                      {d.policyId ?? "—"}
                      <div className="muted small">{d.category?.toLowerCase().replace(/_/g, " ")}</div>
                    </td>
                    <td className="small">
                      {d.subjectType} {d.type === "ResourceDenied" && <span className="muted">(resource denied)</span>}
                    </td>
                    <td>{d.goalId ? <a href={href.goal(d.goalId)}>{d.goalId}</a> : "—"}</td>
                    <td className="small">{d.reasons.join("; ")}</td>
                    <td>{ago(d.occurredAt, now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Constitutional violations" className="wide">
          {violations.length === 0 ? (
            <Empty>No constitutional violation was detected.</Empty>
          ) : (
            <table className="table" data-testid="constitutional-violations">
              <thead>
                <tr>
                  <th>principle</th>
                  <th>policy</th>
                  <th>severity</th>
                  <th>enforcement</th>
                  <th>goal</th>
                  <th>when</th>
                </tr>
              </thead>
              <tbody>
                {violations.map((v) => (
                  <tr key={v.eventId}>
                    <td>{v.principle ?? "—"}</td>
                    <td className="nowrap">
                      {v.policyId ?? "—"}
                      {v.policyVersion !== null && <span className="muted"> v{v.policyVersion}</span>}
                    </td>
                    <td>{v.severity && <Badge status={v.severity} />}</td>
                    <td>{v.enforcement && <Badge status={v.enforcement} />}</td>
                    <td>
                      {v.goalId ? <a href={href.goal(v.goalId)}>{v.goalId}</a> : "—"}
                      {v.taskId && <div className="muted small">task {v.taskId}</div>}
                    </td>
                    <td>{ago(v.occurredAt, now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card title="Goals refused (constitutional checks and other refusals)" className="wide">
          {rejected.edges.length === 0 ? (
            <Empty>No goal was refused.</Empty>
          ) : (
            <table className="table" data-testid="refused-goals">
              <thead>
                <tr>
                  <th>goal</th>
                  <th>why</th>
                  <th>when</th>
                </tr>
              </thead>
              <tbody>
                {rejected.edges.map(({ node: g }) => (
                  <tr key={g.id}>
                    <td>
                      <a href={href.goal(g.id)}>{g.title ?? g.id}</a>
                    </td>
                    <td>
                      {g.failure?.code && <Badge status={g.failure.code} />} {g.failure?.reason}
                    </td>
                    <td>{ago(g.submittedAt, now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <p className="muted small">
            Every decision of a goal (the deciding policy version, the versions consulted, the reasons) is in that
            goal's audit timeline.
          </p>
        </Card>
      </div>
    </div>
  );
}
