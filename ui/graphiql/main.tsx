/**
 * GraphiQL, bundled with its styles (served at GET /graphql to a browser, no CDN). Queries and
 * mutations go over HTTP, subscriptions over graphql-ws, with the dashboard's token when there is
 * one (the headers tab can set another).
 */
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/style.css";
import { buildClientSchema, type GraphQLSchema, type IntrospectionQuery } from "graphql";
import { createRoot } from "react-dom/client";

const token = (() => {
  try {
    return localStorage.getItem("polity.token");
  } catch {
    return null; // storage refused: no token to hand over
  }
})();
const authorization = token ? `Bearer ${token}` : undefined;
const fetcher = createGraphiQLFetcher({
  url: `${location.origin}/graphql`,
  subscriptionUrl: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
  wsConnectionParams: authorization ? { authorization } : undefined,
});

const DEFAULT_QUERY = `# Polity's GraphQL API. The dashboard's token is in the headers tab (sign in at /ui);
# subscriptions run over WebSocket. Try:
query Goals {
  me { subject role tenantId }
  goals(first: 5) {
    totalCount
    edges { node { id title status progress tasksTotal } }
  }
}
`;

/**
 * The schema comes from the gateway's /ui/schema.json: GraphiQL's own introspection query nests
 * deeper than the gateway's query depth limit allows. Without it, GraphiQL asks itself.
 */
async function schema(): Promise<GraphQLSchema | undefined> {
  try {
    const res = await fetch("/ui/schema.json");
    if (!res.ok) return undefined;
    return buildClientSchema((await res.json()) as IntrospectionQuery);
  } catch {
    return undefined;
  }
}

void schema().then((s) =>
  createRoot(document.getElementById("graphiql")!).render(
    <GraphiQL
      fetcher={fetcher}
      schema={s}
      defaultQuery={DEFAULT_QUERY}
      defaultHeaders={authorization ? JSON.stringify({ Authorization: authorization }, null, 2) : undefined}
      shouldPersistHeaders={false}
    />,
  ),
);
