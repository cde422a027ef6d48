/**
 * An agent outside the platform: a worker with the `external` executor. No tier host acts for such
 * a worker; it reads its own assignments from the log and reports on them itself, so it can be any
 * program in any language that speaks Kafka and the schema registry. This one is TypeScript:
 *
 *   node --import tsx processors/examples/external-agent.ts --agent <id> --superior <mayorId> \
 *     --domain <d> --specialization <s> [--topology aamas] [--capacity 1] [--request-context]
 *
 * It reads KAFKA_BROKERS, SCHEMA_REGISTRY_URL and POLITY_TOPIC_PREFIX from the environment, and
 * stops cleanly on SIGINT/SIGTERM.
 *
 * What the platform expects of an external worker:
 * - It is in the agent directory: an AgentRegistered with executor "external" on
 *   polity.agents.events. The topology file may declare it (then the platform has registered it
 *   already), or it registers itself under a mayor (a sub-master in dgm).
 * - For each TaskAssigned addressed to it, it writes TaskAccepted and TaskStarted, and in the end
 *   TaskCompleted or TaskFailed, all for the attempt it was given, on polity.tasks.events.
 * - It reports each (task, attempt) once. Kafka offsets alone cannot promise that: an agent that
 *   stops after reporting but before committing its offset reads the assignment again. So it
 *   decides from the log itself: before acting on a partition it reads that partition to the end,
 *   where it finds its own earlier reports.
 * - With `requestContext` it asks its superior for context before working on an attempt: a
 *   ContextRequested (requestId `ctx-<taskId>-<attempt>-<agentId>`, so a restart finds its earlier
 *   request and answer in the log and asks once) answered by a ContextProvided carrying the task's
 *   inputs and its dependencies' results and outputs (processors/domain/context.ts). The answer, or
 *   null when none came in time, is the work function's third argument.
 */
import { CliExit, defineCommand, parseArgvOrExit, reportCliExit, wholeNumber } from "../../lib/cli-args.js";
import { logLine, runIfMain, stopOnSignal } from "../../lib/process.js";
import type { Consumer, Kafka } from "kafkajs";
import { loadConfig } from "../../lib/config.js";
import { kafkaClient, topicOffsets } from "../../lib/kafka.js";
import { HEADER, type MessageContext } from "../../producers/envelope.js";
import { EventWriter, type OutgoingMessage } from "../../producers/writer.js";
import { physicalTopic } from "../../schemas/catalog.js";
import { Codec, DecodeError, ValidationError } from "../../schemas/codec.js";
import type { ContextProvided, TaskAssigned, TaskSpec, Topology } from "../../schemas/generated/types.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { DirectoryFeed } from "../host/directory-feed.js";

const TASKS_TOPIC = "polity.tasks.events";
/** The task events that change what this agent owes; the others are skipped by their type header. */
const READS = new Set([
  "TaskAssigned",
  "TaskStarted",
  "TaskCompleted",
  "TaskFailed",
  "TaskCancelled",
  "TaskTimedOut",
  "TaskRetried",
  "TaskReassigned",
  "ContextRequested",
  "ContextProvided",
]);
/** How long to wait before trying a report again when Kafka or the registry refused it. */
const RETRY_MS = 1_000;

/** What the agent's work produced; the agent adds the duration and the envelope. */
export interface WorkResult {
  result: string;
  outputs: Record<string, string>;
  /** decimal(18,4) as a string, e.g. "0.0100". */
  cost: string;
}

/**
 * The agent's actual work. A throw becomes TaskFailed; the signal aborts when the attempt is void.
 * `context` is its superior's answer to the agent's context request (`requestContext`), null when
 * it asked for none or no answer came in time.
 */
export type Work = (task: TaskSpec, signal: AbortSignal, context: ContextProvided | null) => Promise<WorkResult>;

/** The default "work": the task's `text` input (or its title) reversed and upper-cased. */
export const reverseTitle: Work = async (task) => {
  const text = task.inputs.text ?? task.title;
  const reversed = [...text].reverse().join("").toUpperCase();
  return { result: reversed, outputs: { reversed }, cost: "0.0100" };
};

export interface ExternalAgentOptions {
  kafka: Kafka;
  codec: Codec;
  agentId: string;
  /** The mayor (aamas) or sub-master (dgm) it works for. */
  superiorId: string;
  domain: string;
  specialization: string;
  topology?: Topology;
  /** Tasks it may hold at once; its superior never assigns more. Default 1. */
  capacity?: number;
  /** The deployment's POLITY_TOPIC_PREFIX. */
  topicPrefix?: string;
  work?: Work;
  /**
   * Ask the superior for context before working on each attempt: true for everything it has, or
   * what is needed and which items (keys: output names, `<taskId>.<output>`, input or constraint keys).
   */
  requestContext?: boolean | { need: string; keys?: string[] };
  /** How long to wait for the ContextProvided before working without it. Default 30 s. */
  contextTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface RunningExternalAgent {
  agentId: string;
  /** True when this start wrote the AgentRegistered; false when the agent was registered already. */
  announced: boolean;
  /** Resolves once every partition has been read up to where it ended when the agent started. */
  caughtUp: Promise<void>;
  stop(): Promise<void>;
}

/** An assignment to this agent that is neither reported nor void yet. */
interface Open {
  partition: number;
  /** Offset of the TaskAssigned: the group's offset stays there until it is reported. */
  offset: bigint;
  assigned: TaskAssigned;
  /** TaskStarted is in the log already (the agent stopped while working on it). */
  started: boolean;
}

const attemptKey = (goalId: string, taskId: string, attempt: number) => `${goalId}/${taskId}#${attempt}`;

export async function startExternalAgent(options: ExternalAgentOptions): Promise<RunningExternalAgent> {
  const { kafka, codec, agentId } = options;
  const prefix = options.topicPrefix ?? "";
  const work = options.work ?? reverseTitle;
  const log = options.log ?? (() => undefined);
  const topic = physicalTopic(TASKS_TOPIC, prefix);
  const groupId = `${prefix}polity-external-${agentId}`;

  const announced = await announce(options, prefix, log);
  const writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });

  const open = new Map<string, Open>();
  /** Attempts reported or made void; a late copy of their TaskAssigned is ignored. */
  const closed = new Set<string>();
  const running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  /** This agent's context requests seen in the log, their answers, and who waits for one. */
  const asked = new Set<string>();
  const answers = new Map<string, ContextProvided>();
  const awaiting = new Map<string, (answer: ContextProvided) => void>();
  /** Per partition: the next offset to read, where it ended at start, and the offset last committed. */
  const position = new Map<number, bigint>();
  const end = new Map<number, bigint>();
  const committed = new Map<number, bigint>();
  let stopping = false;

  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, offsets] = await Promise.all([
      topicOffsets(admin, topic),
      admin.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    const groupOffsets = offsets.find((t) => t.topic === topic)?.partitions ?? [];
    for (const o of ends) {
      const c = groupOffsets.find((p) => p.partition === o.partition)?.offset ?? "-1";
      const start = c === "-1" || BigInt(c) < BigInt(o.low) ? BigInt(o.low) : BigInt(c);
      position.set(o.partition, start);
      committed.set(o.partition, start);
      end.set(o.partition, BigInt(o.high));
    }
  } finally {
    await admin.disconnect();
  }

  const isCaughtUp = (p: number) => (position.get(p) ?? 0n) >= (end.get(p) ?? 0n);
  let markCaughtUp!: () => void;
  const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
  const checkCaughtUp = () => {
    if ([...end.keys()].every(isCaughtUp)) markCaughtUp();
  };

  const close = (key: string) => {
    closed.add(key);
    open.delete(key);
    running.get(key)?.abort.abort();
  };

  /** Closes this agent's attempts of a task below `attempt` (all of them for Infinity). */
  const supersede = (goalId: string, taskId: string, attempt: number) => {
    for (const [key, o] of open)
      if (o.assigned.goalId === goalId && o.assigned.taskId === taskId && o.assigned.attempt < attempt) close(key);
  };

  /** Folds one event of the log into what the agent owes. Reading an event twice changes nothing. */
  const fold = (event: PolityEvent, partition: number, offset: bigint) => {
    switch (event.type) {
      case "TaskAssigned": {
        const e = event.value;
        if (e.assigneeTier !== "WORKER") return;
        supersede(e.goalId, e.taskId, e.attempt);
        const key = attemptKey(e.goalId, e.taskId, e.attempt);
        if (e.assigneeId === agentId && !closed.has(key) && !open.has(key))
          open.set(key, { partition, offset, assigned: e, started: false });
        return;
      }
      case "TaskStarted": {
        const o = open.get(attemptKey(event.value.goalId, event.value.taskId, event.value.attempt));
        if (o && event.value.agentId === agentId) o.started = true;
        return;
      }
      case "TaskCompleted":
      case "TaskFailed":
      case "TaskTimedOut":
        if (event.value.agentId === agentId)
          close(attemptKey(event.value.goalId, event.value.taskId, event.value.attempt));
        return;
      case "TaskRetried":
      case "TaskReassigned":
        supersede(event.value.goalId, event.value.taskId, event.value.attempt);
        return;
      case "TaskCancelled":
        supersede(event.value.goalId, event.value.taskId, Infinity);
        return;
      case "ContextRequested":
        if (event.value.requesterId === agentId) asked.add(event.value.requestId);
        return;
      case "ContextProvided":
        if (event.value.requesterId === agentId && !answers.has(event.value.requestId)) {
          answers.set(event.value.requestId, event.value);
          awaiting.get(event.value.requestId)?.(event.value);
        }
        return;
      default:
        return;
    }
  };

  let consumer: Consumer | undefined;

  /** Commits the oldest open assignment's offset, or the read position when nothing is open. */
  const commit = async (partition: number) => {
    let offset = position.get(partition) ?? 0n;
    for (const o of open.values()) if (o.partition === partition && o.offset < offset) offset = o.offset;
    if (offset === committed.get(partition) || !consumer || stopping) return;
    try {
      await consumer.commitOffsets([{ topic, partition, offset: offset.toString() }]);
      committed.set(partition, offset);
    } catch {
      // A rebalance or a reconnect; the next commit carries the same offset or a later one.
    }
  };

  /** Acts on a partition's open assignments, but only once the partition has been read to its end. */
  const actOn = (partition: number) => {
    if (stopping || !isCaughtUp(partition)) return;
    for (const [key, o] of open) {
      if (o.partition !== partition || running.has(key)) continue;
      const abort = new AbortController();
      const done = perform(key, o, abort.signal).finally(() => running.delete(key));
      running.set(key, { abort, done });
    }
  };

  /** The superior's answer to this attempt's context request; asks once, null on timeout or abort. */
  const askContext = async (
    a: TaskAssigned,
    context: MessageContext,
    signal: AbortSignal,
  ): Promise<ContextProvided | null> => {
    const wanted = options.requestContext;
    if (!wanted) return null;
    const requestId = `ctx-${a.taskId}-${a.attempt}-${agentId}`;
    const known = answers.get(requestId);
    if (known) return known;
    const answered = new Promise<ContextProvided | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), options.contextTimeoutMs ?? 30_000);
      timer.unref();
      signal.addEventListener("abort", () => resolve(null), { once: true });
      awaiting.set(requestId, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
    });
    try {
      if (!asked.has(requestId)) {
        const { need, keys } = wanted === true ? { need: "everything known about the task", keys: [] } : wanted;
        await writer.send([
          {
            type: "ContextRequested",
            context,
            payload: {
              requestId,
              goalId: a.goalId,
              taskId: a.taskId,
              requesterId: agentId,
              requesterTier: "WORKER",
              targetAgentId: null,
              need,
              keys: keys ?? [],
            },
          },
        ]);
        asked.add(requestId);
      }
      return await answered;
    } finally {
      awaiting.delete(requestId);
    }
  };

  const perform = async (key: string, o: Open, signal: AbortSignal) => {
    const a = o.assigned;
    const context: MessageContext = {
      tenantId: a.envelope.tenantId,
      correlationId: a.goalId,
      causationId: a.envelope.eventId,
      actor: { id: agentId, tier: "WORKER" },
      aggregate: { type: "TASK", id: a.taskId, version: -1 },
    };
    const ids = { goalId: a.goalId, taskId: a.taskId, agentId, attempt: a.attempt };
    try {
      if (!o.started) {
        await writer.send([
          { type: "TaskAccepted", context, payload: { ...ids, tier: "WORKER" } },
          { type: "TaskStarted", context, payload: { ...ids, executor: "external" } },
        ]);
        o.started = true;
      }
      const provided = await askContext(a, context, signal);
      const began = Date.now();
      let outcome: WorkResult | Error;
      try {
        outcome = await work(a.task, signal, provided);
      } catch (e) {
        outcome = e instanceof Error ? e : new Error(String(e));
      }
      const durationMs = Date.now() - began;
      // Cancelled, timed out, reassigned or stopping meanwhile: nobody is waiting for this result.
      if (signal.aborted) return;
      const failed = (
        reason: string,
        failureKind: "EXECUTION_ERROR" | "INVALID_OUTPUT",
        retryable: boolean,
      ): OutgoingMessage<"TaskFailed"> => ({
        type: "TaskFailed",
        context,
        payload: { ...ids, reason, failureKind, retryable, exitCode: null, output: null, durationMs, usage: null },
      });
      let report: OutgoingMessage =
        outcome instanceof Error
          ? failed(outcome.message, "EXECUTION_ERROR", true)
          : {
              type: "TaskCompleted",
              context,
              payload: { ...ids, ...outcome, durationMs, exitCode: null, usage: null },
            };
      try {
        await writer.send([report]);
      } catch (e) {
        // A result that does not fit the schema would be refused on every try: report it as such.
        if (!(e instanceof ValidationError)) throw e;
        report = failed(e.message, "INVALID_OUTPUT", false);
        await writer.send([report]);
      }
      log(
        `${a.taskId} (attempt ${a.attempt}) of ${a.goalId}: ${report.type === "TaskCompleted" ? "completed" : "failed"}`,
      );
      close(key);
      await commit(o.partition);
    } catch (e) {
      // The report was refused (Kafka or the registry unreachable): the assignment stays open and
      // is done again; only a report that reached the log closes it.
      log(`${a.taskId} of ${a.goalId}: could not report (${(e as Error).message}); trying again`);
      setTimeout(() => actOn(o.partition), RETRY_MS).unref();
    }
  };

  try {
    consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 200 });
    // Fired for every batch, also for one holding only transaction markers (which never reaches
    // eachBatch), so the read position reaches the partition's end.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const next = BigInt(payload.lastOffset) + 1n;
      if (next > (position.get(payload.partition) ?? 0n)) position.set(payload.partition, next);
      checkCaughtUp();
      actOn(payload.partition);
      void commit(payload.partition);
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          const type = message.headers?.[HEADER.type]?.toString();
          if (type !== undefined && !READS.has(type)) continue;
          let decoded;
          try {
            decoded = await codec.decode(message.value);
          } catch (e) {
            // The platform's own readers dead-letter unreadable messages; one is no task of ours.
            if (e instanceof DecodeError) continue;
            throw e; // the registry is unreachable: kafkajs reads the batch again
          }
          fold(
            { type: decoded.type, value: decoded.value } as unknown as PolityEvent,
            batch.partition,
            BigInt(message.offset),
          );
        }
      },
    });
  } catch (e) {
    await consumer?.disconnect().catch(() => undefined);
    await writer.disconnect().catch(() => undefined);
    throw e;
  }
  checkCaughtUp();
  log(`${agentId} is reading ${topic} as ${groupId}`);

  return {
    agentId,
    announced,
    caughtUp,
    async stop() {
      stopping = true;
      for (const r of running.values()) r.abort.abort();
      await Promise.all([...running.values()].map((r) => r.done));
      await consumer?.disconnect().catch(() => undefined);
      await writer.disconnect().catch(() => undefined);
    },
  };
}

/**
 * Makes sure the directory holds this agent as an external worker; registers it when it is not
 * there. Returns whether it wrote the AgentRegistered.
 */
async function announce(o: ExternalAgentOptions, prefix: string, log: (line: string) => void): Promise<boolean> {
  const topology = o.topology ?? "aamas";
  const superiorTier = topology === "aamas" ? "MAYOR" : "SUB_MASTER";
  const feed = new DirectoryFeed(o.kafka, o.codec, prefix);
  try {
    try {
      await feed.start();
    } catch (e) {
      throw new Error(
        `cannot read ${prefix}polity.agents.events (${(e as Error).message}); is the platform running, with POLITY_TOPIC_PREFIX="${prefix}"?`,
        { cause: e },
      );
    }
    const me = feed.directory.get(o.agentId);
    if (me) {
      // Whoever registered it first wins: the platform dispatches by what is in the log.
      if (me.tier !== "WORKER" || me.executor !== "external")
        throw new Error(
          `${o.agentId} is registered as a ${me.executor ?? ""} ${me.tier.toLowerCase()}, so the platform acts for it; ` +
            "an external agent needs an id of its own or one the topology declares with executor external",
        );
      if (me.superiorId !== o.superiorId || me.specialization !== o.specialization)
        log(
          `${o.agentId} is registered already under ${me.superiorId} as ${me.specialization}; that registration stands`,
        );
      else log(`${o.agentId} is registered already`);
      return false;
    }
    const superior = feed.directory.get(o.superiorId);
    if (!superior || superior.tier !== superiorTier || superior.topology !== topology)
      throw new Error(`${o.superiorId} is not a registered ${superiorTier.toLowerCase()} of ${topology}`);
    if (superior.domain !== o.domain)
      throw new Error(`${o.superiorId} belongs to domain ${superior.domain}, not ${o.domain}`);
    const writer = await EventWriter.connect(o.kafka, o.codec, { topicPrefix: prefix });
    try {
      await writer.send([
        {
          type: "AgentRegistered",
          context: {
            tenantId: "system",
            correlationId: o.agentId,
            actor: { id: o.agentId, tier: "WORKER" },
            aggregate: { type: "AGENT", id: o.agentId, version: 1 },
          },
          payload: {
            agentId: o.agentId,
            name: `${o.specialization} worker ${o.agentId} (external)`,
            tier: "WORKER",
            topology,
            domain: o.domain,
            specialization: o.specialization,
            superiorId: o.superiorId,
            capacity: o.capacity ?? 1,
            executor: "external",
            labels: { program: "processors/examples/external-agent.ts" },
            heartbeatIntervalMs: 5_000,
            commandId: null,
          },
        },
      ]);
    } finally {
      await writer.disconnect();
    }
    // Read it back, so that a restart right after this one finds it and does not register it twice.
    for (const deadline = Date.now() + 30_000; !feed.directory.get(o.agentId);) {
      if (Date.now() > deadline) throw new Error(`registered ${o.agentId} but did not read it back within 30 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    log(`registered ${o.agentId} under ${o.superiorId} (${o.domain}/${o.specialization}, external)`);
    return true;
  } finally {
    await feed.stop();
  }
}

export const EXTERNAL_AGENT_COMMAND = defineCommand({
  name: "external-agent",
  summary: "a worker outside the platform (node --import tsx processors/examples/external-agent.ts)",
  options: {
    agent: { type: "string", value: "id", help: "this agent's id (required)" },
    superior: { type: "string", value: "mayorId", help: "the mayor (dgm: sub-master) it works under (required)" },
    domain: { type: "string", value: "d", help: "its domain (required)" },
    specialization: { type: "string", value: "s", help: "its specialization (required)" },
    topology: { type: "string", value: "aamas|dgm", default: "aamas", help: "the hierarchy it joins" },
    capacity: { type: "string", value: "n", default: "1", help: "tasks it works on at once" },
    "request-context": { type: "boolean", help: "ask the superior for context before each attempt" },
  },
  notes: "Reads KAFKA_BROKERS, SCHEMA_REGISTRY_URL and POLITY_TOPIC_PREFIX (lib/config.ts).",
});

function externalAgentOptions() {
  const { values } = parseArgvOrExit(EXTERNAL_AGENT_COMMAND);
  const { agent, superior, domain, specialization, topology } = values;
  try {
    if (!agent || !superior || !domain || !specialization)
      throw new CliExit(2, "external-agent needs --agent, --superior, --domain and --specialization (see --help)");
    if (topology !== "aamas" && topology !== "dgm") throw new CliExit(2, `--topology ${topology}: give aamas or dgm`);
    const capacity = wholeNumber("capacity", values.capacity);
    return {
      agent,
      superior,
      domain,
      specialization,
      topology,
      capacity,
      requestContext: values["request-context"],
    } as const;
  } catch (e) {
    if (e instanceof CliExit) process.exit(reportCliExit(e));
    throw e;
  }
}

async function main(): Promise<void> {
  const { agent, superior, domain, specialization, topology, capacity, requestContext } = externalAgentOptions();

  const config = loadConfig();
  const { kafkaBrokers, schemaRegistryUrl } = config.explicitUrls;
  if (!kafkaBrokers?.length || !schemaRegistryUrl)
    throw new Error("set KAFKA_BROKERS and SCHEMA_REGISTRY_URL to the platform's Kafka and schema registry");
  const log = logLine;
  const running = await startExternalAgent({
    kafka: kafkaClient(kafkaBrokers, `${config.clientId}-external-${agent}`),
    codec: Codec.forUrl(schemaRegistryUrl),
    agentId: agent,
    superiorId: superior,
    domain,
    specialization,
    topology,
    capacity,
    topicPrefix: config.topicPrefix,
    requestContext,
    log,
  });
  stopOnSignal(() => running.stop());
}

runIfMain(import.meta.url, main);
