/**
 * What the fault-injection suite shares: control of the fault stack's servers, a platform whose
 * every processor role, read model and gateway runs in a child process of its own (so each can be
 * SIGKILLed), a workload, and one round of "workload, fault, recovery, checks" that records a row
 * of the results table.
 *
 * Runs only under `npm run test:faults` (POLITY_FAULTS=1), which starts a stack of its own: these
 * tests stop servers, and must never stop the shared stack on the default ports.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Kafka } from "kafkajs";
import type { Db } from "mongodb";
import { watchedMongoClient, type WatchedMongo } from "../../lib/mongo.js";
import pg from "pg";
import { assertSeparateStack, logsDir, type FaultRow } from "../../infra/faults.js";
import { spawnScript } from "../../lib/child.js";
import { stackDown, stackUp } from "../../infra/native/stack.js";
import type { ServerName } from "../../infra/native/server.js";
import { loadConfig, repoRoot, requireUrls, urlsToEnv, type InfraUrls } from "../../lib/config.js";
import { kafkaClient } from "../../lib/kafka.js";
import type { Role } from "../../processors/domain/directory.js";
import { ROLES, TIER_TOPICS } from "../../processors/hierarchy.js";
import { ensureTopics, registerSchemas } from "../../producers/admin.js";
import { submitGoal } from "../../producers/commands.js";
import { EventWriter } from "../../producers/writer.js";
import { checkpointKey, type Checkpoints } from "../../projections/host.js";
import { StateStore } from "../../projections/mongo/state-store.js";
import { AnalyticsStore } from "../../projections/pg/analytics-store.js";
import { rebuild } from "../../projections/rebuild.js";
import { PROJECTED_TOPICS, readModelTargets, type ReadModel } from "../../projections/run.js";
import { DEAD_LETTER_TOPIC, physicalTopic } from "../../schemas/catalog.js";
import { Codec } from "../../schemas/codec.js";
import type { DeadLetter } from "../../schemas/reader.js";
import { task, testTopology } from "../support/hierarchy.js";
import { LogWatcher } from "../support/watch.js";

/** True under `npm run test:faults`; every fault test is skipped otherwise (e.g. under `npm test`). */
export const FAULTS_ON = process.env.POLITY_FAULTS === "1";
export const SKIP = FAULTS_ON ? false : "fault injection runs only through `npm run test:faults` (a stack of its own)";

export const MODELS: ReadModel[] = ["analytics", "state"];

// ---- the fault stack's servers --------------------------------------------------------------

export function faultStackConfig() {
  if (!FAULTS_ON) throw new Error("refusing to stop or start servers outside `npm run test:faults`");
  const config = loadConfig();
  assertSeparateStack(config);
  return config;
}

export async function stopServers(names: ServerName[]): Promise<void> {
  await stackDown(faultStackConfig(), names);
}

export async function startServers(names: ServerName[]): Promise<void> {
  await stackUp(faultStackConfig(), names);
}

// ---- memory -----------------------------------------------------------------------------------

/** Resident set size of a live process, in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status);
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

/**
 * How far a process's RSS may be above its level before the fault, once the system has recovered:
 * 1.5 times that level, or 64 MiB more, whichever is larger. Node's RSS moves without any leak:
 * V8 grows its heap before it collects (nothing outside the process can force a collection), a
 * restarted process re-reads its state from the log, and kafkajs keeps fetch buffers per
 * partition. Those stay within tens of MiB. What the check is for is a fault that leaves memory
 * behind: buffers of a 20 s outage kept after it, a retry loop piling up promises, a client
 * leaked per reconnect; those grow with the fault's length and are caught by the bound.
 */
export function rssLimit(before: number): number {
  return Math.max(before * 1.5, before + 64 * 1024 * 1024);
}

// ---- child processes --------------------------------------------------------------------------

export type ProcName = Role | `projection-${ReadModel}` | "gateway";

/** A process of the platform: its name, or `<name>#<n>` for the n-th instance (n > 1) in the same group. */
export type ProcKey = ProcName | `${ProcName}#${number}`;

/** The key of the n-th instance of a process (the first keeps the bare name). */
export const procKey = (name: ProcName, instance = 1): ProcKey => (instance === 1 ? name : `${name}#${instance}`);

export interface Proc {
  name: ProcName;
  child: ChildProcess;
  output(): string;
  /** Sends a signal unless the process is gone already; resolves once it is gone. */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** The gateway's URL, for the gateway. */
  url?: string;
}

/** Starts one process of the platform; what it prints also goes to .polity/faults/logs/<name>.log. */
async function spawnChild(
  name: ProcName,
  env: NodeJS.ProcessEnv,
  gatewayRate: number,
  key: ProcKey = name,
): Promise<Proc> {
  const [script, args, ready] =
    name === "gateway"
      ? ["test/faults/bin/gateway.ts", [String(gatewayRate)], "gateway ready"]
      : name.startsWith("projection-")
        ? ["test/faults/bin/projection.ts", [name.slice("projection-".length)], "projections ready"]
        : ["processors/main.ts", ["--tiers", name], "processors ready"];
  const p = await spawnScript({
    name,
    script,
    args,
    env,
    ready,
    timeoutMs: 180_000,
    logFile: path.join(logsDir(repoRoot), `${key}.log`),
  });
  const url = name === "gateway" ? /gateway ready (\S+)/.exec(p.output())?.[1] : undefined;
  return { name, child: p.child, output: p.output, signal: p.signal, ...(url ? { url } : {}) };
}

/**
 * What a process died of: 1 500 characters from the last line naming an error that is not one of
 * the client's own retry logs (kafkajs's connection errors, the pools' lost idle connections).
 */
const firstError = (output: string) => {
  const lines = output.split("\n");
  let at = -1;
  lines.forEach((line, i) => {
    if (/Error|Unhandled|Uncaught/.test(line) && !/^\[kafkajs|idle connection lost/.test(line)) at = i;
  });
  if (at < 0) return output.slice(-1_500);
  return lines
    .slice(Math.max(0, at - 3))
    .join("\n")
    .slice(0, 1_500);
};

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

// ---- the platform -----------------------------------------------------------------------------

export interface Poison {
  topic: string;
  partition: number;
  offset: string;
  value: Buffer;
}

/** Five tasks over three domains, two of them waiting on others. */
export const DAG = [
  task("fe-design", "frontend", "react"),
  task("be-schema", "backend", "database"),
  task("be-api", "backend", "api", ["be-schema"]),
  task("test-unit", "testing", "unit-test", ["fe-design", "be-api"]),
  task("fe-style", "frontend", "css", ["test-unit"]),
];

const FINAL = ["GoalCompleted", "GoalFailed", "GoalRejected", "GoalStopped"];

export class Platform {
  readonly procs = new Map<ProcKey, Proc>();
  /** Every poison message injected so far: the dead-letter topic must hold these and nothing else. */
  readonly poisons: Poison[] = [];
  readonly jwtSecret = `faults-${randomUUID()}-${randomUUID()}`;

  private constructor(
    readonly prefix: string,
    readonly urls: InfraUrls,
    readonly kafka: Kafka,
    readonly codec: Codec,
    readonly writer: EventWriter,
    readonly watch: LogWatcher,
    readonly dlq: LogWatcher,
    readonly pool: pg.Pool,
    readonly mongo: WatchedMongo,
    private readonly env: NodeJS.ProcessEnv,
    readonly gatewayRate: number,
  ) {}

  /** A fresh topic prefix with every role, both read models (and a gateway if asked) in child processes. */
  static async start(name: string, options: { gateway?: { perSecond: number } } = {}): Promise<Platform> {
    const urls = requireUrls();
    const prefix = `f-${name}-${randomUUID().slice(0, 6)}.`;
    const kafka = kafkaClient(urls.kafkaBrokers, `faults-${name}`, true);
    const codec = Codec.forUrl(urls.schemaRegistryUrl);
    await ensureTopics(kafka, prefix);
    await registerSchemas(codec);
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "polity-faults-")), "topology.json");
    fs.writeFileSync(file, JSON.stringify(testTopology(300)));
    const writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
    const watch = await LogWatcher.start(kafka, codec, prefix, ["polity.goals.events", "polity.tasks.events"]);
    const dlq = await LogWatcher.start(kafka, codec, prefix, [DEAD_LETTER_TOPIC]);
    const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 4 });
    // An idle client's connection dies with the server during an outage; the pool drops it.
    pool.on("error", () => undefined);
    // The suite's own reads of the read models outlive the FerretDB outage too.
    const mongo = watchedMongoClient(urls.mongoUrl, { name: "fault suite" });
    await mongo.client.connect();
    const p = new Platform(
      prefix,
      urls,
      kafka,
      codec,
      writer,
      watch,
      dlq,
      pool,
      mongo,
      {
        ...process.env,
        ...urlsToEnv(urls),
        POLITY_TOPIC_PREFIX: prefix,
        POLITY_TOPOLOGY_FILE: file,
        POLITY_CLIENT_ID: `faults-${name}`,
      },
      options.gateway?.perSecond ?? 100,
    );
    p.env.POLITY_JWT_SECRET = p.jwtSecret;
    const names: ProcName[] = [...ROLES, "projection-analytics", "projection-state"];
    if (options.gateway) names.push("gateway");
    // Started two at a time: tsx compiling in many processes at once starves the machine's two cores.
    for (let i = 0; i < names.length; i += 2) await Promise.all(names.slice(i, i + 2).map((n) => p.spawn(n)));
    return p;
  }

  async spawn(name: ProcName): Promise<Proc> {
    const proc = await spawnChild(name, this.env, this.gatewayRate);
    this.procs.set(name, proc);
    return proc;
  }

  /**
   * Starts the n-th instance of a process (n > 1): the same role in the same consumer group, so
   * the instances share the role's partitions (kafkajs rebalances them between the members).
   */
  async spawnInstance(name: ProcName, instance: number): Promise<Proc> {
    const key = procKey(name, instance);
    const proc = await spawnChild(name, this.env, this.gatewayRate, key);
    this.procs.set(key, proc);
    return proc;
  }

  /** SIGKILL for good: the process is no longer one of the platform's (not restarted, not reported dead). */
  async retire(key: ProcKey): Promise<void> {
    const proc = this.procs.get(key);
    if (!proc) throw new Error(`no process ${key}`);
    await proc.signal("SIGKILL");
    this.procs.delete(key);
  }

  /** SIGKILL, resolved once the process is gone. */
  async kill(name: ProcName): Promise<void> {
    const proc = this.procs.get(name);
    if (!proc) throw new Error(`no process ${name}`);
    await proc.signal("SIGKILL");
  }

  /** The RSS of every live process, by name. */
  rss(): Map<ProcKey, number> {
    const out = new Map<ProcKey, number>();
    for (const [name, proc] of this.procs) if (alive(proc.child)) out.set(name, rssOf(proc.child.pid!));
    return out;
  }

  /** Processes that have exited by themselves, with how and the end of what they printed. */
  dead(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, proc] of this.procs)
      if (!alive(proc.child))
        out[name] = `exited ${proc.child.exitCode ?? proc.child.signalCode}: ${firstError(proc.output())}`;
    return out;
  }

  finalOf(goalId: string): string[] {
    return this.watch
      .of(goalId)
      .filter((e) => FINAL.includes(e.type))
      .map((e) => e.type);
  }

  completions(goalId: string, taskId: string): number {
    return this.watch.of(goalId).filter((e) => e.type === "TaskCompleted" && e.value.taskId === taskId).length;
  }

  async submit(i: number, label: string): Promise<string> {
    const { goalId } = await submitGoal(
      this.writer,
      { tenantId: "acme", userId: "faults" },
      { title: `${label} ${i}`, tasks: DAG },
    );
    return goalId;
  }

  /** The log's end per projected topic partition of a model, keyed like the stores' checkpoints. */
  async logEnds(model: ReadModel): Promise<Checkpoints> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const ends: Checkpoints = new Map();
      for (const topic of PROJECTED_TOPICS[model])
        for (const { partition, high } of await admin.fetchTopicOffsets(physicalTopic(topic, this.prefix)))
          ends.set(checkpointKey(topic, partition), BigInt(high));
      return ends;
    } finally {
      await admin.disconnect();
    }
  }

  liveStore(model: ReadModel): AnalyticsStore | StateStore {
    const targets = readModelTargets(this.prefix);
    return model === "analytics"
      ? new AnalyticsStore(this.pool, { schema: targets.analyticsSchema })
      : new StateStore(this.db(), { collectionPrefix: targets.collectionPrefix });
  }

  db(): Db {
    return this.mongo.client.db();
  }

  /** Resolves once both read models stand at or past the log's end as it is now. */
  async caughtUp(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const model of MODELS) {
      const ends = await this.logEnds(model);
      for (;;) {
        let readError = "";
        const at = await this.liveStore(model)
          .checkpoints()
          .catch((e: Error) => {
            readError = e.message;
            return new Map() as Checkpoints;
          });
        const behind = [...ends].filter(([k, end]) => (at.get(k) ?? 0n) < end);
        if (behind.length === 0) break;
        if (Date.now() > deadline) {
          const proc = this.procs.get(`projection-${model}`);
          throw new Error(
            `read model ${model} still behind the log after ${timeoutMs} ms: ${behind.map(([k, e]) => `${k} at ${at.get(k) ?? 0n} of ${e}`).join(", ")}` +
              (readError ? `; reading its checkpoints failed: ${readError}` : "") +
              (proc ? `; the projection process's last output:\n${proc.output().slice(-4_000)}` : ""),
          );
        }
        await sleep(250);
      }
    }
  }

  /** Rebuilds both read models from offset 0 beside the live ones; the differences found, per model. */
  async rebuildDifferences(): Promise<Record<ReadModel, string[]>> {
    const targets = readModelTargets(this.prefix);
    const reports = await rebuild({
      models: MODELS,
      kafka: this.kafka,
      codec: this.codec,
      pool: this.pool,
      db: this.db(),
      topicPrefix: this.prefix,
      liveSchema: targets.analyticsSchema,
      liveCollectionPrefix: targets.collectionPrefix,
      settleTimeoutMs: 60_000,
    });
    const out = { analytics: [], state: [] } as Record<ReadModel, string[]>;
    for (const r of reports) {
      out[r.model] = r.differences;
      // Where the live projection stood still, what its process said is the first thing to read.
      const proc = this.procs.get(`projection-${r.model}`);
      if (r.differences.some((d) => d.includes("another log position")) && proc)
        out[r.model].push(`the projection process's last output:\n${proc.output().slice(-4_000)}`);
    }
    return out;
  }

  /** The dead letters seen, as (consumer group, original topic:partition@offset) with their bytes. */
  deadLetters(): DeadLetter[] {
    return this.dlq.seen.filter((s) => s.event.type === "DeadLetter").map((s) => s.event.value as DeadLetter);
  }

  async stop(): Promise<void> {
    for (const proc of this.procs.values()) await proc.signal("SIGTERM").catch(() => undefined);
    await this.writer.disconnect().catch(() => undefined);
    await this.watch.stop().catch(() => undefined);
    await this.dlq.stop().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
    await this.mongo.close().catch(() => undefined);
  }
}

export const originKey = (topic: string, partition: number, offset: string) => `${topic}:${partition}@${offset}`;

/**
 * The dead-letter topic against the poisons injected so far: every letter is one of them, with its
 * bytes; when `complete`, every processor group that reads a poison's topic dead-lettered it exactly
 * once (inside its transaction) and every read model at least once (at least once by design).
 * Returns the problems, empty when it holds.
 */
export function deadLetterProblems(p: Platform, complete: boolean): string[] {
  const problems: string[] = [];
  const poisons = new Map(p.poisons.map((x) => [originKey(x.topic, x.partition, x.offset), x]));
  const letters = p.deadLetters();
  const perGroup = new Map<string, number>();
  for (const l of letters) {
    const key = originKey(l.originalTopic, l.originalPartition, l.originalOffset);
    const poison = poisons.get(key);
    if (!poison) {
      problems.push(
        `dead letter of ${key} (group ${l.consumerGroup}, ${l.errorKind}) is no injected poison: ${l.reason}`,
      );
      continue;
    }
    if (!l.originalValue || !Buffer.from(l.originalValue).equals(poison.value))
      problems.push(`dead letter of ${key} does not carry the poison's bytes`);
    const g = `${l.consumerGroup} ${key}`;
    perGroup.set(g, (perGroup.get(g) ?? 0) + 1);
  }
  if (!complete) return problems;
  for (const poison of p.poisons) {
    const key = originKey(poison.topic, poison.partition, poison.offset);
    for (const role of ROLES) {
      if (!TIER_TOPICS[role].inputs.some((t) => physicalTopic(t, p.prefix) === poison.topic)) continue;
      const n = perGroup.get(`${p.prefix}polity-${role} ${key}`) ?? 0;
      if (n !== 1) problems.push(`${role} dead-lettered ${key} ${n} times (exactly once expected)`);
    }
    for (const model of MODELS) {
      if (!PROJECTED_TOPICS[model].some((t) => physicalTopic(t, p.prefix) === poison.topic)) continue;
      const n = perGroup.get(`${p.prefix}polity-projection-${model} ${key}`) ?? 0;
      if (n < 1) problems.push(`read model ${model} never dead-lettered ${key}`);
    }
  }
  return problems;
}

// ---- one round ----------------------------------------------------------------------------------

export interface Round {
  fault: string;
  goals?: number;
  /** Goals of the workload; by default submitted straight to the log. */
  submit?: (i: number) => Promise<string>;
  /** Injects the fault and resolves when it is over (the process restarted, the server answers). */
  inject: () => Promise<void>;
  /** Processes replaced by the fault (their RSS is compared with the old process's). */
  replaced?: ProcName[];
  /** Processes the fault ends for good (Platform.retire): left out of the memory comparison. */
  retired?: ProcKey[];
  /** Whether the fault injected poison messages (then every expected dead letter is waited for). */
  poisons?: boolean;
  /** More to record in the results. */
  extra?: () => Record<string, unknown>;
}

/** A task's events in log order, as type#attempt@agent: what a failed round prints of an open goal. */
function taskStory(p: Platform, goalId: string, taskId: string): string[] {
  return p.watch
    .of(goalId)
    .filter((e) => (e.value as { taskId?: string }).taskId === taskId)
    .map((e) => {
      const v = e.value as { attempt?: number; agentId?: string; assigneeId?: string; toAgentId?: string };
      return `${e.type}#${v.attempt ?? "-"}@${v.toAgentId ?? v.assigneeId ?? v.agentId ?? "-"}`;
    });
}

function record(row: FaultRow): void {
  const file = process.env.POLITY_FAULTS_RESULTS ?? path.join(repoRoot, ".polity", "faults", "results.json");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const rows = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as FaultRow[]) : [];
  rows.push(row);
  fs.writeFileSync(file, `${JSON.stringify(rows, null, 2)}\n`);
}

const mib = (n: number) => Math.round(n / 1024 / 1024);

/**
 * A workload, a fault in the middle of it, and the checks once it has recovered: every goal final
 * (and completed), every task completed exactly once, both read models equal to a rebuild, the
 * dead-letter topic holding exactly the poisons, each process's RSS back near its level. The row
 * is recorded before the checks assert, so a failing fault still shows in the table.
 */
export async function faultRound(p: Platform, round: Round): Promise<FaultRow> {
  const n = round.goals ?? 6;
  const submit = round.submit ?? ((i: number) => p.submit(i, round.fault));
  const goalIds: string[] = [];
  for (let i = 0; i < n; i++) goalIds.push(await submit(i));
  const completed = () =>
    goalIds.reduce((s, g) => s + p.watch.of(g).filter((e) => e.type === "TaskCompleted").length, 0);
  // Mid-run: some tasks done, some goals still going.
  await p.watch.until("the workload in full swing", () => completed() >= 3, 120_000);
  const affected = goalIds.filter((g) => p.finalOf(g).length === 0).length;
  const before = p.rss();

  const injectedAt = Date.now();
  await round.inject();
  const faultEnd = Date.now();

  const allFinal = await p.watch
    .until("every goal of the workload final", () => goalIds.every((g) => p.finalOf(g).length > 0), 240_000)
    .then(() => true)
    .catch(() => false);
  let caughtUp = "";
  if (allFinal) await p.caughtUp(120_000).catch((e: Error) => (caughtUp = e.message));
  const recoveredAt = Date.now();
  // Dead letters are written at least once by the read models: give them the time to arrive.
  let dlqProblems = deadLetterProblems(p, !!round.poisons);
  for (let i = 0; i < 60 && dlqProblems.length > 0; i++) {
    await sleep(500);
    dlqProblems = deadLetterProblems(p, !!round.poisons);
  }
  const rebuilt = await p.rebuildDifferences();
  await sleep(1_000);
  const after = p.rss();

  const goalsLost = goalIds.filter((g) => p.finalOf(g).length === 0);
  const goalsDoubled = goalIds.filter((g) => p.finalOf(g).length > 1);
  const notCompleted = goalIds.filter((g) => p.finalOf(g).length > 0 && p.finalOf(g)[0] !== "GoalCompleted");
  const tasksLost: string[] = [];
  const tasksDoubled: string[] = [];
  for (const g of goalIds)
    for (const t of DAG) {
      const c = p.completions(g, t.id);
      if (c === 0) tasksLost.push(`${g}/${t.id}`);
      if (c > 1) tasksDoubled.push(`${g}/${t.id} x${c}`);
    }
  const died = p.dead();
  const memory: Record<string, { beforeMiB: number; afterMiB: number; limitMiB: number }> = {};
  const memoryProblems: string[] = [];
  for (const [name, b] of before) {
    if (round.retired?.includes(name)) continue;
    const a = after.get(name);
    if (a === undefined) {
      memoryProblems.push(`${name}: died`);
      continue;
    }
    memory[name] = { beforeMiB: mib(b), afterMiB: mib(a), limitMiB: mib(rssLimit(b)) };
    if (a > rssLimit(b))
      memoryProblems.push(`${name}: RSS ${mib(a)} MiB after, ${mib(b)} MiB before (limit ${mib(rssLimit(b))})`);
  }
  const row: FaultRow = {
    fault: round.fault,
    goals: n,
    affected,
    lost: goalsLost.length + tasksLost.length,
    doubled: goalsDoubled.length + tasksDoubled.length,
    recoverMs: recoveredAt - faultEnd,
    faultMs: faultEnd - injectedAt,
    goalsLost,
    goalsDoubled,
    tasksLost,
    tasksDoubled,
    finals: goalIds.map((g) => p.finalOf(g).join("+") || "none"),
    // For a goal that never ended: where it stopped (its last events in the log).
    lastEventsOfOpenGoals: Object.fromEntries(goalsLost.map((g) => [g, p.watch.types(g).slice(-6)])),
    // And the story of each of their tasks that never completed: type#attempt@agent, in log order.
    openTasks: Object.fromEntries(
      goalsLost.flatMap((g) =>
        DAG.filter((t) => p.completions(g, t.id) === 0).map((t) => [`${g}/${t.id}`, taskStory(p, g, t.id)]),
      ),
    ),
    readModelsCaughtUp: caughtUp || "yes",
    rebuildDifferences: rebuilt,
    deadLetters: p.deadLetters().length,
    watcherRedelivered: p.watch.redelivered,
    poisons: p.poisons.length,
    deadLetterProblems: dlqProblems,
    died,
    memory,
    memoryProblems,
    ...(round.extra?.() ?? {}),
  };
  record(row);

  assert.deepEqual(died, {}, "no process dies");
  assert.deepEqual(
    goalsLost,
    [],
    `every goal reaches a final state; where the open ones stopped: ${JSON.stringify({ last: row.lastEventsOfOpenGoals, tasks: row.openTasks })}`,
  );
  assert.deepEqual(goalsDoubled, [], "no goal ends twice");
  assert.deepEqual(notCompleted, [], "every goal completes (no task fails in the simulated topology)");
  assert.deepEqual(tasksLost, [], "every task has a TaskCompleted");
  assert.deepEqual(tasksDoubled, [], "no task has two TaskCompleted");
  assert.equal(caughtUp, "", "the read models catch up with the log");
  assert.deepEqual(rebuilt, { analytics: [], state: [] }, "the read models equal a rebuild from offset 0");
  assert.deepEqual(dlqProblems, [], "the dead-letter topic holds exactly the poison messages");
  assert.deepEqual(memoryProblems, [], "every process's RSS is back near its level before the fault");
  for (const name of round.replaced ?? []) assert.ok(after.has(name), `${name} runs again`);
  return row;
}
