/**
 * The one way Polity processes open a PostgreSQL pool. When the server goes away, the pool drops
 * its idle clients and emits "error"; with no listener that event ends the process. Here it is
 * logged instead: the next query fails and its caller retries (projections) or answers 503
 * (gateway readiness) until PostgreSQL is back.
 */
import pg from "pg";

export function pgPool(connectionString: string, max: number, log: (line: string) => void = console.error): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
  pool.on("error", (e) => log(`PostgreSQL: idle connection lost (${e.message}); it is reopened on the next query`));
  return pool;
}
