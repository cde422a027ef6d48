/**
 * A private PostgreSQL cluster owned by the project: its own data dir, a port of ours, TCP on
 * 127.0.0.1 only, no unix socket. The server binaries come from Debian's postgresql package,
 * installed with apt-get when absent. PostgreSQL refuses to run as root, so under root the cluster
 * belongs to the `postgres` user the package creates and the server is started through setpriv
 * (which execs, so the pid we record is the postmaster's).
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import type { NativeStackConfig } from "../../lib/config.js";
import { probePostgres } from "../probes.js";
import { run, say, StackError } from "./process.js";
import { aptInstall, isRoot } from "./apt.js";
import { pidFileDaemon, stackPaths, type NativeServer } from "./server.js";

/** Databases the stack serves: Polity's own read models, and the registry's durable storage. */
export const POSTGRES_DATABASES = ["polity", "apicurio", "ferretdb"] as const;
export const POSTGRES_USER = "polity";

function findBinDir(): string | null {
  const root = "/usr/lib/postgresql";
  if (!fs.existsSync(root)) return null;
  const versions = fs
    .readdirSync(root)
    .filter((v) => fs.existsSync(path.join(root, v, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? path.join(root, versions[0]!, "bin") : null;
}

/** Prefix that runs a command as the cluster's owner (postgres under root, else ourselves). */
const asOwner = (exe: string, args: string[]): [string, string[]] =>
  isRoot() ? ["setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", exe, ...args]] : [exe, args];

export function postgresServer(native: NativeStackConfig): NativeServer {
  const { logFile, pidFile, dataDir: linkDir } = stackPaths(native, "postgres");
  // Where the cluster really lives (linkDir, or its target when linkDir is a link).
  const realDir = () => (fs.existsSync(linkDir) ? fs.realpathSync(linkDir) : linkDir);
  const clusterDir = () => path.join(realDir(), "data");
  const url = (db: string) => `postgres://${POSTGRES_USER}@127.0.0.1:${native.postgresPort}/${db}`;
  let binDir = findBinDir();
  const bin = (name: string) => {
    if (binDir === null) throw new StackError("PostgreSQL binaries are not installed; run `npm run stack up`.");
    return path.join(binDir, name);
  };

  /**
   * Under root the cluster must be reachable by the postgres user. When the repo sits below a
   * folder it cannot enter (say /root), the data lives under /var/lib/polity and the repo's
   * .polity/postgres is a link to it.
   */
  async function prepareDataDir(): Promise<void> {
    fs.mkdirSync(path.dirname(linkDir), { recursive: true });
    if (!isRoot()) {
      fs.mkdirSync(linkDir, { recursive: true });
      return;
    }
    if (!fs.existsSync(linkDir)) {
      const [cmd, args] = asOwner("test", ["-x", path.dirname(linkDir)]);
      const reachable = await run(cmd, args, { what: "checking the postgres user's access" }).then(
        () => true,
        () => false,
      );
      if (reachable) {
        fs.mkdirSync(linkDir);
      } else {
        const hash = createHash("sha1").update(native.home).digest("hex").slice(0, 12);
        const outside = path.join("/var/lib/polity", hash, "postgres");
        fs.mkdirSync(outside, { recursive: true });
        fs.symlinkSync(outside, linkDir);
        say(
          `postgres: ${path.dirname(linkDir)} is closed to the postgres user; the cluster lives in ${outside} (linked)`,
        );
      }
    }
    await run("chown", ["postgres:postgres", realDir()], { what: "giving the cluster folder to postgres" });
  }

  async function initOnce(): Promise<void> {
    if (fs.existsSync(path.join(clusterDir(), "PG_VERSION"))) return;
    say(`postgres: initdb in ${clusterDir()}`);
    const [cmd, args] = asOwner(bin("initdb"), [
      "-D",
      clusterDir(),
      "-U",
      POSTGRES_USER,
      "--auth=trust",
      "-E",
      "UTF8",
      "--no-locale",
    ]);
    await run(cmd, args, { what: "initdb of the Polity PostgreSQL cluster", cwd: "/" });
  }

  async function ensureDatabases(): Promise<void> {
    const client = new pg.Client({ connectionString: url("postgres") });
    await client.connect();
    try {
      for (const db of POSTGRES_DATABASES) {
        const exists = await client.query("select 1 from pg_database where datname = $1", [db]);
        if (exists.rowCount === 0) await client.query(`create database ${db}`);
      }
    } finally {
      await client.end();
    }
  }

  const daemon = pidFileDaemon({
    name: "postgres",
    home: native.home,
    pidFile,
    logFile,
    startTimeoutMs: 60_000,
    // SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, data is flushed.
    stopSignal: "SIGINT",
    stopGraceMs: 30_000,
    marker: () => clusterDir(),
    probe: () => probePostgres(url("postgres")),
    async beforeStart() {
      await prepareDataDir();
      await initOnce();
    },
    spec: () => {
      const [command, args] = asOwner(bin("postgres"), [
        "-D",
        clusterDir(),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `port=${native.postgresPort}`,
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
      ]);
      return { command, args, cwd: "/", logFile, pidFile };
    },
  });

  return {
    name: "postgres",
    get title() {
      return `PostgreSQL ${binDir ? path.basename(path.dirname(binDir)) : "(not installed)"}`;
    },
    port: native.postgresPort,
    get dataDir() {
      return realDir();
    },
    logFile,
    dependsOn: [],
    async install() {
      if (binDir !== null) return;
      if (!isRoot()) {
        throw new StackError(
          "PostgreSQL server binaries not found under /usr/lib/postgresql. Install them " +
            "(Debian: `sudo apt-get install postgresql`) or set DATABASE_URL to a server of yours.",
        );
      }
      say("postgres: installing Debian's postgresql package (apt-get)");
      await aptInstall(["postgresql"], "[stack] postgres: apt-get downloading");
      binDir = findBinDir();
      if (binDir === null)
        throw new StackError("apt-get installed postgresql but no pg_ctl appeared under /usr/lib/postgresql.");
    },
    isRunning: daemon.isRunning,
    async start() {
      await daemon.start();
      await ensureDatabases();
    },
    stop: daemon.stop,
    probe: () => probePostgres(url("polity")),
  };
}
