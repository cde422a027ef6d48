/**
 * `npm run demo`: submits a sample project and shows its progress, phase by phase, until it is
 * done. It runs the hierarchy in this process unless `--attach` says one is already running
 * (`npm start` in another terminal).
 */
import { randomUUID } from "node:crypto";
import type { InfraUrls } from "../lib/config.js";
import { loadConfig } from "../lib/config.js";
import { kafkaClient } from "../lib/kafka.js";
import { submitGoal } from "../producers/commands.js";
import { EventWriter } from "../producers/writer.js";
import { physicalTopic } from "../schemas/catalog.js";
import { Codec } from "../schemas/codec.js";
import { EventReader, typed } from "../schemas/reader.js";
import { runProcessors } from "./main.js";
import { ROLES } from "./hierarchy.js";

export async function runDemo(urls: InfraUrls, args: string[]): Promise<number> {
  const config = loadConfig();
  const attach = args.includes("--attach");
  const topology = args.includes("--dgm") ? "dgm" : "aamas";
  const kafka = kafkaClient(urls.kafkaBrokers, `${config.clientId}-demo`);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const started = Date.now();
  const clock = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s`;
  const hierarchy = attach ? null : await runProcessors(urls, [...ROLES], () => undefined);
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
        case "PhaseTransitioned":
          console.log(`${clock()}  phase ${e.value.toPhase}`);
          break;
        case "TaskCreated":
          tasks++;
          break;
        case "TaskCompleted":
          completed++;
          console.log(`${clock()}    ${e.value.taskId} done by ${e.value.agentId} (${completed}/${tasks})`);
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
    {
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
