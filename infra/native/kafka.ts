/**
 * Apache Kafka in KRaft combined mode (each node is broker and controller), run from the jars
 * Maven Central serves. One node by default (server "kafka"): transactions work on it because
 * every internal topic's replication factor and min ISR are 1. With POLITY_KAFKA_NODES=n (3 or
 * more) the stack runs servers kafka-1..kafka-n on loopback, a quorum of n voters, each with its
 * own ports (node 1's plus i - 1), data dir, log and pid file; topics and the internal offsets and
 * transaction state topics get POLITY_TOPIC_REPLICATION_FACTOR and POLITY_TOPIC_MIN_ISR.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { kafkaNodes, type NativeStackConfig } from "../../lib/config.js";
import { probeKafka } from "../probes.js";
import { installAtomically, run, runningPid, say, StackError, writeIfChanged } from "./process.js";
import { DownloadProgress, mavenProgress } from "./progress.js";
import { pidFileDaemon, stackPaths, type KafkaNodeName, type NativeServer, type ServerName } from "./server.js";

/** The single node (POLITY_KAFKA_NODES=1, the default). */
export function kafkaServer(native: NativeStackConfig, repoRoot: string): NativeServer {
  return kafkaNodeServer(native, repoRoot, 1);
}

/** The stack's server name of Kafka node `id`: "kafka" for the single node, kafka-<id> in a cluster. */
export function kafkaServerName(native: NativeStackConfig, id: number): ServerName {
  return native.kafkaNodes === 1 ? "kafka" : (`kafka-${id}` as KafkaNodeName);
}

/** Every Kafka node of the stack, as servers: ["kafka"] alone, or kafka-1..kafka-n. */
export function kafkaServers(native: NativeStackConfig, repoRoot: string): NativeServer[] {
  return kafkaNodes(native).map((node) => kafkaNodeServer(native, repoRoot, node.id));
}

function kafkaNodeServer(native: NativeStackConfig, repoRoot: string, id: number): NativeServer {
  const cluster = native.kafkaNodes > 1;
  const name = kafkaServerName(native, id);
  const node = kafkaNodes(native)[id - 1]!;
  const { dataDir, logFile, pidFile } = stackPaths(native, name);
  const distDir = path.join(native.cacheDir, `kafka-${native.kafkaVersion}`);
  const libs = path.join(distDir, "libs");
  const logDir = path.join(dataDir, "log");
  const propsFile = path.join(dataDir, "server.properties");
  const log4jFile = path.join(dataDir, "log4j.properties");
  const brokers = [`127.0.0.1:${node.port}`];
  const classpath = `${libs}/*`;
  const rf = native.kafkaReplicationFactor;
  const isr = native.kafkaMinInsyncReplicas;

  function writeConfig(): void {
    const voters = kafkaNodes(native)
      .map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`)
      .join(",");
    writeIfChanged(
      propsFile,
      [
        "# Written by infra/native/kafka.ts on each start; edit POLITY_* settings instead.",
        "process.roles=broker,controller",
        `node.id=${id}`,
        `controller.quorum.voters=${voters}`,
        `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}`,
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        `log.dirs=${logDir}`,
        "num.partitions=3",
        // One node: every replication factor and min ISR is 1. A cluster: the configured ones, for
        // topics made without asking (auto-created, or by a client that leaves it to the broker)
        // and for the consumer offsets and transaction state.
        ...(cluster
          ? [
              `default.replication.factor=${rf}`,
              `min.insync.replicas=${isr}`,
              `offsets.topic.replication.factor=${rf}`,
              `transaction.state.log.replication.factor=${rf}`,
              `transaction.state.log.min.isr=${isr}`,
            ]
          : [
              "default.replication.factor=1",
              "offsets.topic.replication.factor=1",
              "transaction.state.log.replication.factor=1",
              "transaction.state.log.min.isr=1",
            ]),
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

  /**
   * KRaft storage is formatted once with a cluster id; meta.properties marks it done. The nodes of
   * a cluster share one id, kept in the stack home (read or made before any await, so nodes
   * formatted side by side agree).
   */
  async function formatOnce(): Promise<void> {
    if (fs.existsSync(path.join(logDir, "meta.properties"))) return;
    const clusterId = cluster ? sharedClusterId(native.home) : newClusterId();
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

  /** A home whose Kafka runs with another node count would answer our probe on our port: refuse. */
  function refuseOtherLayout(): void {
    const others = otherLayoutNames(native).filter(
      (other) => runningPid(stackPaths(native, other).pidFile, native.home) !== null,
    );
    if (others.length > 0)
      throw new StackError(
        `${name}: this stack home (${native.home}) runs Kafka as ${others.join(", ")}, started with another ` +
          `POLITY_KAFKA_NODES than ${native.kafkaNodes}; stop it first with the setting it was started with ` +
          `(npm run stack -- down kafka).`,
      );
    if (cluster && rf > native.kafkaNodes)
      throw new StackError(
        `POLITY_TOPIC_REPLICATION_FACTOR=${rf} is more than the ${native.kafkaNodes} broker(s) of the cluster.`,
      );
  }

  return {
    name,
    title: cluster
      ? `Apache Kafka ${native.kafkaVersion} (KRaft node ${id} of ${native.kafkaNodes})`
      : `Apache Kafka ${native.kafkaVersion} (KRaft)`,
    port: node.port,
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
      name,
      home: native.home,
      pidFile,
      logFile,
      // A cluster's node answers once a quorum has formed: its peers start beside it.
      startTimeoutMs: cluster ? 150_000 : 90_000,
      stopGraceMs: 30_000,
      probe: () => probeKafka(brokers),
      async beforeStart() {
        refuseOtherLayout();
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

/** The cluster id the nodes of a stack home share: read, or made and kept, synchronously. */
function sharedClusterId(home: string): string {
  const file = path.join(home, "kafka-cluster-id");
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    const id = newClusterId();
    fs.mkdirSync(home, { recursive: true });
    fs.writeFileSync(file, `${id}\n`);
    return id;
  }
}

/** The Kafka server names a stack home would have with another node count than this one. */
function otherLayoutNames(native: NativeStackConfig): ServerName[] {
  if (native.kafkaNodes > 1) return ["kafka"];
  const run = path.join(native.home, "run");
  const names = fs.existsSync(run) ? fs.readdirSync(run) : [];
  return names.map((f) => /^(kafka-\d+)\.pid$/.exec(f)?.[1]).filter((n): n is KafkaNodeName => n !== undefined);
}

/** What the KRaft metadata quorum reports (Admin.describeMetadataQuorum, as kafka-metadata-quorum). */
export interface QuorumStatus {
  /** The active controller: in combined mode, the node of that id. */
  leaderId: number;
  leaderEpoch: number;
  highWatermark: number;
  voters: { id: number; logEndOffset: number; lastCaughtUpTimestamp: number }[];
}

/**
 * The kafka-metadata-quorum tool is not among the broker's runtime jars, but the admin API it
 * calls is (kafka-clients): a Java source file run by the java launcher asks it.
 */
const QUORUM_STATUS_JAVA = `import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.QuorumInfo;

public class QuorumStatus {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    props.put("request.timeout.ms", "5000");
    props.put("default.api.timeout.ms", "15000");
    try (Admin admin = Admin.create(props)) {
      QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get();
      StringBuilder out = new StringBuilder();
      out.append("{\\"leaderId\\":").append(q.leaderId());
      out.append(",\\"leaderEpoch\\":").append(q.leaderEpoch());
      out.append(",\\"highWatermark\\":").append(q.highWatermark());
      out.append(",\\"voters\\":[");
      for (int i = 0; i < q.voters().size(); i++) {
        QuorumInfo.ReplicaState r = q.voters().get(i);
        if (i > 0) out.append(",");
        out.append("{\\"id\\":").append(r.replicaId());
        out.append(",\\"logEndOffset\\":").append(r.logEndOffset());
        out.append(",\\"lastCaughtUpTimestamp\\":").append(r.lastCaughtUpTimestamp().orElse(-1L));
        out.append("}");
      }
      System.out.println(out.append("]}"));
    }
  }
}
`;

/** Asks the native cluster's metadata quorum for its leader (the active controller) and voters. */
export async function kafkaQuorum(native: NativeStackConfig): Promise<QuorumStatus> {
  const dir = path.join(native.home, "kafka-tools");
  const source = path.join(dir, "QuorumStatus.java");
  const log4j = path.join(dir, "log4j.properties");
  writeIfChanged(source, QUORUM_STATUS_JAVA);
  writeIfChanged(
    log4j,
    [
      "log4j.rootLogger=ERROR, stderr",
      "log4j.appender.stderr=org.apache.log4j.ConsoleAppender",
      "log4j.appender.stderr.Target=System.err",
      "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout",
      "log4j.appender.stderr.layout.ConversionPattern=%p %m%n",
      "",
    ].join("\n"),
  );
  const libs = path.join(native.cacheDir, `kafka-${native.kafkaVersion}`, "libs");
  const bootstrap = kafkaNodes(native)
    .map((n) => `127.0.0.1:${n.port}`)
    .join(",");
  // Compiled once where a JDK's javac is found (a JVM start per call after that); else run as a source file.
  const classes = path.join(dir, "classes");
  const compiled = path.join(classes, "QuorumStatus.class");
  const fresh = () => fs.existsSync(compiled) && fs.statSync(compiled).mtimeMs >= fs.statSync(source).mtimeMs;
  if (!fresh())
    await run("javac", ["-cp", `${libs}/*`, "-d", classes, source], {
      what: "compiling QuorumStatus.java",
      cwd: dir,
    }).catch(() => undefined);
  const program = fresh()
    ? ["-cp", `${classes}${path.delimiter}${libs}/*`, "QuorumStatus"]
    : ["-cp", `${libs}/*`, source];
  const out = await run(
    "java",
    ["-Xmx128m", "-XX:TieredStopAtLevel=1", `-Dlog4j.configuration=file:${log4j}`, ...program, bootstrap],
    { what: "asking the KRaft metadata quorum for its leader", cwd: dir },
  );
  const line = out.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new StackError(`the quorum status tool printed no answer:\n${out}`);
  return JSON.parse(line) as QuorumStatus;
}

/**
 * The classpath of the configured Kafka release (its jars downloaded first when missing), for a
 * broker run outside the stack: test/integration/kafka-security.test.ts starts a SASL_SSL one.
 */
export async function kafkaClasspath(native: NativeStackConfig, repoRoot: string): Promise<string> {
  await kafkaServer(native, repoRoot).install();
  return `${path.join(native.cacheDir, `kafka-${native.kafkaVersion}`, "libs")}/*`;
}
