/**
 * The Python agent over HTTP (examples/python-http-agent/agent.py, standard library only) as a child
 * process against a gateway started here: it heartbeats, long-polls, accepts, does the work and
 * reports through the worker API, and a goal of two tasks assigned to it completes with its results.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot } from "../../lib/config.js";
import type { PolityEvent } from "../../schemas/reader.js";
import { agentRig, eventually, externalTask, EXTERNAL_AGENT, type AgentRig } from "../support/agent-rig.js";

const python = spawnSync("python3", ["--version"], { encoding: "utf8" });
const noPython =
  python.error || python.status !== 0 ? "python3 is not on the PATH: the Python agent cannot run" : false;

describe("the Python agent over HTTP", { skip: noPython }, () => {
  let rig: AgentRig;
  let child: ChildProcess | undefined;
  let output = "";

  before(async () => {
    rig = await agentRig("python-http");
    await eventually(
      "the external agent in the read model",
      () => rig.read.agent(EXTERNAL_AGENT),
      (a) => !!a?.tier,
    );
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await rig?.stop();
  });

  it("completes a goal of two tasks assigned to it, with the results of its own work", async () => {
    child = spawn(
      "python3",
      [path.join(repoRoot, "examples/python-http-agent/agent.py"), "--wait", "5", "--ask-context"],
      {
        env: { ...process.env, POLITY_URL: rig.url, POLITY_TOKEN: await rig.token("agent", EXTERNAL_AGENT) },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    child.stdout!.on("data", (b: Buffer) => (output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (output += b.toString()));
    await eventually(
      "the agent polling",
      async () => output,
      (o) => o.includes("polling") || child!.exitCode !== null,
      20_000,
    );
    assert.equal(child.exitCode, null, `the agent exited:\n${output}`);

    const text = "the quick brown fox jumps over polity";
    const submitted = await rig.call("POST", "/goals", await rig.token("operator"), {
      title: "python http agent",
      tasks: [
        externalTask("sum", { inputs: { numbers: "3,4,5,6" } }),
        externalTask("hash", { inputs: { text } }, ["sum"]),
      ],
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const goalId = submitted.body.aggregateId as string;
    const end = await rig.d.watch.final(goalId, 40_000).catch((e: Error) => {
      throw new Error(`${e.message}\nagent output:\n${output}`);
    });
    assert.equal(end.type, "GoalCompleted", output);

    const events = rig.d.watch.of(goalId);
    const completed = (taskId: string) =>
      events.find((e) => e.type === "TaskCompleted" && e.value.taskId === taskId)?.value as
        { agentId: string; result: string; outputs: Record<string, string> } | undefined;
    assert.equal(completed("sum")?.agentId, EXTERNAL_AGENT);
    assert.equal(completed("sum")?.result, "sum=18 mean=4.5 min=3 max=6");
    const sha = createHash("sha256").update(text).digest("hex");
    assert.equal(completed("hash")?.outputs.sha256, sha);
    assert.equal(completed("hash")?.outputs.words, "7");
    assert.equal(completed("hash")?.outputs.reversed, [...text].reverse().join(""));
    assert.ok(Number(completed("hash")?.outputs.contextItems) > 0, "it asked its mayor for context and got some");
    const of = (type: string) => events.filter((e: PolityEvent) => e.type === type).length;
    assert.equal(of("TaskAccepted"), 2);
    assert.equal(of("TaskProgressed"), 4, "two progress reports per task");

    // Its heartbeats reached the read model: the health monitor would watch it.
    const agent = await eventually(
      "its heartbeat",
      () => rig.read.agent(EXTERNAL_AGENT),
      (a) => !!a?.lastHeartbeat,
    );
    assert.ok(agent?.lastHeartbeat);

    child.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => {
      if (child!.exitCode !== null) resolve(child!.exitCode);
      else child!.once("exit", (c) => resolve(c));
    });
    assert.equal(code, 0, output);
  });
});
