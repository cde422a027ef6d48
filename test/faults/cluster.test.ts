/**
 * Fault injection on a three-node KRaft cluster (the fault suite's second stack of its own:
 * POLITY_KAFKA_NODES=3, topics and internal topics replicated 3 times with min.insync.replicas 2):
 * the broker leading the goals topic SIGKILLed and restarted, a broker frozen (SIGSTOP) for 20 s,
 * the active controller SIGKILLed and restarted, and every tier run as two processes with one of
 * each killed. Runs through `npm run test:faults` only, which starts that stack for this file.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import kafkajs from "kafkajs";
import { kafkaQuorum, kafkaServerName } from "../../infra/native/kafka.js";
import { isAlive, runningPid } from "../../infra/native/process.js";
import { stackPaths } from "../../infra/native/server.js";
import { kafkaNodes, loadConfig } from "../../lib/config.js";
import { ROLES } from "../../processors/hierarchy.js";
import { physicalTopic } from "../../schemas/catalog.js";
import {
  faultRound,
  faultStackConfig,
  FAULTS_ON,
  Platform,
  procKey,
  SKIP,
  startServers,
  type ProcKey,
} from "./support.js";

const FREEZE_MS = 20_000;
const GOALS = "polity.goals.events";

const nodes = FAULTS_ON ? loadConfig().native.kafkaNodes : 1;
const CLUSTER_SKIP =
  SKIP || (nodes < 3 ? "runs on the fault suite's three-node stack only (`npm run test:faults`)" : false);

/** The pid of a Kafka node of this stack home, or null when it is down. */
function nodePid(id: number): number | null {
  const config = faultStackConfig();
  return runningPid(stackPaths(config.native, kafkaServerName(config.native, id)).pidFile, config.native.home);
}

function signalNode(id: number, signal: NodeJS.Signals): number {
  const pid = nodePid(id);
  if (pid === null) throw new Error(`kafka node ${id} is not running`);
  process.kill(pid, signal);
  return pid;
}

async function killNode(id: number): Promise<void> {
  const pid = signalNode(id, "SIGKILL");
  while (isAlive(pid) && nodePid(id) !== null) await sleep(50);
}

async function restartNode(id: number): Promise<void> {
  await startServers([kafkaServerName(faultStackConfig().native, id)]);
}

async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(250);
  }
}

describe("faults: a three-node Kafka cluster", { skip: CLUSTER_SKIP }, () => {
  let p: Platform;
  /** How the goals topic and the internal topics are replicated, checked once the platform runs. */
  let replication: Record<string, unknown> = {};

  /**
   * The leader of each partition of the goals topic, as the cluster reports it now; asked of the
   * nodes but `avoid` (a frozen node would hold the request for the client's whole timeout).
   */
  async function goalLeaders(avoid?: number): Promise<Map<number, number>> {
    const brokers = kafkaNodes(faultStackConfig().native)
      .filter((n) => n.id !== avoid)
      .map((n) => `127.0.0.1:${n.port}`);
    const kafka = new kafkajs.Kafka({
      clientId: "faults-cluster-probe",
      brokers,
      logLevel: kafkajs.logLevel.NOTHING,
      connectionTimeout: 1_000,
      requestTimeout: 2_000,
      retry: { retries: 0 },
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [physicalTopic(GOALS, p.prefix)] });
      return new Map(topics[0]!.partitions.map((part) => [part.partitionId, part.leader]));
    } finally {
      await admin.disconnect();
    }
  }

  /** The node leading most of the goals topic's partitions (the lowest id on a tie) and those partitions. */
  async function goalsLeader(): Promise<{ id: number; partitions: number[] }> {
    const leaders = await goalLeaders();
    const by = new Map<number, number[]>();
    for (const [partition, leader] of leaders) by.set(leader, [...(by.get(leader) ?? []), partition]);
    const [id, partitions] = [...by].sort((a, b) => b[1].length - a[1].length || a[0] - b[0])[0]!;
    return { id, partitions };
  }

  /** Resolves once no partition of the goals topic is led by `id`; the time that took. */
  async function leadershipMoved(id: number, since: number, timeoutMs = 60_000): Promise<number> {
    await until(
      `leadership of ${GOALS} moved off node ${id}`,
      async () => ([...(await goalLeaders(id)).values()].every((l) => l !== id && l >= 0) ? true : null),
      timeoutMs,
    );
    return Date.now() - since;
  }

  before(async () => {
    p = await Platform.start("cluster");
    const admin = p.kafka.admin();
    await admin.connect();
    try {
      const { brokers } = await admin.describeCluster();
      const goals = physicalTopic(GOALS, p.prefix);
      const { topics } = await admin.fetchTopicMetadata({
        topics: [goals, "__consumer_offsets", "__transaction_state"],
      });
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: goals, configNames: ["min.insync.replicas"] }],
      });
      const rf = Object.fromEntries(
        topics.map((t) => [t.name.replace(p.prefix, ""), [...new Set(t.partitions.map((x) => x.replicas.length))]]),
      );
      replication = {
        brokers: brokers.length,
        replicationFactors: rf,
        goalsMinIsr: resources[0]!.configEntries.find((e) => e.configName === "min.insync.replicas")?.configValue,
      };
    } finally {
      await admin.disconnect();
    }
    assert.equal(replication.brokers, 3, "three brokers");
    assert.deepEqual(
      replication.replicationFactors,
      { [GOALS]: [3], __consumer_offsets: [3], __transaction_state: [3] },
      "topics and internal topics replicated 3 times",
    );
    assert.equal(replication.goalsMinIsr, "2", "min.insync.replicas 2");
  });

  after(async () => {
    // Whatever happened, leave every node running and thawed for the stack's own shutdown.
    const config = faultStackConfig();
    for (const node of kafkaNodes(config.native)) {
      const pid = nodePid(node.id);
      if (pid !== null) process.kill(pid, "SIGCONT");
    }
    await startServers(["kafka"]).catch(() => undefined);
    await p?.stop();
  });

  it("SIGKILL the broker leading the goals topic, then restart it", async () => {
    let killed: { id: number; partitions: number[] } | undefined;
    let failoverMs = 0;
    let downMs = 0;
    await faultRound(p, {
      fault: "SIGKILL goals-leader broker (3 nodes)",
      async inject() {
        killed = await goalsLeader();
        const t0 = Date.now();
        await killNode(killed.id);
        failoverMs = await leadershipMoved(killed.id, t0);
        await restartNode(killed.id);
        downMs = Date.now() - t0;
      },
      extra: () => ({ replication, killedNode: killed, failoverMs, brokerDownMs: downMs }),
    });
  });

  it("a broker frozen with SIGSTOP for 20 s", async () => {
    let frozen: { id: number; partitions: number[] } | undefined;
    let failoverMs: number | null = null;
    await faultRound(p, {
      fault: "broker SIGSTOP 20 s (3 nodes)",
      async inject() {
        frozen = await goalsLeader();
        const id = frozen.id;
        const t0 = Date.now();
        signalNode(id, "SIGSTOP");
        // Thawed at 20 s whatever the failover does; the failover is timed beside it.
        const moved = leadershipMoved(id, t0, FREEZE_MS).then(
          (ms) => (ms <= FREEZE_MS ? ms : null),
          () => null,
        );
        await sleep(FREEZE_MS);
        signalNode(id, "SIGCONT");
        failoverMs = await moved;
        await restartNode(frozen.id); // running already: resolves once it answers again
      },
      extra: () => ({ frozenNode: frozen, failoverMs }),
    });
  });

  it("SIGKILL the active KRaft controller, then restart it", async () => {
    let controller: number | undefined;
    let newController: number | undefined;
    let electionMs = 0;
    await faultRound(p, {
      fault: "SIGKILL active controller (3 nodes)",
      async inject() {
        const quorum = await kafkaQuorum(faultStackConfig().native);
        controller = quorum.leaderId;
        const t0 = Date.now();
        await killNode(controller);
        newController = await until(
          "a new active controller",
          async () => {
            const q = await kafkaQuorum(faultStackConfig().native);
            return q.leaderId >= 0 && q.leaderId !== controller ? q.leaderId : null;
          },
          60_000,
        );
        electionMs = Date.now() - t0;
        await restartNode(controller);
      },
      extra: () => ({ controller, newController, electionMs }),
    });
  });

  it("two processes per tier, one of each killed", async () => {
    // The second instances join their tiers' consumer groups before the workload (two at a time:
    // tsx compiling in many processes at once starves the machine's two cores).
    for (let i = 0; i < ROLES.length; i += 2)
      await Promise.all(ROLES.slice(i, i + 2).map((r) => p.spawnInstance(r, 2)));
    const retired: ProcKey[] = [...ROLES];
    await faultRound(p, {
      fault: `SIGKILL 1 of 2 processes of each tier (${ROLES.length} tiers)`,
      retired,
      async inject() {
        await Promise.all(retired.map((key) => p.retire(key)));
      },
      extra: () => ({ survivors: ROLES.map((r) => procKey(r, 2)) }),
    });
  });
});
