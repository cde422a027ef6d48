// The cluster settings (POLITY_KAFKA_NODES, POLITY_TOPIC_REPLICATION_FACTOR, POLITY_TOPIC_MIN_ISR):
// their defaults, what they derive (ports, broker list, stack servers), and the settings that
// cannot hold, refused with the numbers. No server needed.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Admin } from "kafkajs";
import { ConfigError, kafkaNodes, loadConfig, nativeUrls } from "../../lib/config.js";
import { parseNames, serverNames } from "../../infra/native/stack.js";
import { checkReplication, topicReplication } from "../../producers/admin.js";

const HOME = { POLITY_HOME: "/tmp/polity-cluster-config-test" };

function refused(env: NodeJS.ProcessEnv, message: RegExp): void {
  assert.throws(
    () => loadConfig({ ...HOME, ...env }),
    (e: unknown) => e instanceof ConfigError && message.test(e.message),
  );
}

/** An admin whose cluster reports `n` brokers. */
function adminOf(n: number): Admin {
  const brokers = Array.from({ length: n }, (_, i) => ({ nodeId: i + 1, host: "127.0.0.1", port: 9092 + i }));
  return { describeCluster: () => Promise.resolve({ brokers, controller: 1, clusterId: "c" }) } as unknown as Admin;
}

describe("cluster settings", () => {
  test("one node by default: one broker, replication factor and min ISR 1, ports as before", () => {
    const c = loadConfig(HOME);
    assert.equal(c.native.kafkaNodes, 1);
    assert.equal(c.native.kafkaReplicationFactor, 1);
    assert.equal(c.native.kafkaMinInsyncReplicas, 1);
    assert.equal(c.topicReplicationFactor, 1);
    assert.equal(c.topicMinInsyncReplicas, 1);
    assert.equal(c.native.kafkaControllerPort, 19093);
    assert.deepEqual(nativeUrls(c.native).kafkaBrokers, ["127.0.0.1:19092"]);
    assert.deepEqual(serverNames(c), ["postgres", "kafka", "registry", "mongo"]);
  });

  test("three nodes: replication factor 3, min ISR 2, a listener and a controller port each", () => {
    const c = loadConfig({ ...HOME, POLITY_KAFKA_NODES: "3" });
    assert.equal(c.native.kafkaReplicationFactor, 3);
    assert.equal(c.native.kafkaMinInsyncReplicas, 2);
    assert.deepEqual(topicReplication(c), { replicationFactor: 3, minInsyncReplicas: 2 });
    assert.deepEqual(kafkaNodes(c.native), [
      { id: 1, port: 19092, controllerPort: 19192 },
      { id: 2, port: 19093, controllerPort: 19193 },
      { id: 3, port: 19094, controllerPort: 19194 },
    ]);
    assert.deepEqual(nativeUrls(c.native).kafkaBrokers, ["127.0.0.1:19092", "127.0.0.1:19093", "127.0.0.1:19094"]);
    assert.deepEqual(serverNames(c), ["postgres", "kafka-1", "kafka-2", "kafka-3", "registry", "mongo"]);
  });

  test("the fault suite's cluster ports", () => {
    const c = loadConfig({
      ...HOME,
      POLITY_KAFKA_NODES: "3",
      POLITY_KAFKA_PORT: "26092",
      POLITY_KAFKA_CONTROLLER_PORT: "26192",
    });
    assert.deepEqual(
      kafkaNodes(c.native).map((n) => [n.port, n.controllerPort]),
      [
        [26092, 26192],
        [26093, 26193],
        [26094, 26194],
      ],
    );
  });

  test("five nodes keep min ISR 2 and replication factor 3 unless told", () => {
    const c = loadConfig({ ...HOME, POLITY_KAFKA_NODES: "5" });
    assert.deepEqual([c.native.kafkaReplicationFactor, c.native.kafkaMinInsyncReplicas], [3, 2]);
    const d = loadConfig({ ...HOME, POLITY_KAFKA_NODES: "5", POLITY_TOPIC_REPLICATION_FACTOR: "5" });
    assert.deepEqual([d.native.kafkaReplicationFactor, d.native.kafkaMinInsyncReplicas], [5, 2]);
  });

  test("the stack tool names each node, and kafka for all of them", () => {
    const c = loadConfig({ ...HOME, POLITY_KAFKA_NODES: "3" });
    assert.deepEqual(parseNames(["kafka"], c), ["kafka-1", "kafka-2", "kafka-3"]);
    assert.deepEqual(parseNames(["kafka-2"], c), ["kafka-2"]);
    assert.throws(() => parseNames(["kafka-4"], c), /unknown server "kafka-4".*kafka-1, kafka-2, kafka-3/);
    assert.throws(
      () => parseNames(["kafka-1"], loadConfig(HOME)),
      /unknown server "kafka-1"; the stack has postgres, kafka/,
    );
  });

  test("two nodes are refused: their quorum survives no loss", () => {
    refused({ POLITY_KAFKA_NODES: "2" }, /POLITY_KAFKA_NODES=2 cannot survive the loss of a node.*use 1 or 3/);
  });

  test("a node count that is no whole number, or too many", () => {
    refused({ POLITY_KAFKA_NODES: "0" }, /POLITY_KAFKA_NODES=0 is not a whole number of at least 1/);
    refused({ POLITY_KAFKA_NODES: "three" }, /POLITY_KAFKA_NODES=three is not a whole number/);
    refused({ POLITY_KAFKA_NODES: "12" }, /POLITY_KAFKA_NODES=12 is more than the 9/);
  });

  test("a replication factor above the node count", () => {
    refused(
      { POLITY_TOPIC_REPLICATION_FACTOR: "3" },
      /^POLITY_TOPIC_REPLICATION_FACTOR=3 is more than the 1 broker\(s\) of the cluster; set POLITY_KAFKA_NODES=3/,
    );
    refused(
      { POLITY_KAFKA_NODES: "3", POLITY_TOPIC_REPLICATION_FACTOR: "4" },
      /POLITY_TOPIC_REPLICATION_FACTOR=4 is more than the 3 broker\(s\)/,
    );
  });

  test("min.insync.replicas above the replication factor", () => {
    refused(
      { POLITY_KAFKA_NODES: "3", POLITY_TOPIC_REPLICATION_FACTOR: "2", POLITY_TOPIC_MIN_ISR: "3" },
      /POLITY_TOPIC_MIN_ISR=3 is more than the replication factor 2: no write could ever be acknowledged/,
    );
    refused(
      { POLITY_TOPIC_MIN_ISR: "2" },
      /POLITY_TOPIC_MIN_ISR=2 is more than the replication factor 1 \(the default for POLITY_KAFKA_NODES=1\)/,
    );
  });

  test("ports of a cluster that collide are refused", () => {
    refused(
      { POLITY_KAFKA_NODES: "3", POLITY_KAFKA_CONTROLLER_PORT: "19093" },
      /Kafka node 1's controller and Kafka node 2's listener would both take port 19093/,
    );
    refused(
      { POLITY_KAFKA_NODES: "3", POLITY_KAFKA_PORT: "18080" },
      /Kafka node 2's listener and the registry would both take port 18081/,
    );
    refused({ POLITY_KAFKA_NODES: "3", POLITY_KAFKA_PORT: "65534" }, /would get port \d+: .* must stay below 65536/);
  });

  test("a cluster in KAFKA_BROKERS: no node count applies, the broker's defaults unless told", () => {
    const external = { ...HOME, KAFKA_BROKERS: "kafka-a:9092,kafka-b:9092" };
    assert.deepEqual(topicReplication(loadConfig(external)), { replicationFactor: null, minInsyncReplicas: null });
    assert.deepEqual(topicReplication(loadConfig({ ...external, POLITY_TOPIC_REPLICATION_FACTOR: "3" })), {
      replicationFactor: 3,
      minInsyncReplicas: 2,
    });
    assert.deepEqual(topicReplication(loadConfig({ ...external, POLITY_TOPIC_MIN_ISR: "2" })), {
      replicationFactor: null,
      minInsyncReplicas: 2,
    });
    refused(
      { ...external, POLITY_TOPIC_REPLICATION_FACTOR: "2", POLITY_TOPIC_MIN_ISR: "3" },
      /POLITY_TOPIC_MIN_ISR=3 is more than the replication factor 2/,
    );
  });

  test("against the brokers a cluster reports, when topics are created", async () => {
    await checkReplication(adminOf(3), { replicationFactor: 3, minInsyncReplicas: 2 });
    await checkReplication(adminOf(1), { replicationFactor: null, minInsyncReplicas: null });
    await assert.rejects(
      checkReplication(adminOf(1), { replicationFactor: 3, minInsyncReplicas: 2 }, 0),
      (e: unknown) =>
        e instanceof ConfigError &&
        /^POLITY_TOPIC_REPLICATION_FACTOR=3 is more than the 1 broker\(s\) of the cluster \(1@127\.0\.0\.1:9092\); lower it or add brokers/.test(
          e.message,
        ),
    );
    await assert.rejects(
      checkReplication(adminOf(2), { replicationFactor: null, minInsyncReplicas: 3 }, 0),
      /POLITY_TOPIC_MIN_ISR=3 is more than the 2 broker\(s\) of the cluster/,
    );
  });

  test("a cluster still registering its brokers is given time, then refused with how long it had", async () => {
    // Its first answers list one broker, then all three (a cluster started a moment ago).
    const answers = [adminOf(1), adminOf(1), adminOf(3)];
    let asked = 0;
    const registering = {
      describeCluster: () => answers[Math.min(asked++, answers.length - 1)]!.describeCluster(),
    } as unknown as Admin;
    await checkReplication(registering, { replicationFactor: 3, minInsyncReplicas: 2 }, 5_000);
    assert.equal(asked, 3, "asked again until three brokers were listed");
    await assert.rejects(
      checkReplication(adminOf(1), { replicationFactor: 3, minInsyncReplicas: null }, 1_000),
      /is more than the 1 broker\(s\) of the cluster \(1@127\.0\.0\.1:9092\); lower it or add brokers \(the cluster lists only brokers that are up, after 1 s for more to register\)/,
    );
  });
});
