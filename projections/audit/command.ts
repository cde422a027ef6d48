/**
 * `polity audit <goal|state|verify|rebuild>` (also `npm run audit -- ...`):
 *
 *   audit goal <goalId> [--from ISO] [--json]   the goal's causal timeline, replayed from Kafka
 *   audit state --at ISO [--goal ID] [--json]   the state of a goal, or of every goal and agent, as of a time
 *   audit verify [--topics a,b]                 check the hash chain of every event topic
 *   audit rebuild [--models ...] [--swap]       replay into fresh read models and compare with the live ones
 *
 * Progress goes to stderr about once a second; results to stdout. Exit code 0 when verification or
 * the rebuild comparison passes, 1 when it finds problems, 2 on a usage error (`--help` on each
 * subcommand lists its options, from AUDIT_COMMANDS).
 */
import type { InfraUrls } from "../../lib/config.js";
import { loadConfig } from "../../lib/config.js";
import { kafkaClient } from "../../lib/kafka.js";
import { physicalTopic, TOPICS } from "../../schemas/catalog.js";
import { Codec } from "../../schemas/codec.js";
import { AUDIT_REBUILD_COMMAND, runRebuild } from "../rebuild-command.js";
import { CliExit, defineCommand, parseCommandArgs } from "../../lib/cli-args.js";
import { agentsAsOf, goalAsOf, snapshotAsOf, tasksAsOf } from "./as-of.js";
import type { ScanProgress } from "./log.js";
import { goalTimeline, timelineJsonLines, timelineTable } from "./timeline.js";
import { verifyText, verifyTopics } from "./verify.js";

const json = { type: "boolean", help: "JSON instead of a table (goal: one JSON line per event)" } as const;

export const AUDIT_COMMANDS = {
  goal: defineCommand({
    name: "audit goal",
    summary: "a goal's causal timeline, replayed from Kafka",
    args: "<goalId>",
    positionals: { min: 1, max: 1 },
    options: {
      from: { type: "string", value: "ISO-8601", help: "start the timeline at this time" },
      json,
    },
  }),
  state: defineCommand({
    name: "audit state",
    summary: "the state of a goal, or of every goal and agent, as of a time",
    options: {
      at: { type: "string", value: "ISO-8601", help: "the time to replay up to (required)" },
      goal: { type: "string", value: "goalId", help: "only this goal (default: every goal and agent)" },
      json,
    },
  }),
  verify: defineCommand({
    name: "audit verify",
    summary: "check the hash chain of every event topic",
    options: {
      topics: {
        type: "string",
        value: "t1,t2",
        help: "physical topic names (default: every catalog topic but the dead letters)",
      },
    },
    notes: "Exit code 0 when every chain holds, 1 when one is broken.",
  }),
  rebuild: AUDIT_REBUILD_COMMAND,
} as const;

export type AuditSubcommand = keyof typeof AUDIT_COMMANDS;

function time(name: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const t = new Date(text);
  if (Number.isNaN(t.getTime()))
    throw new CliExit(2, `--${name} "${text}" is not an ISO-8601 time, e.g. 2026-11-21T10:00:00Z`);
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

/** `polity audit goal` arguments, checked (also before any infrastructure is resolved). */
export function auditGoalArgs(args: string[]) {
  const { values, positionals } = parseCommandArgs(AUDIT_COMMANDS.goal, args);
  return { goalId: positionals[0]!, from: time("from", values.from), json: values.json };
}

/** `polity audit state` arguments, checked (also before any infrastructure is resolved). */
export function auditStateArgs(args: string[]) {
  const { values } = parseCommandArgs(AUDIT_COMMANDS.state, args);
  const at = time("at", values.at);
  if (!at) throw new CliExit(2, "polity audit state needs --at <ISO-8601 time> (polity audit state --help)");
  return { goalId: values.goal, json: values.json, at };
}

/** `args` is the subcommand and its arguments: `goal <goalId> --json`, `state --at ...`, `verify`, `rebuild`. */
export async function runAudit(urls: InfraUrls, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || !(sub in AUDIT_COMMANDS))
    throw new CliExit(
      2,
      `polity audit: give one of ${Object.keys(AUDIT_COMMANDS).join(", ")} (polity audit <sub> --help)`,
    );
  if (sub === "rebuild") return runRebuild(urls, rest, AUDIT_REBUILD_COMMAND);
  const config = loadConfig();
  const kafka = kafkaClient(urls.kafkaBrokers, `${config.clientId}-audit`, true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const prefix = config.topicPrefix;

  if (sub === "goal") {
    const { goalId, from, json } = auditGoalArgs(rest);
    const timeline = await goalTimeline({
      kafka,
      codec,
      goalId,
      topicPrefix: prefix,
      ...(from ? { from } : {}),
      onProgress: progress(`goal ${goalId}`),
    });
    if (timeline.entries.length === 0) {
      console.error(`no event of goal ${goalId} in the log${from ? ` from ${from.toISOString()}` : ""}`);
      return 1;
    }
    console.log(json ? timelineJsonLines(timeline) : timelineTable(timeline));
    return 0;
  }

  if (sub === "state") {
    const { at, goalId, json } = auditStateArgs(rest);
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
    const listed = parseCommandArgs(AUDIT_COMMANDS.verify, rest).values.topics;
    const topics = listed
      ? listed.split(",").filter(Boolean)
      : TOPICS.filter((t) => t.name !== "polity.deadletters").map((t) => physicalTopic(t.name, prefix));
    const report = await verifyTopics(kafka, topics, { onProgress: progress("verify") });
    console.log(verifyText(report));
    return report.ok ? 0 : 1;
  }

  throw new CliExit(2, `polity audit ${sub}: not handled`);
}
