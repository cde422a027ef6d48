/**
 * The model executor and the model planner over the openai backend, against a local HTTP server
 * that answers what each test needs (a wrong-shaped answer, a refusal, a plan that is not one):
 * what prompt reaches the model, and how each answer becomes an outcome. The same code on a real
 * inference runtime is tested in test/integration/model-agents.test.ts.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { modelExecutor } from "../../processors/ai/model-executor.js";
import { planWithModel } from "../../processors/ai/model-planner.js";
import { openaiModel } from "../../processors/ai/openai-backend.js";
import type { Execution } from "../../processors/executors.js";
import type { PlanRequest } from "../../processors/domain/kernel/state.js";

/** What the next request gets: the message's content, or a refusal. */
let next: { content: string; finish?: string; refusal?: string } = { content: "{}" };
const bodies: { messages: { role: string; content: string }[] }[] = [];

const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on("data", (p: Buffer) => parts.push(p));
  req.on("end", () => {
    bodies.push(JSON.parse(Buffer.concat(parts).toString("utf8")) as (typeof bodies)[number]);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        model: "served-model",
        choices: [
          {
            message: { role: "assistant", content: next.content, ...(next.refusal ? { refusal: next.refusal } : {}) },
            finish_reason: next.finish ?? "stop",
          },
        ],
        usage: { prompt_tokens: 1200, completion_tokens: 300 },
      }),
    );
  });
});

let baseUrl = "";
before(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
after(() => server.close());

const execution = (inputs: Record<string, string> = {}): Execution => ({
  goalId: "g1",
  taskId: "t2",
  attempt: 1,
  agentId: "w1",
  spec: {
    id: "t2",
    title: "Write the tests",
    description: "Unit tests for the todo API",
    domain: "testing",
    specialization: "unit-test",
    phase: null,
    dependsOn: ["t1"],
    estimatedEffortMs: null,
    priority: null,
    inputs,
    timeoutMs: null,
  },
  dependencies: [{ taskId: "t1", title: "Build the API", result: "GET /todos done", outputs: { port: "8080" } }],
});

const never = new AbortController().signal;

describe("model executor", () => {
  const model = () => openaiModel({ baseUrl, model: "m", maxRetries: 0 });
  const pricing = { inputPer1k: "0.0010", outputPer1k: "0.0020" };
  const run = (inputs?: Record<string, string>) =>
    modelExecutor(
      model(),
      { model: "m", systemPrompt: "You are a careful tester." },
      { domain: "testing", specialization: "unit-test" },
      pricing,
    ).run(execution(inputs), never);

  it("prompts with the role, the task and its dependencies' results, and completes with the answer's fields and cost", async () => {
    next = { content: JSON.stringify({ result: "12 tests written" }) };
    const outcome = await run({ framework: "node:test" });
    const [system, user] = bodies.at(-1)!.messages;
    assert.equal(system!.content, "You are a careful tester.");
    assert.match(user!.content, /Task: Write the tests/);
    assert.match(user!.content, /Description: Unit tests for the todo API/);
    assert.match(user!.content, /- framework: node:test/);
    assert.match(user!.content, /- Build the API \(t1\): GET \/todos done\n {2}port: 8080/);
    assert.equal(outcome.ok, true);
    if (!outcome.ok) return;
    assert.equal(outcome.result, "12 tests written");
    assert.deepEqual(outcome.outputs, { result: "12 tests written" });
    // 1200 tokens in at 0.001 per 1000, 300 out at 0.002 per 1000.
    assert.equal(outcome.cost, "0.0018");
    assert.equal(outcome.usage?.model, "served-model");
    assert.equal(outcome.usage?.tokensIn, 1200);
    assert.match(outcome.usage!.promptDigest!, /^[0-9a-f]{64}$/);
  });

  it("fails an answer that does not fit its schema, naming the field, with the tokens it used", async () => {
    next = { content: JSON.stringify({ verdict: "maybe" }) };
    const schema = JSON.stringify({
      type: "object",
      properties: { verdict: { enum: ["pass", "fail"] } },
      required: ["verdict"],
    });
    const outcome = await run({ outputSchema: schema });
    assert.equal(outcome.ok, false);
    if (outcome.ok) return;
    assert.equal(outcome.kind, "INVALID_OUTPUT");
    assert.equal(outcome.retryable, true);
    assert.match(outcome.reason, /answer\.verdict must be one of "pass", "fail", got "maybe"/);
    assert.equal(outcome.usage?.tokensOut, 300);
    // The task's own schema went to the model, not the group's default.
    assert.match(JSON.stringify(bodies.at(-1)), /"verdict"/);
  });

  it("fails a refusal and a cut-off answer with the reason", async () => {
    next = { content: "", refusal: "I cannot help with that" };
    const refused = await run();
    assert.ok(!refused.ok && /the model refused: I cannot help with that/.test(refused.reason));
    next = { content: '{"result": "unfinis', finish: "length" };
    const cut = await run();
    assert.ok(!cut.ok && /cut off at 1536 tokens/.test(cut.reason), JSON.stringify(cut));
  });

  it("refuses a task whose outputSchema is not a schema, without calling the model", async () => {
    const calls = bodies.length;
    const outcome = await run({ outputSchema: "[1, 2]" });
    assert.ok(
      !outcome.ok && !outcome.retryable && /outputSchema input is not a JSON schema object/.test(outcome.reason),
    );
    assert.equal(bodies.length, calls);
  });
});

describe("model planner", () => {
  const request: PlanRequest = {
    goalId: "g1",
    requestId: "g1:DESIGN:2",
    phase: "DESIGN",
    attempt: 2,
    maxAttempts: 3,
    planner: "model",
    model: "m",
    domains: ["backend"],
    specializations: { backend: ["api"] },
    feedback: ['task "design-t2" depends on itself'],
    requestedAt: new Date(0),
  };
  const goal = {
    goalId: "g1",
    title: "Todo app",
    description: "A todo app",
    kind: "PROJECT" as const,
    constraints: {},
    priority: 5,
  };

  it("numbers the tasks into phase-prefixed ids, and puts the phase's duties and the last problems in the prompt", async () => {
    next = {
      content: JSON.stringify({
        tasks: [
          { title: "Design API", description: "", domain: "backend", specialization: "api", dependsOn: [] },
          { title: "Design DB", description: "d", domain: "backend", specialization: "api", dependsOn: [1] },
        ],
      }),
    };
    const finished = await planWithModel(openaiModel({ baseUrl, model: "m" }), goal, request, {}, never);
    assert.equal(finished.error, null);
    assert.deepEqual(
      finished.tasks.map((t) => [t.id, t.phase, t.dependsOn, t.description]),
      [
        ["design-t1", "DESIGN", [], null],
        ["design-t2", "DESIGN", ["design-t1"], "d"],
      ],
    );
    const user = bodies.at(-1)!.messages[1]!.content;
    assert.match(user, /DESIGN phase of a project\. The mayor tier leads it/);
    assert.match(user, /president approves the architecture across domains/);
    assert.match(user, /previous plan \(attempt 1\) was refused:\n- task "design-t2" depends on itself/);
  });

  it("reports an answer that is not a plan as the planning's error", async () => {
    next = { content: "Sure! Here is a plan: build it." };
    const finished = await planWithModel(openaiModel({ baseUrl, model: "m" }), goal, request, {}, never);
    assert.deepEqual(finished.tasks, []);
    assert.match(finished.error!, /^no plan: the answer is not JSON/);
    assert.equal(finished.usage?.tokensIn, 1200);
  });
});
