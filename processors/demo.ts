/**
 * `npm run demo`: submits a sample project and shows its progress, phase by phase, until it is
 * done. It runs the hierarchy in this process unless `--attach` says one is already running
 * (`npm start` in another terminal).
 *
 * `npm run demo -- --ai [--model FILE.gguf]`: a goal without tasks, planned by a language model
 * and done by model workers on the embedded runtime (processors/config/ai-topology.json). Without
 * --model it writes a tiny random-weight model: every step is real (the runtime, the grammar, the
 * recorded plan and answers), but its text is meaningless.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { InfraUrls } from "../lib/config.js";
import { loadConfig } from "../lib/config.js";
import { CliExit, defineCommand, parseCommandArgs } from "../lib/cli-args.js";
import { kafkaClient } from "../lib/kafka.js";
import { submitGoal } from "../producers/commands.js";
import { EventWriter } from "../producers/writer.js";
import { physicalTopic } from "../schemas/catalog.js";
import { Codec } from "../schemas/codec.js";
import { EventReader, typed } from "../schemas/reader.js";
import fs from "node:fs";
import path from "node:path";
import { writeTinyGguf } from "./ai/tiny-gguf.js";
import { runProcessors } from "./main.js";
import { ROLES } from "./hierarchy.js";
import { loadTopology, type TopologyConfig } from "./topology.js";

const AI_TOPOLOGY_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), "config", "ai-topology.json");

export const DEMO_COMMAND = defineCommand({
  name: "demo",
  summary: "submit a sample project and follow it through its eight phases until done",
  options: {
    attach: {
      type: "boolean",
      help: "use the hierarchy `npm start` runs in another terminal instead of one in this process",
    },
    dgm: { type: "boolean", help: "the three-tier DGM topology (master, sub-master, worker) instead of aamas" },
    ai: {
      type: "boolean",
      help: "a goal planned by a language model and done by model workers on the embedded runtime",
    },
    model: {
      type: "string",
      value: "FILE.gguf",
      help: "with --ai: the GGUF model to run (default: a tiny random-weight model, meaningless text)",
    },
  },
});

/** The AI demo's topology, its local model file given by --model or written as a tiny random-weight model. */
function aiTopology(model: string | undefined, say: (line: string) => void): TopologyConfig {
  const topology = loadTopology(AI_TOPOLOGY_FILE);
  const local = topology.models?.local;
  if (local?.backend !== "embedded") throw new Error(`${AI_TOPOLOGY_FILE}: models.local must be an embedded model`);
  if (model !== undefined) {
    const file = model;
    if (!fs.existsSync(file)) throw new CliExit(2, `--model needs the path of a GGUF file; ${file} does not exist`);
    local.file = path.resolve(file);
    say(`model: ${local.file}`);
  } else {
    if (!fs.existsSync(local.file)) {
      fs.mkdirSync(path.dirname(local.file), { recursive: true });
      writeTinyGguf(local.file);
    }
    say(
      `model: a tiny random-weight model (${local.file}): real runtime, meaningless text. ` +
        "Pass --model FILE.gguf for a real one, or see README 'Bring your own model'.",
    );
  }
  return topology;
}

/** Checks the demo's flags (before any infrastructure is resolved); runDemo parses them again. */
export function demoOptions(args: string[]) {
  const { values } = parseCommandArgs(DEMO_COMMAND, args);
  if (values.ai && values.dgm)
    throw new CliExit(2, "--ai runs the aamas topology of processors/config/ai-topology.json; drop --dgm");
  if (values.model !== undefined && !values.ai) throw new CliExit(2, "--model is for the --ai demo; add --ai");
  return { ...values, topology: values.dgm ? ("dgm" as const) : ("aamas" as const) };
}

export async function runDemo(urls: InfraUrls, args: string[]): Promise<number> {
  const config = loadConfig();
  const { attach, ai, model, topology } = demoOptions(args);
  const kafka = kafkaClient(urls.kafkaBrokers, `${config.clientId}-demo`);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const started = Date.now();
  const clock = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`;
  const say = (line: string) => console.log(`${clock()}  ${line}`);
  const hierarchy = attach
    ? null
    : await runProcessors(urls, [...ROLES], () => undefined, ai ? aiTopology(model, say) : undefined);
  if (hierarchy) console.log(`${clock()}  hierarchy running in this process (${ROLES.join(", ")})`);

  const goalId = `demo-${randomUUID().slice(0, 8)}`;
  let done: (code: number) => void = () => undefined;
  const finished = new Promise<number>((r) => (done = r));
  let tasks = 0;
  let completed = 0;
  const reader = await EventReader.start({
    kafka,
    codec,
    groupId: `${config.topicPrefix}polity-demo-${goalId}`,
    topics: ["polity.goals.events", "polity.tasks.events"].map((t) => physicalTopic(t, config.topicPrefix)),
    topicPrefix: config.topicPrefix,
    fromBeginning: false,
    handle: async (raw) => {
      const e = typed(raw);
      if ((e.value as { goalId?: string }).goalId !== goalId) return;
      switch (e.type) {
        case "GoalSubmitted":
          console.log(`${clock()}  submitted "${e.value.title}" (${e.value.kind.toLowerCase()}, ${e.value.topology})`);
          break;
        case "GoalRejected":
          console.log(`${clock()}  REJECTED ${e.value.code}: ${e.value.reasons.join("; ")}`);
          done(1);
          break;
        case "PlanRequested":
          console.log(
            `${clock()}  plan asked of model "${e.value.model}" (attempt ${e.value.attempt} of ${e.value.maxAttempts})`,
          );
          break;
        case "PlanProposed": {
          const u = e.value.usage;
          const tokens = u ? `, ${u.tokensIn} tokens in, ${u.tokensOut} out, ${u.latencyMs} ms` : "";
          console.log(
            `${clock()}  plan ${e.value.accepted ? "accepted" : "refused"}: ${e.value.tasks.length} task(s)${tokens}` +
              (e.value.accepted ? "" : ` (${[e.value.error, ...e.value.problems].filter(Boolean).join("; ")})`),
          );
          for (const t of e.value.accepted ? e.value.tasks : [])
            console.log(
              `${clock()}    ${t.id} [${t.domain}/${t.specialization ?? "any"}]${t.dependsOn.length > 0 ? ` after ${t.dependsOn.join(", ")}` : ""}: ${t.title}`,
            );
          break;
        }
        case "PhaseTransitioned":
          console.log(`${clock()}  phase ${e.value.toPhase}`);
          break;
        case "TaskCreated":
          tasks++;
          break;
        case "TaskCompleted":
          completed++;
          console.log(
            `${clock()}    ${e.value.taskId} done by ${e.value.agentId} (${completed}/${tasks})` +
              (e.value.usage
                ? `: ${e.value.usage.tokensIn} tokens in, ${e.value.usage.tokensOut} out, ${e.value.usage.latencyMs} ms; ${JSON.stringify(e.value.outputs).slice(0, 120)}`
                : ""),
          );
          break;
        case "TaskFailed":
          console.log(`${clock()}    ${e.value.taskId} failed on ${e.value.agentId}: ${e.value.reason}`);
          break;
        case "GoalCompleted":
          console.log(
            `${clock()}  COMPLETED: ${e.value.tasksCompleted} tasks, cost ${e.value.totalCost}, ${e.value.durationMs} ms`,
          );
          done(0);
          break;
        case "GoalFailed":
          console.log(`${clock()}  FAILED: ${e.value.reason}`);
          done(1);
          break;
        default:
          break;
      }
    },
  });
  // A reader that starts at the end only sees what is written after it joined its group.
  await new Promise((r) => setTimeout(r, 1_000));
  const writer = await EventWriter.connect(kafka, codec, { topicPrefix: config.topicPrefix });
  await submitGoal(
    writer,
    { tenantId: "demo", userId: "demo-user" },
    ai
      ? {
          goalId,
          kind: "GOAL",
          title: "Online bookshop API",
          description: "A REST API for a book shop (catalogue, cart, orders) and the unit tests that prove it works",
          priority: 7,
          topology,
        }
      : {
          goalId,
          kind: "PROJECT",
          title: "Online bookshop",
          description: "A web shop for books: catalogue, cart, payments, tests",
          priority: 7,
          topology,
        },
  );
  const timeout = setTimeout(() => {
    console.log(
      `${clock()}  no end after 5 minutes: ${attach ? "is `npm start` running?" : "see the processors' log lines above"}`,
    );
    done(1);
  }, 300_000);
  const code = await finished;
  clearTimeout(timeout);
  await Promise.all([writer.disconnect(), reader.stop()]);
  await hierarchy?.stop();
  return code;
}
