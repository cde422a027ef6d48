/**
 * The one way Polity processes open a PostgreSQL pool. When the server goes away, the pool drops
 * its idle clients and emits "error", and a client in use emits "error" itself; with no listener
 * either event ends the process. Here both are logged instead: the next query fails and its
 * caller retries (projections) or answers 503 (gateway readiness) until PostgreSQL is back.
 */
import pg from "pg";

export function pgPool(connectionString: string, max: number, log: (line: string) => void = console.error): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
  pool.on("error", (e) => log(`PostgreSQL: idle connection lost (${e.message}); it is reopened on the next query`));
  // A client checked out when the server goes away emits "error" itself (the pool listens only to
  // idle ones); its query in flight rejects, and its holder releases it and tries again.
  pool.on("connect", (client) =>
    client.on("error", (e) => log(`PostgreSQL: connection in use lost (${e.message}); the query in flight fails`)),
  );
  return pool;
}
