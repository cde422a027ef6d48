/**
 * Versioned migrations of the analytics schema. Files `NNN_name.sql` in ./migrations are applied in
 * version order, each in its own transaction with `search_path` set to the target schema, so the
 * same files build the live schema ("analytics"), a test's throwaway schema or a rebuild's fresh one.
 * Applied files are recorded with a SHA-256 checksum; an applied file that changed afterwards stops
 * everything, because the database would no longer match what the files describe.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type pg from "pg";

export const DEFAULT_SCHEMA = "analytics";
export const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

export interface Migration {
  version: number;
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  schema: string;
  /** Files applied by this call, in order. */
  applied: string[];
  /** Files found already applied (with a matching checksum). */
  alreadyApplied: string[];
}

const FILE_NAME = /^(\d{3})_([a-z0-9_]+)\.sql$/;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Quotes a schema name after checking it, since it is spliced into SQL text. */
export function schemaIdent(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(
      `invalid analytics schema name "${schema}": use lower-case letters, digits and underscores, starting with a letter or underscore (at most 63 characters)`,
    );
  }
  return `"${schema}"`;
}

export function checksumOf(sql: string): string {
  return createHash("sha256").update(sql).digest("hex");
}

/** Reads the migration files in version order; refuses names it cannot order and duplicate versions. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const out: Migration[] = [];
  for (const file of (await readdir(dir)).sort()) {
    if (!file.endsWith(".sql")) continue;
    const m = FILE_NAME.exec(file);
    if (!m)
      throw new Error(`migration file ${dir}${file} is not named NNN_name.sql (e.g. 005_add_index.sql); rename it`);
    const version = Number(m[1]);
    if (out.some((o) => o.version === version)) {
      throw new Error(`two migration files in ${dir} have version ${m[1]}; give ${file} the next free number`);
    }
    const sql = await readFile(`${dir}${file}`, "utf8");
    out.push({ version, name: m[2]!, file, sql, checksum: checksumOf(sql) });
  }
  return out;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/**
 * Brings `schema` up to date: creates it and its schema_migrations table if missing, checks every
 * applied file is unchanged, then applies the pending ones in order. Concurrent callers on the same
 * schema are serialised by an advisory lock, so two processes starting together apply each file once.
 */
export async function migrate(
  pool: pg.Pool,
  schema = DEFAULT_SCHEMA,
  options: { dir?: string; log?: (line: string) => void } = {},
): Promise<MigrationResult> {
  const ident = schemaIdent(schema);
  const migrations = await loadMigrations(options.dir);
  const client = await pool.connect();
  const lockKey = `polity.analytics.migrate.${schema}`;
  try {
    await client.query("SELECT pg_advisory_lock(hashtext($1))", [lockKey]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ident}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${ident}.schema_migrations (
         version integer PRIMARY KEY,
         name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now(),
         checksum text NOT NULL
       )`,
    );
    const { rows } = await client.query<AppliedRow>(
      `SELECT version, name, checksum FROM ${ident}.schema_migrations ORDER BY version`,
    );
    const byVersion = new Map(migrations.map((m) => [m.version, m]));
    for (const row of rows) {
      const file = byVersion.get(row.version);
      if (!file) {
        throw new Error(
          `schema "${schema}" has migration ${String(row.version).padStart(3, "0")}_${row.name} applied, but ${MIGRATIONS_DIR} has no file with that version: this code is older than the database; deploy the newer code or rebuild into a fresh schema`,
        );
      }
      if (file.checksum !== row.checksum) {
        throw new Error(
          `migration ${file.file} was changed after it was applied to schema "${schema}" (checksum ${row.checksum.slice(0, 12)}… recorded, ${file.checksum.slice(0, 12)}… on disk): restore the file as applied and put the change in a new migration file`,
        );
      }
    }
    const done = new Set(rows.map((r) => r.version));
    const result: MigrationResult = {
      schema,
      applied: [],
      alreadyApplied: migrations.filter((m) => done.has(m.version)).map((m) => m.file),
    };
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query("BEGIN");
      try {
        // SET LOCAL: the path reverts at commit, so the pooled connection is left as it was.
        await client.query(`SET LOCAL search_path TO ${ident}`);
        await client.query(m.sql);
        await client.query(`INSERT INTO ${ident}.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, [
          m.version,
          m.name,
          m.checksum,
        ]);
        await client.query("COMMIT");
      } catch (e) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw new Error(
          `migration ${m.file} failed on schema "${schema}" and was rolled back: ${(e as Error).message}`,
          {
            cause: e,
          },
        );
      }
      result.applied.push(m.file);
      options.log?.(`analytics: applied ${m.file} to schema ${schema}`);
    }
    return result;
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext($1))", [lockKey]).catch(() => undefined);
    client.release();
  }
}
