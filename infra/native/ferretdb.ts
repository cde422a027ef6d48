/**
 * FerretDB v1 as the MongoDB-wire store, with its SQLite backend so it does not depend on
 * PostgreSQL. Built from the Go module proxy. `go install ...@version` cannot be used: the proxy
 * refuses the module's version list (which go install reads for deprecation notices), and a build
 * whose main module is FerretDB panics without build/version/version.txt. So the module is
 * downloaded by exact version, copied, given its version file, and built.
 */
import fs from "node:fs";
import path from "node:path";
import type { NativeStackConfig } from "../../lib/config.js";
import { probeMongo } from "../probes.js";
import { installAtomically, run, say } from "./process.js";
import { pidFileDaemon, stackPaths, type NativeServer } from "./server.js";

const MODULE = "github.com/FerretDB/FerretDB";

export function ferretdbServer(native: NativeStackConfig): NativeServer {
  const { dataDir, logFile, pidFile } = stackPaths(native, "mongo");
  const distDir = path.join(native.cacheDir, `ferretdb-${native.ferretdbVersion}`);
  const binary = path.join(distDir, "ferretdb");
  const url = `mongodb://127.0.0.1:${native.mongoPort}/polity`;
  return {
    name: "mongo",
    title: `FerretDB ${native.ferretdbVersion} (MongoDB wire, SQLite backend)`,
    port: native.mongoPort,
    dataDir,
    logFile,
    dependsOn: [],
    async install() {
      await installAtomically(distDir, async (tmp) => {
        say(`mongo: building FerretDB v${native.ferretdbVersion} with Go (first time only, about 2 minutes)`);
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
        fs.mkdirSync(path.join(dataDir, "sqlite"), { recursive: true });
      },
      spec: () => ({
        command: binary,
        args: [
          `--listen-addr=127.0.0.1:${native.mongoPort}`,
          "--handler=sqlite",
          `--sqlite-url=file:${path.join(dataDir, "sqlite")}/`,
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
