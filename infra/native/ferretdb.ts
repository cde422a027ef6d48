/**
 * FerretDB v1 as the MongoDB-wire store, on its PostgreSQL backend (database `ferretdb` of the
 * stack's cluster). The SQLite backend was tried first and measured unfit for the state read model:
 * it pushes only a bare `_id` equality down to SQLite, so a filter like `{ _id, "_pos.x": {...} }`
 * or `{ goalId }` scanned the whole collection (150 ms per operation at 5 000 documents, against
 * 2-3 ms on PostgreSQL), an update cost 20 ms, and a bulkWrite of 100+ matching updates deadlocked
 * its connection pool. The PostgreSQL backend pushes equality filters down as jsonb conditions.
 * Built from the Go module proxy. `go install ...@version` cannot be used: the proxy
 * refuses the module's version list (which go install reads for deprecation notices), and a build
 * whose main module is FerretDB panics without build/version/version.txt. So the module is
 * downloaded by exact version, copied, given its version file, and built.
 */
import fs from "node:fs";
import path from "node:path";
import type { NativeStackConfig } from "../../lib/config.js";
import { probeMongo } from "../probes.js";
import { POSTGRES_USER } from "./postgres.js";
import { installAtomically, run, say } from "./process.js";
import { DownloadProgress, watchDirectoryGrowth } from "./progress.js";
import { pidFileDaemon, stackPaths, type NativeServer } from "./server.js";

const MODULE = "github.com/FerretDB/FerretDB";

export function ferretdbServer(native: NativeStackConfig): NativeServer {
  const { dataDir, logFile, pidFile } = stackPaths(native, "mongo");
  const distDir = path.join(native.cacheDir, `ferretdb-${native.ferretdbVersion}`);
  const binary = path.join(distDir, "ferretdb");
  const url = `mongodb://127.0.0.1:${native.mongoPort}/polity`;
  return {
    name: "mongo",
    title: `FerretDB ${native.ferretdbVersion} (MongoDB wire, PostgreSQL backend)`,
    port: native.mongoPort,
    dataDir,
    logFile,
    dependsOn: ["postgres"],
    async install() {
      await installAtomically(distDir, async (tmp) => {
        say(`mongo: building FerretDB v${native.ferretdbVersion} with Go (first time only, about 2 minutes)`);
        // Go prints no transfer progress: report the growth of its module download cache instead.
        const modCache = (await run("go", ["env", "GOMODCACHE"], { what: "go env GOMODCACHE" })).trim();
        const stopWatching = watchDirectoryGrowth(
          path.join(modCache, "cache", "download"),
          new DownloadProgress({ label: "[stack] mongo: Go modules downloaded" }),
        );
        try {
          const info = JSON.parse(
            await run("go", ["mod", "download", "-json", `${MODULE}@v${native.ferretdbVersion}`], {
              what: "downloading the FerretDB module",
              cwd: tmp,
            }),
          ) as { Dir: string };
          const src = path.join(tmp, "src");
          // The module cache is read-only; cp copies it and chmod opens the copy for the version file.
          await run("cp", ["-r", info.Dir, src], { what: "copying the FerretDB module" });
          await run("chmod", ["-R", "u+w", src], { what: "making the FerretDB copy writable" });
          fs.writeFileSync(path.join(src, "build/version/version.txt"), `v${native.ferretdbVersion}\n`);
          await run("go", ["build", "-trimpath", "-o", path.join(tmp, "ferretdb"), "./cmd/ferretdb"], {
            what: "building FerretDB",
            cwd: src,
            env: { ...process.env, CGO_ENABLED: "0" },
          });
          fs.rmSync(src, { recursive: true, force: true });
        } finally {
          stopWatching();
        }
      });
    },
    ...pidFileDaemon({
      name: "mongo",
      home: native.home,
      pidFile,
      logFile,
      startTimeoutMs: 30_000,
      stopGraceMs: 10_000,
      probe: () => probeMongo(url),
      async beforeStart() {
        fs.mkdirSync(dataDir, { recursive: true });
      },
      spec: () => ({
        command: binary,
        args: [
          `--listen-addr=127.0.0.1:${native.mongoPort}`,
          "--handler=postgresql",
          `--postgresql-url=postgres://${POSTGRES_USER}@127.0.0.1:${native.postgresPort}/ferretdb`,
          `--state-dir=${dataDir}`,
          "--debug-addr=-",
          "--telemetry=disable",
          "--log-format=text",
        ],
        cwd: dataDir,
        logFile,
        pidFile,
      }),
    }),
    probe: () => probeMongo(url),
  };
}
