/**
 * Apache Kafka in KRaft combined mode (one node that is broker and controller), run from the jars
 * Maven Central serves. Transactions work on one node because every internal topic's replication
 * factor and min ISR are 1.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { NativeStackConfig } from "../../lib/config.js";
import { probeKafka } from "../probes.js";
import { installAtomically, run, say, writeIfChanged } from "./process.js";
import { DownloadProgress, mavenProgress } from "./progress.js";
import { pidFileDaemon, stackPaths, type NativeServer } from "./server.js";

export function kafkaServer(native: NativeStackConfig, repoRoot: string): NativeServer {
  const { dataDir, logFile, pidFile } = stackPaths(native, "kafka");
  const distDir = path.join(native.cacheDir, `kafka-${native.kafkaVersion}`);
  const libs = path.join(distDir, "libs");
  const logDir = path.join(dataDir, "log");
  const propsFile = path.join(dataDir, "server.properties");
  const log4jFile = path.join(dataDir, "log4j.properties");
  const brokers = [`127.0.0.1:${native.kafkaPort}`];
  const classpath = `${libs}/*`;

  function writeConfig(): void {
    writeIfChanged(
      propsFile,
      [
        "# Written by infra/native/kafka.ts on each start; edit POLITY_* settings instead.",
        "process.roles=broker,controller",
        "node.id=1",
        `controller.quorum.voters=1@127.0.0.1:${native.kafkaControllerPort}`,
        `listeners=PLAINTEXT://127.0.0.1:${native.kafkaPort},CONTROLLER://127.0.0.1:${native.kafkaControllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${native.kafkaPort}`,
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        `log.dirs=${logDir}`,
        "num.partitions=3",
        "default.replication.factor=1",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        // The log is the system of record: no time-based deletion unless a topic asks for it.
        "log.retention.hours=-1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "",
      ].join("\n"),
    );
    writeIfChanged(
      log4jFile,
      [
        "log4j.rootLogger=INFO, stdout",
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
        "log4j.logger.kafka.request.logger=WARN",
        "log4j.logger.org.apache.kafka.raft=WARN",
        "",
      ].join("\n"),
    );
  }

  /** KRaft storage is formatted once with a cluster id; meta.properties marks it done. */
  async function formatOnce(): Promise<void> {
    if (fs.existsSync(path.join(logDir, "meta.properties"))) return;
    const clusterId = newClusterId();
    say(`kafka: formatting KRaft storage in ${logDir} (cluster ${clusterId})`);
    await run(
      "java",
      [
        "-cp",
        classpath,
        `-Dlog4j.configuration=file:${log4jFile}`,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        clusterId,
        "-c",
        propsFile,
      ],
      { what: "formatting Kafka storage" },
    );
  }

  return {
    name: "kafka",
    title: `Apache Kafka ${native.kafkaVersion} (KRaft)`,
    port: native.kafkaPort,
    dataDir,
    logFile,
    dependsOn: [],
    async install() {
      await installAtomically(distDir, async (tmp) => {
        say(`kafka: resolving kafka_2.13:${native.kafkaVersion} and its runtime jars from Maven Central`);
        // Without -q and -B Maven reports each transfer's bytes, which mavenProgress turns into
        // progress lines; the ~48 MB estimate is Kafka 3.9's runtime jars (what Maven has cached is
        // not downloaded again, so the last line may stop short of it).
        const progress = new DownloadProgress({ label: "[stack] kafka: downloading jars", expectedBytes: 48e6 });
        const maven = mavenProgress(progress);
        await run(
          "mvn",
          [
            "-Dstyle.color=never",
            "-f",
            path.join(repoRoot, "infra/native/kafka/pom.xml"),
            `-Dkafka.version=${native.kafkaVersion}`,
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            `-DoutputDirectory=${path.join(tmp, "libs")}`,
          ],
          { what: "downloading Kafka with Maven", onOutput: maven.onOutput },
        );
        progress.finish(maven.done());
      });
    },
    ...pidFileDaemon({
      name: "kafka",
      home: native.home,
      pidFile,
      logFile,
      startTimeoutMs: 90_000,
      stopGraceMs: 30_000,
      probe: () => probeKafka(brokers),
      async beforeStart() {
        writeConfig();
        await formatOnce();
      },
      spec: () => ({
        command: "java",
        args: [
          `-Xmx${native.kafkaHeap}`,
          "-Xms128m",
          "-XX:+UseG1GC",
          "-Djava.awt.headless=true",
          `-Dlog4j.configuration=file:${log4jFile}`,
          `-Dkafka.logs.dir=${path.dirname(logFile)}`,
          "-cp",
          classpath,
          "kafka.Kafka",
          propsFile,
        ],
        cwd: dataDir,
        logFile,
        pidFile,
      }),
    }),
    probe: () => probeKafka(brokers),
  };
}

/**
 * A KRaft cluster id: 16 random bytes in base64url, as Kafka's own Uuid.randomUuid, which also
 * draws again when the text starts with "-": StorageTool's argument parser would take such an id
 * for an option (`-t -Zdd...`: "expected one argument"), failing one fresh stack in 64.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}
