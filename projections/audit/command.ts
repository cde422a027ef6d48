/**
 * `polity audit <goal|state|verify|rebuild>` (also `npm run audit -- ...`):
 *
 *   audit goal <goalId> [--from ISO] [--json]   the goal's causal timeline, replayed from Kafka
 *   audit state --at ISO [--goal ID] [--json]   the state of a goal, or of every goal and agent, as of a time
 *   audit verify [--topics a,b]                 check the hash chain of every event topic
 *   audit rebuild [--models ...] [--swap]       replay into fresh read models and compare with the live ones
 *
 * Progress goes to stderr about once a second; results to stdout. Exit code 0 when verification or
 * the rebuild comparison passes, 1 when it finds problems, 2 on a usage error.
 */
import type { InfraUrls } from "../../lib/config.js";
import { loadConfig } from "../../lib/config.js";
import { kafkaClient } from "../../lib/kafka.js";
import { physicalTopic, TOPICS } from "../../schemas/catalog.js";
import { Codec } from "../../schemas/codec.js";
import { runRebuild } from "../rebuild-command.js";
import { agentsAsOf, goalAsOf, snapshotAsOf, tasksAsOf } from "./as-of.js";
import type { ScanProgress } from "./log.js";
import { goalTimeline, timelineJsonLines, timelineTable } from "./timeline.js";
import { verifyText, verifyTopics } from "./verify.js";

export const AUDIT_USAGE = `usage:
  polity audit goal <goalId> [--from ISO-8601] [--json]
  polity audit state --at ISO-8601 [--goal <goalId>] [--json]
  polity audit verify [--topics t1,t2]   (physical topic names; default: every catalog topic but the dead letters)
  polity audit rebuild [--models analytics,state] [--swap] [--keep]`;

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function time(args: string[], name: string): Date | undefined | null {
  const text = option(args, name);
  if (text === undefined) return undefined;
  const t = new Date(text);
  if (Number.isNaN(t.getTime())) {
    console.error(`${name} "${text}" is not an ISO-8601 time, e.g. 2026-11-21T10:00:00Z`);
    return null;
  }
  return t;
}

function progress(label: string) {
  let last = "";
  return (p: ScanProgress & { phase?: string }) => {
    const pct = p.total > 0 ? Math.floor((p.read * 100) / p.total) : 100;
    const line = `[audit] ${label}${p.phase ? ` (${p.phase})` : ""}: ${p.read} of ${p.total} record(s) read, ${pct}%`;
    if (line !== last) console.error(line);
    last = line;
  };
}

export async function runAudit(urls: InfraUrls, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === "rebuild") return runRebuild(urls, rest);
  const config = loadConfig();
  const kafka = kafkaClient(urls.kafkaBrokers, `${config.clientId}-audit`, true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const prefix = config.topicPrefix;
  const json = rest.includes("--json");

  if (sub === "goal" && rest[0] && !rest[0].startsWith("--")) {
    const from = time(rest, "--from");
    if (from === null) return 2;
    const timeline = await goalTimeline({
      kafka,
      codec,
      goalId: rest[0],
      topicPrefix: prefix,
      ...(from ? { from } : {}),
      onProgress: progress(`goal ${rest[0]}`),
    });
    if (timeline.entries.length === 0) {
      console.error(`no event of goal ${rest[0]} in the log${from ? ` from ${from.toISOString()}` : ""}`);
      return 1;
    }
    console.log(json ? timelineJsonLines(timeline) : timelineTable(timeline));
    return 0;
  }

  if (sub === "state") {
    const at = time(rest, "--at");
    if (!at) {
      if (at === undefined) console.error("audit state needs --at <ISO-8601 time>\n" + AUDIT_USAGE);
      return 2;
    }
    const goalId = option(rest, "--goal");
    const snapshot = await snapshotAsOf({
      kafka,
      codec,
      at,
      topicPrefix: prefix,
      ...(goalId ? { goalId } : {}),
      onProgress: progress(`state as of ${at.toISOString()}`),
    });
    const goalIds = goalId ? [goalId] : [...snapshot.state.goals.keys()];
    const goals = goalIds.map((id) => ({ goal: goalAsOf(snapshot, id), tasks: tasksAsOf(snapshot, id) }));
    const agents = goalId ? [] : agentsAsOf(snapshot);
    if (json) {
      console.log(JSON.stringify({ asOf: at.toISOString(), events: snapshot.events, goals, agents }));
      return 0;
    }
    console.log(`As of ${at.toISOString()} (${snapshot.events} event(s) replayed):`);
    for (const { goal, tasks } of goals) {
      if (!goal) {
        console.log(`goal ${goalId}: did not exist yet`);
        continue;
      }
      console.log(`goal ${goal.goalId} "${goal.title}": ${goal.status}, ${tasks.length} task(s)`);
      for (const t of tasks)
        console.log(`  ${t.taskId.padEnd(24)} ${t.status.padEnd(10)} attempt ${t.attempt} ${t.assignees.WORKER ?? ""}`);
    }
    for (const a of agents)
      console.log(`agent ${a.agentId.padEnd(36)} ${String(a.status).padEnd(10)} open tasks ${a.currentTasks.length}`);
    return 0;
  }

  if (sub === "verify") {
    const listed = option(rest, "--topics");
    const topics = listed
      ? listed.split(",").filter(Boolean)
      : TOPICS.filter((t) => t.name !== "polity.deadletters").map((t) => physicalTopic(t.name, prefix));
    const report = await verifyTopics(kafka, topics, { onProgress: progress("verify") });
    console.log(verifyText(report));
    return report.ok ? 0 : 1;
  }

  console.error(AUDIT_USAGE);
  return 2;
}
