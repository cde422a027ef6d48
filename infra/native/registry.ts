/**
 * Apicurio Registry (Quarkus fast-jar from Maven Central) serving the Confluent schema registry
 * API under /apis/ccompat/v7. Schemas are stored durably in the stack's PostgreSQL (database
 * `apicurio`): schema ids are written into every Kafka message, so losing them would lose the log.
 */
import fs from "node:fs";
import path from "node:path";
import type { NativeStackConfig } from "../../lib/config.js";
import { probeRegistry } from "../probes.js";
import { newestJava } from "./java.js";
import { POSTGRES_USER } from "./postgres.js";
import { installAtomically, run, say, StackError } from "./process.js";
import { DownloadProgress, mavenProgress } from "./progress.js";
import { pidFileDaemon, stackPaths, type NativeServer } from "./server.js";

/**
 * Apicurio 3.3 needs Java 21; on a machine with only Java 17 the last 3.0 release (built for 17)
 * serves the same Confluent API. A registry's storage should not move between the two.
 */
function pickRelease(native: NativeStackConfig): { version: string; java: string } {
  const modern = newestJava(21);
  if (modern) return { version: native.apicurioVersion, java: modern.bin };
  const java17 = newestJava(17);
  if (java17) return { version: native.apicurioVersionJava17, java: java17.bin };
  throw new StackError("the schema registry needs Java 17 or newer; install a JDK or set SCHEMA_REGISTRY_URL.");
}

/** 3.3 ships a Quarkus fast-jar (quarkus-run.jar); 3.0 a legacy runner jar beside lib/. */
function launcherJar(distDir: string): string {
  const fastJar = path.join(distDir, "quarkus-run.jar");
  if (fs.existsSync(fastJar)) return fastJar;
  const runner = fs.existsSync(distDir) ? fs.readdirSync(distDir).find((f) => f.endsWith("-runner.jar")) : undefined;
  if (!runner)
    throw new StackError(`no quarkus-run.jar or *-runner.jar in ${distDir}; delete that folder and run up again`);
  return path.join(distDir, runner);
}

export function registryServer(native: NativeStackConfig): NativeServer {
  const { dataDir, logFile, pidFile } = stackPaths(native, "registry");
  const release = pickRelease(native);
  const distDir = path.join(native.cacheDir, `apicurio-registry-${release.version}`);
  const url = `http://127.0.0.1:${native.registryPort}/apis/ccompat/v7`;
  return {
    name: "registry",
    title: `Apicurio Registry ${release.version} (Confluent API)`,
    port: native.registryPort,
    dataDir,
    logFile,
    dependsOn: ["postgres"],
    async install() {
      await installAtomically(distDir, async (tmp) => {
        say(`registry: downloading apicurio-registry-app ${release.version} (about 160 MB) from Maven Central`);
        const progress = new DownloadProgress({ label: "[stack] registry: downloading", expectedBytes: 160e6 });
        const maven = mavenProgress(progress);
        // Without -q and -B Maven reports the transfer's bytes (see infra/native/progress.ts).
        await run(
          "mvn",
          [
            "-Dstyle.color=never",
            "dependency:copy",
            `-Dartifact=io.apicurio:apicurio-registry-app:${release.version}:tar.gz:all`,
            `-DoutputDirectory=${tmp}`,
          ],
          { what: "downloading Apicurio Registry with Maven", cwd: tmp, onOutput: maven.onOutput },
        );
        progress.finish(maven.done());
        const archive = path.join(tmp, `apicurio-registry-app-${release.version}-all.tar.gz`);
        await run("tar", ["xzf", archive, "-C", tmp], { what: "unpacking Apicurio Registry" });
        await run("rm", ["-f", archive], { what: "removing the Apicurio archive" });
      });
    },
    ...pidFileDaemon({
      name: "registry",
      home: native.home,
      pidFile,
      logFile,
      startTimeoutMs: 120_000,
      stopGraceMs: 20_000,
      probe: () => probeRegistry(url),
      spec: () => ({
        command: release.java,
        args: [
          `-Xmx${native.registryHeap}`,
          "-XX:+UseSerialGC",
          `-Dpolity.home=${native.home}`,
          "-Dquarkus.http.host=127.0.0.1",
          `-Dquarkus.http.port=${native.registryPort}`,
          // Quarkus also opens a management interface (default 0.0.0.0:9000): keep it on loopback
          // and next to the API port, so two stacks on one machine do not collide.
          "-Dquarkus.management.host=127.0.0.1",
          `-Dquarkus.management.port=${native.registryPort + 1}`,
          "-Dquarkus.log.console.color=false",
          "-Dapicurio.storage.kind=sql",
          "-Dapicurio.storage.sql.kind=postgresql",
          `-Dapicurio.datasource.url=jdbc:postgresql://127.0.0.1:${native.postgresPort}/apicurio`,
          `-Dapicurio.datasource.username=${POSTGRES_USER}`,
          // The local cluster trusts loopback connections; the driver still wants a value.
          "-Dapicurio.datasource.password=trust",
          "-jar",
          launcherJar(distDir),
        ],
        cwd: dataDir,
        logFile,
        pidFile,
      }),
    }),
    probe: () => probeRegistry(url),
  };
}
