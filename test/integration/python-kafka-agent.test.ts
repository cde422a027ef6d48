/**
 * An agent in another language: examples/python-kafka-agent/agent.py (confluent-kafka and fastavro
 * with the schema registry), run as a child process on the venv infra/python.ts makes, works for a
 * hierarchy on the real broker and registry. Its records decode with Polity's codec and pass the
 * hash-chain check; a malformed record of its lands in the dead-letter topic with the reason; and
 * it is watched like an internal worker: SIGKILLed mid-task, it stops heartbeating, the health
 * monitor declares it failed, and its mayor hands the task to another Python agent, which
 * completes it once.
 *
 * The kill is here rather than in the fault suite (test/faults): the fault is the agent's process,
 * not a server's, so it needs no stack of its own, and it costs a few seconds of this file.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { ensurePythonAgentEnv, PYTHON_AGENT_DIR } from "../../infra/python.js";
import { scanLog, type LogRecord } from "../../projections/audit/log.js";
import { verifyTopics } from "../../projections/audit/verify.js";
import { CHAIN_HEADER, headerText } from "../../producers/chain.js";
import { submitGoal } from "../../producers/commands.js";
import { HEADER } from "../../producers/envelope.js";
import type { RunningHierarchy } from "../../processors/hierarchy.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { physicalTopic } from "../../schemas/catalog.js";
import type { MessageMap } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { deployment, task, type TestDeployment } from "../support/hierarchy.js";
import { urls } from "../support/infra.js";
import { LogWatcher } from "../support/watch.js";

const who = { tenantId: "t-python", userId: "tester" };
const MAYOR = "aamas-mayor-ops-1";
/** Declared external by the topology: the platform registers it, the Python program acts for it. */
const AGENT_A = "aamas-worker-ops-py-1";
const HEARTBEAT_MS = 500;

const topology: TopologyConfig = {
  simulated: { seed: 1, meanDurationMs: 0, failureRate: 0 },
  heartbeatIntervalMs: HEARTBEAT_MS,
  topologies: {
    aamas: {
      domains: { ops: { mayors: 1, workers: { py: { count: 1, capacity: 1, executor: "external" } } } },
    },
  },
};

const progress = (line: string) => process.stderr.write(`[python-agent test] ${line}\n`);

interface PythonProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves once the process has exited. */
  gone: Promise<void>;
}

/** What the Python agent computes: a digest of the task's text. */
function expectedResult(text: string): { result: string; sha256: string } {
  const sha256 = createHash("sha256").update(text).digest("hex");
  return { result: `python: ${text.split(/\s+/).filter(Boolean).length} words, sha256 ${sha256.slice(0, 16)}`, sha256 };
}

describe("a Python agent over Kafka and Avro", () => {
  let python = "";
  let d: TestDeployment;
  let hierarchy: RunningHierarchy;
  /** The agents and dead-letter topics, which the deployment's watcher does not read. */
  let side: LogWatcher;
  const children: PythonProcess[] = [];
  let malformed: { partition: number; offset: number } | null = null;
  /** The first test's goal, which A's restart in the last test must not report again. */
  let firstGoal = "";
  /** When the first test stopped agent A. */
  let stoppedAt = 0;
  const failuresOf = (agentId: string, since: number) =>
    agentEvents("AgentFailed", agentId).filter((e) => e.envelope.occurredAt.getTime() >= since);

  const env = () => ({
    ...process.env,
    KAFKA_BROKERS: urls.kafkaBrokers.join(","),
    SCHEMA_REGISTRY_URL: urls.schemaRegistryUrl,
    POLITY_TOPIC_PREFIX: d.prefix,
    PYTHONUNBUFFERED: "1",
  });

  /** Starts agent.py; resolves once it has read its log and says it is ready. */
  const startAgent = async (args: string[]): Promise<PythonProcess> => {
    const child = spawn(python, [path.join(PYTHON_AGENT_DIR, "agent.py"), ...args], {
      env: env(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const collect = (chunk: Buffer) => (out = (out + chunk.toString()).slice(-32_000));
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const p = { child, output: () => out, gone };
    children.push(p);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent.py not ready after 30 s:\n${out}`)), 30_000);
      const check = () => {
        if (out.includes('{"ready"')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on("data", check);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`agent.py exited with ${code} before it was ready:\n${out}`));
      });
    });
    return p;
  };

  /** Waits for `p`; a failure names what the goal's log and the agents printed. */
  const explained = async <T>(p: Promise<T>, goalId: string): Promise<T> => {
    try {
      return await p;
    } catch (e) {
      const log = d.watch.types(goalId).join(", ");
      const printed = children.map((c) => c.output()).join("\n---\n");
      throw new Error(`${(e as Error).message}\ngoal's log: ${log}\nagents printed:\n${printed}`, { cause: e });
    }
  };

  /** Waits until the hierarchy's own agent directory has the agent available. */
  const availableInDirectory = async (agentId: string) => {
    const { directory } = hierarchy.feed;
    for (const deadline = Date.now() + 10_000; ;) {
      const agent = directory.get(agentId);
      if (agent && directory.isAvailable(agent)) return;
      assert.ok(Date.now() < deadline, `the platform's directory does not have ${agentId} available`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const stopAgent = async (p: PythonProcess, sig: NodeJS.Signals) => {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(sig);
    await p.gone;
  };

  const events = <T extends keyof MessageMap>(goalId: string, type: T): MessageMap[T][] =>
    d.watch
      .of(goalId)
      .filter((e) => e.type === type)
      .map((e) => e.value as MessageMap[T]);
  const agentEvents = <T extends keyof MessageMap>(type: T, agentId: string): MessageMap[T][] =>
    side.seen
      .map((s) => s.event)
      .filter((e) => e.type === type && (e.value as { agentId?: string }).agentId === agentId)
      .map((e) => e.value as MessageMap[T]);

  /** Raw records of the tasks and agents topics, as written. */
  const rawRecords = async (): Promise<LogRecord[]> => {
    const records: LogRecord[] = [];
    await scanLog(d.kafka, {
      topics: ["polity.tasks.events", "polity.agents.events"].map((t) => physicalTopic(t, d.prefix)),
      onBatch: (batch) => void records.push(...batch),
    });
    return records;
  };

  /** `polity audit verify` over the tasks and agents topics; only the deliberately malformed record is unsealed. */
  const assertChainsHold = async () => {
    const tasksTopic = physicalTopic("polity.tasks.events", d.prefix);
    const report = await verifyTopics(d.kafka, [tasksTopic, physicalTopic("polity.agents.events", d.prefix)]);
    const problems = report.problems.filter(
      (p) =>
        !(
          malformed &&
          p.kind === "UNSEALED" &&
          p.topic === tasksTopic &&
          p.partition === malformed.partition &&
          p.offset === String(malformed.offset)
        ),
    );
    assert.deepEqual(problems, [], "the hash chains of the tasks and agents topics hold");
    assert.ok(report.linked > 0);
  };

  before(async () => {
    progress("preparing the Python environment (.polity/py; the first time this installs from PyPI)");
    python = await ensurePythonAgentEnv();
    progress("starting the hierarchy");
    d = await deployment(topology, "python", [], { heartbeats: true });
    hierarchy = await d.start();
    side = await LogWatcher.start(d.kafka, d.codec, d.prefix, ["polity.agents.events", "polity.deadletters"]);
  });

  after(async () => {
    for (const p of children) await stopAgent(p, "SIGKILL").catch(() => undefined);
    await side?.stop().catch(() => undefined);
    await d?.stop().catch(() => undefined);
  });

  test("a goal's task is done by the Python agent; its records decode with Polity's codec and keep the hash chain", async () => {
    progress("starting agent.py");
    const agent = await startAgent([
      "--agent",
      AGENT_A,
      "--superior",
      MAYOR,
      "--domain",
      "ops",
      "--specialization",
      "py",
    ]);
    assert.match(agent.output(), /registered already/, "the topology registered it; it must not register again");
    await side.until(
      "a heartbeat of the Python agent",
      () => agentEvents("AgentHeartbeat", AGENT_A).length > 0,
      20_000,
    );

    const text = "count the words of this description";
    const { goalId } = await submitGoal(d.writer, who, {
      title: "Python work",
      tasks: [task("digest", "ops", "py", [], { description: text })],
    });
    firstGoal = goalId;
    const final = await explained(d.watch.final(goalId, 30_000), goalId);
    assert.equal(final.type, "GoalCompleted", JSON.stringify(final.value));

    const [done, ...more] = events(goalId, "TaskCompleted");
    assert.equal(more.length, 0);
    const expected = expectedResult(text);
    assert.equal(done!.agentId, AGENT_A);
    assert.equal(done!.result, expected.result);
    assert.equal(done!.outputs.sha256, expected.sha256);
    assert.equal(done!.cost, "0.0050");
    const assigned = events(goalId, "TaskAssigned").find((e) => e.assigneeTier === "WORKER")!;
    for (const type of ["TaskAccepted", "TaskStarted", "TaskCompleted"] as const) {
      const [e, twice] = events(goalId, type);
      assert.ok(e && !twice, `one ${type}`);
      assert.equal(e.envelope.tenantId, who.tenantId);
      assert.equal(e.envelope.correlationId, goalId);
      assert.equal(e.envelope.causationId, assigned.envelope.eventId);
      assert.deepEqual({ ...e.envelope.actor }, { id: AGENT_A, tier: "WORKER" });
      assert.deepEqual({ ...e.envelope.aggregate }, { type: "TASK", id: "digest", version: -1 });
    }
    assert.equal(events(goalId, "TaskStarted")[0]!.executor, "external");

    // The records as Python wrote them: Polity's headers, a link to the task's stream, and bytes
    // that Polity's codec decodes to the same event.
    const ids = new Set(
      (["TaskAccepted", "TaskStarted", "TaskCompleted"] as const).map((t) => events(goalId, t)[0]!.envelope.eventId),
    );
    const records = await rawRecords();
    const mine = records.filter((r) => ids.has(headerText(r.headers, HEADER.eventId) ?? ""));
    assert.equal(mine.length, 3);
    for (const r of mine) {
      const decoded = await d.codec.decode(r.value);
      assert.equal(headerText(r.headers, HEADER.type), decoded.type);
      assert.equal(headerText(r.headers, HEADER.correlationId), goalId);
      assert.equal(headerText(r.headers, HEADER.causationId), assigned.envelope.eventId);
      assert.equal(r.key?.toString(), goalId);
      assert.equal(headerText(r.headers, CHAIN_HEADER.aggregate), "TASK:digest");
      assert.ok(headerText(r.headers, CHAIN_HEADER.prev), `${decoded.type} links to the stream before it`);
      // Same trace as the assignment it answers.
      assert.equal(
        headerText(r.headers, HEADER.traceparent)?.split("-")[1],
        headerText(
          records.find((x) => headerText(x.headers, HEADER.eventId) === assigned.envelope.eventId)!.headers,
          HEADER.traceparent,
        )?.split("-")[1],
      );
    }
    const beat = records.find(
      (r) => headerText(r.headers, HEADER.type) === "AgentHeartbeat" && r.key?.toString() === AGENT_A,
    )!;
    const decodedBeat = await d.codec.decode(beat.value);
    assert.equal(decodedBeat.value.capacity, 1);
    await assertChainsHold();

    assert.deepEqual(agentEvents("AgentFailed", AGENT_A), [], "a heartbeating agent is not declared failed");

    progress("stopping agent.py (SIGTERM)");
    stoppedAt = Date.now();
    await stopAgent(agent, "SIGTERM");
    assert.equal(agent.child.exitCode, 0, agent.output());
  });

  test("a malformed record from Python lands in the dead-letter topic with the reason", async () => {
    const child = spawn(python, [path.join(PYTHON_AGENT_DIR, "agent.py"), "--send-malformed"], {
      env: env(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    assert.equal(code, 0, out);
    const sent = JSON.parse(out.trim().split("\n").pop()!) as { topic: string; partition: number; offset: number };
    malformed = sent;
    assert.equal(sent.topic, physicalTopic("polity.tasks.events", d.prefix));

    const letters = await side.until(
      "the malformed record's dead letter",
      () => {
        const found = side.seen
          .map((s) => s.event)
          .filter(
            (e): e is Extract<PolityEvent, { type: "DeadLetter" }> =>
              e.type === "DeadLetter" &&
              e.value.originalTopic === sent.topic &&
              e.value.originalPartition === sent.partition &&
              e.value.originalOffset === String(sent.offset),
          );
        return found.length > 0 ? found : false;
      },
      20_000,
    );
    const letter = letters[0]!.value;
    assert.equal(letter.errorKind, "UNDECODABLE");
    assert.match(letter.reason, /body does not decode with schema id \d+ \(TaskCompleted\)/);
    assert.equal(letter.originalValue?.subarray(5).toString("hex"), "ffffffff0f");
  });

  test("killed mid-task, the Python agent is declared failed and another completes its task, once", async () => {
    progress("restarting agent A, whose tasks take 60 s");
    // Stopped at the end of the first test, A is declared failed once its heartbeats are overdue
    // (a goal submitted meanwhile would be rejected: no py worker is up); its heartbeats bring it back.
    await side.until("A, stopped, declared failed", () => failuresOf(AGENT_A, stoppedAt).length > 0, 20_000);
    const restartedAt = Date.now();
    const a = await startAgent(
      ["--agent", AGENT_A, "--superior", MAYOR, "--domain", "ops", "--specialization", "py"].concat([
        "--work-seconds",
        "60",
      ]),
    );
    await side.until(
      "A recovered",
      () => agentEvents("AgentRecovered", AGENT_A).some((e) => e.envelope.occurredAt.getTime() >= restartedAt),
      20_000,
    );
    // The president checks a goal's specializations against its own directory, which may read it later.
    await availableInDirectory(AGENT_A);
    const text = "work that outlives its worker";
    const { goalId } = await submitGoal(d.writer, who, {
      title: "Python failover",
      tasks: [task("long", "ops", "py", [], { description: text })],
    });
    await explained(
      d.watch.until("agent A starting the task", () =>
        events(goalId, "TaskStarted").find((e) => e.agentId === AGENT_A),
      ),
      goalId,
    );
    // A second Python agent of the same specialization, which registers itself under the mayor.
    const agentB = `py-b-${randomUUID().slice(0, 6)}`;
    progress(`starting agent B (${agentB})`);
    const b = await startAgent([
      "--agent",
      agentB,
      "--superior",
      MAYOR,
      "--domain",
      "ops",
      "--specialization",
      "py",
      "--heartbeat-ms",
      String(HEARTBEAT_MS),
    ]);
    assert.match(b.output(), new RegExp(`registered ${agentB} under ${MAYOR}`));
    await side.until("B's heartbeat", () => agentEvents("AgentHeartbeat", agentB).length > 0, 20_000);
    await availableInDirectory(agentB);

    progress("SIGKILL agent A mid-task");
    const killedAt = Date.now();
    assert.deepEqual(failuresOf(AGENT_A, restartedAt), [], "A was not declared failed while it was alive");
    await stopAgent(a, "SIGKILL");
    const failed = await side.until("A declared failed", () => failuresOf(AGENT_A, killedAt)[0]);
    assert.match(failed.reason, /no heartbeat/);
    assert.ok(failed.inFlightTasks.includes(`${goalId}/long`), "its last heartbeat named the task it held");
    const final = await explained(d.watch.final(goalId, 30_000), goalId);
    assert.equal(final.type, "GoalCompleted", JSON.stringify(final.value));

    const [moved] = events(goalId, "TaskReassigned");
    assert.equal(moved?.fromAgentId, AGENT_A);
    assert.equal(moved?.toAgentId, agentB);
    assert.equal(moved?.cause, "AGENT_FAILED");
    const completed = events(goalId, "TaskCompleted");
    assert.equal(completed.length, 1, "completed once");
    assert.equal(completed[0]!.agentId, agentB);
    assert.equal(completed[0]!.attempt, 2);
    assert.equal(completed[0]!.result, expectedResult(text).result);
    assert.equal(
      events(goalId, "TaskStarted").filter((e) => e.agentId === AGENT_A).length,
      1,
      "A started the first attempt once",
    );
    assert.deepEqual(agentEvents("AgentFailed", agentB), []);
    // A's restart read its earlier report in the log and did not make it again.
    for (const type of ["TaskAccepted", "TaskStarted", "TaskCompleted"] as const)
      assert.equal(events(firstGoal, type).length, 1, `${type} of the first goal`);
    await assertChainsHold();
    await stopAgent(b, "SIGTERM");
  });
});
