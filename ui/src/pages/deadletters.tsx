/**
 * Dead letters: messages a consumer could not decode or apply, set aside on polity.deadletters with
 * their original bytes and the reason. The page asks the schema whether the gateway offers a
 * `deadLetters` query and shows every scalar field of it that exists, so it follows the API as it
 * grows; without one it says so.
 */
import { useMemo } from "react";
import { Card, Empty, ErrorBox, Kpi, Loading, ago, time } from "../components";
import { useNow, useQuery } from "../session";

const SCHEMA = /* GraphQL */ `
  query DeadLetterSchema {
    query: __type(name: "Query") {
      fields {
        name
      }
    }
    letter: __type(name: "DeadLetter") {
      fields {
        name
        type {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
            }
          }
        }
      }
    }
  }
`;

interface TypeRef {
  kind: string;
  name: string | null;
  ofType: TypeRef | null;
}
interface SchemaData {
  query: { fields: { name: string }[] } | null;
  letter: { fields: { name: string; type: TypeRef }[] } | null;
}

const leaf = (t: TypeRef | null): TypeRef | null => (t && t.kind === "NON_NULL" ? leaf(t.ofType) : t);
const PREFERRED = [
  "failedAt",
  "originalTopic",
  "originalPartition",
  "originalOffset",
  "consumerGroup",
  "errorKind",
  "reason",
];

export function DeadLettersPage() {
  const now = useNow(10_000);
  const schema = useQuery<SchemaData>(SCHEMA);
  const fields = useMemo(() => {
    const f = schema.data?.letter?.fields ?? [];
    const scalars = f.filter((x) => {
      const t = leaf(x.type);
      return t && (t.kind === "SCALAR" || t.kind === "ENUM");
    });
    return scalars
      .map((x) => x.name)
      .sort((a, b) => (PREFERRED.indexOf(a) + 1 || 99) - (PREFERRED.indexOf(b) + 1 || 99));
  }, [schema.data]);
  const offered = !!schema.data?.query?.fields.some((f) => f.name === "deadLetters") && fields.length > 0;
  const letters = useQuery<{ deadLetters: Record<string, unknown>[] }>(
    `query DeadLetters { deadLetters { ${fields.join(" ")} } }`,
    {},
    { skip: !offered, pollMs: 10_000 },
  );

  if (schema.error) return <ErrorBox error={schema.error} title="Dead letters" />;
  if (!schema.data) return <Loading what="dead letters" />;
  const rows = letters.data?.deadLetters ?? [];
  const when = fields.find((f) => /At$/.test(f));
  return (
    <div className="page" data-testid="page-deadletters">
      <h1>Dead letters</h1>
      <p className="muted">
        Messages a consumer could not decode or apply are set aside on <code>polity.deadletters</code> with their
        original bytes, topic, partition, offset and the reason, and reading goes on.
      </p>
      {!offered ? (
        <Card title="Not offered by this gateway">
          <Empty>
            This gateway's GraphQL schema has no <code>deadLetters</code> query yet, so the dashboard cannot list them.
            Meanwhile the processes count them on their <code>/metrics</code> endpoints.
          </Empty>
        </Card>
      ) : (
        <>
          <ErrorBox error={letters.error} />
          <div className="kpis">
            <Kpi
              label="dead letters"
              value={letters.data ? rows.length : "…"}
              tone={rows.length ? "warn" : undefined}
            />
            {when && <Kpi label="latest" value={rows[0] ? ago(String(rows[0][when]), now) : "—"} />}
          </div>
          <Card title="Set aside">
            {!letters.data ? (
              <Loading what="dead letters" />
            ) : rows.length === 0 ? (
              <Empty>None: every message was read.</Empty>
            ) : (
              <table className="table" data-testid="deadletters-table">
                <thead>
                  <tr>
                    {fields.map((f) => (
                      <th key={f}>{f}</th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r, i) => (
                    <tr key={i}>
                      {fields.map((f) => (
                        <td key={f} className={f === "reason" ? "" : "nowrap"}>
                          {f.endsWith("At") ? time(String(r[f])) : String(r[f] ?? "—")}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Card>
        </>
      )}
    </div>
  );
}
