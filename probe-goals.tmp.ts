import { Kafka, logLevel } from "kafkajs";
import { Codec } from "./schemas/codec.js";
import { LogWatcher } from "./test/support/watch.js";
const P = process.argv[2];
const k = new Kafka({ clientId: "probe", brokers: ["127.0.0.1:29092"], logLevel: logLevel.NOTHING });
const codec = Codec.forUrl("http://127.0.0.1:28081");
const w = await LogWatcher.start(k, codec, P, ["polity.goals.events", "polity.tasks.events"]);
await new Promise((r) => setTimeout(r, 25000));
console.log("seen", w.seen.length);
const goals = new Map<string, string[]>();
for (const s of w.seen) {
  const v = s.event.value as { goalId?: string; taskId?: string };
  if (!v.goalId) continue;
  const list = goals.get(v.goalId) ?? [];
  list.push(`${s.event.type}${v.taskId ? "(" + v.taskId + ")" : ""}@${s.topic.slice(P.length).split(".")[1]}${s.partition}:${s.offset}`);
  goals.set(v.goalId, list);
}
for (const [g, l] of goals) console.log(g, "\n   ", l.slice(-12).join("\n    "));
await w.stop();
process.exit(0);
