/**
 * Dead letters: messages a consumer could not decode or apply, set aside on polity.deadletters with
 * their original bytes and the reason, as the gateway's `deadLetters` query reads them back from the
 * topic (of every tenant, so for admin and operator tokens only).
 */
import { Card, Empty, ErrorBox, Kpi, Loading, ago, time } from "../components";
import { useNow, useQuery } from "../session";

const DEAD_LETTERS = /* GraphQL */ `
  query DeadLetters {
    deadLetters(limit: 200) {
      failedAt
      originalTopic
      originalPartition
      originalOffset
      consumerGroup
      errorKind
      reason
    }
  }
`;

interface DeadLetter {
  failedAt: string;
  originalTopic: string;
  originalPartition: number;
  originalOffset: string;
  consumerGroup: string;
  errorKind: string;
  reason: string;
}

export function DeadLettersPage() {
  const now = useNow(10_000);
  const q = useQuery<{ deadLetters: DeadLetter[] }>(DEAD_LETTERS, {}, { pollMs: 10_000 });
  if (q.error && !q.data) return <ErrorBox error={q.error} title="Dead letters" />;
  if (!q.data) return <Loading what="dead letters" />;
  const rows = q.data.deadLetters;
  const kinds = new Set(rows.map((r) => r.errorKind));
  return (
    <div className="page" data-testid="page-deadletters">
      <h1>Dead letters</h1>
      <p className="muted">
        Messages a consumer could not decode or apply are set aside on <code>polity.deadletters</code> with their
        original bytes, topic, partition, offset and the reason, and reading goes on. They are of every tenant.
      </p>
      <ErrorBox error={q.error} />
      <div className="kpis">
        <Kpi label="dead letters" value={rows.length} tone={rows.length ? "warn" : undefined} />
        <Kpi label="kinds" value={kinds.size} />
        <Kpi label="latest" value={rows[0] ? ago(rows[0].failedAt, now) : "—"} />
      </div>
      <Card title="Set aside (newest first)">
        {rows.length === 0 ? (
          <Empty>None: every message was read.</Empty>
        ) : (
          <table className="table" data-testid="deadletters-table">
            <thead>
              <tr>
                <th>failed</th>
                <th>topic</th>
                <th>partition</th>
                <th>offset</th>
                <th>consumer group</th>
                <th>kind</th>
                <th>reason</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr key={`${i}|${r.consumerGroup}|${r.originalTopic}|${r.originalPartition}|${r.originalOffset}`}>
                  <td className="nowrap">{time(r.failedAt)}</td>
                  <td className="nowrap">{r.originalTopic}</td>
                  <td className="num">{r.originalPartition}</td>
                  <td className="num">{r.originalOffset}</td>
                  <td className="nowrap">{r.consumerGroup}</td>
                  <td className="nowrap">{r.errorKind}</td>
                  <td>{r.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </div>
  );
}
