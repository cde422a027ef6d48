/**
 * The embedded backend on the real runtime: node-llama-cpp's prebuilt CPU binary running a tiny
 * random-weight GGUF model that tiny-gguf.ts writes into a temp dir. The model's text is
 * meaningless, but grammar-constrained answers must still be JSON fitting the schema, and the
 * call's accounting (tokens, stop reason, aborts, errors) must be right.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { openEmbeddedModel } from "../../processors/ai/embedded-backend.js";
import { ModelError, type ChatModel, type ChatRequest, type JsonSchema } from "../../processors/ai/model.js";
import { writeTinyGguf } from "../../processors/ai/tiny-gguf.js";

const DOMAINS = ["backend", "frontend", "data"] as const;
const KINDS = ["plan", "answer"] as const;

/** An enum, bounded strings, bounded arrays, nested objects: the shape of a plan. */
const PLAN_SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    kind: { enum: KINDS },
    summary: { type: "string", maxLength: 30 },
    tasks: {
      type: "array",
      minItems: 1,
      maxItems: 3,
      items: {
        type: "object",
        properties: {
          id: { type: "string", minLength: 1, maxLength: 8 },
          domain: { type: "string", enum: DOMAINS },
          dependsOn: { type: "array", maxItems: 2, items: { type: "string", maxLength: 8 } },
        },
        required: ["id", "domain", "dependsOn"],
        additionalProperties: false,
      },
    },
  },
  required: ["kind", "summary", "tasks"],
  additionalProperties: false,
};

/** A schema whose answer takes long: one string of up to 4000 characters. */
const LONG_SCHEMA: JsonSchema = { type: "object", properties: { text: { type: "string", maxLength: 4000 } } };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function assertKeys(v: unknown, keys: string[], where: string): asserts v is Record<string, unknown> {
  assert.ok(isRecord(v), `${where} is an object`);
  assert.deepEqual(Object.keys(v).sort(), [...keys].sort(), `${where} has exactly ${keys.join(", ")}`);
}

function assertString(v: unknown, min: number, max: number, where: string): void {
  assert.equal(typeof v, "string", `${where} is a string`);
  const n = [...(v as string)].length;
  assert.ok(n >= min && n <= max, `${where} has ${n} characters, not within [${min}, ${max}]`);
}

/** Checks a parsed answer against PLAN_SCHEMA by hand. */
function assertFitsPlanSchema(answer: unknown): void {
  assertKeys(answer, ["kind", "summary", "tasks"], "answer");
  assert.ok((KINDS as readonly unknown[]).includes(answer.kind), `kind ${String(answer.kind)} is one of the enum`);
  assertString(answer.summary, 0, 30, "summary");
  const tasks = answer.tasks;
  assert.ok(Array.isArray(tasks), "tasks is an array");
  assert.ok(tasks.length >= 1 && tasks.length <= 3, `tasks has ${tasks.length} items, not within [1, 3]`);
  tasks.forEach((task: unknown, i) => {
    assertKeys(task, ["id", "domain", "dependsOn"], `tasks[${i}]`);
    assertString(task.id, 1, 8, `tasks[${i}].id`);
    assert.ok((DOMAINS as readonly unknown[]).includes(task.domain), `tasks[${i}].domain is one of the enum`);
    const deps = task.dependsOn;
    assert.ok(Array.isArray(deps) && deps.length <= 2, `tasks[${i}].dependsOn is an array of at most 2`);
    deps.forEach((d: unknown, j) => assertString(d, 0, 8, `tasks[${i}].dependsOn[${j}]`));
  });
}

function request(overrides: Partial<ChatRequest> = {}): ChatRequest {
  return {
    system: "You are a planner. Answer with a plan of at most 3 tasks.",
    user: "Plan the build of a small web shop: catalogue, cart, checkout.",
    schema: PLAN_SCHEMA,
    maxTokens: 1000,
    signal: AbortSignal.timeout(15_000),
    ...overrides,
  };
}

describe("embedded backend (node-llama-cpp, tiny random GGUF)", () => {
  let dir: string;
  let modelPath: string;
  let model: ChatModel;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "polity-embedded-"));
    modelPath = join(dir, "tiny.gguf");
    writeTinyGguf(modelPath, { seed: 1 });
    // One thread: the tiny model gains nothing from more, and ggml's spinning threads crawl on busy cores.
    model = await openEmbeddedModel({ modelPath, contextSize: 1024, threads: 1, sequences: 2 });
  });

  after(async () => {
    await model?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("writes a small GGUF file, the same bytes for the same seed", () => {
    const again = join(dir, "again.gguf");
    const other = join(dir, "other.gguf");
    writeTinyGguf(again, { seed: 1 });
    writeTinyGguf(other, { seed: 2 });
    const bytes = readFileSync(modelPath);
    assert.equal(bytes.subarray(0, 4).toString("ascii"), "GGUF");
    assert.equal(bytes.readUInt32LE(4), 3, "GGUF version 3");
    assert.ok(statSync(modelPath).size < 2_000_000, "well under 2 MB");
    assert.ok(bytes.equals(readFileSync(again)), "same seed, same bytes");
    assert.ok(!bytes.equals(readFileSync(other)), "another seed, other weights");
  });

  it("answers JSON that fits a schema with enums, bounded strings and bounded arrays", async () => {
    const answer = await model.chat(request());
    assert.equal(answer.finishReason, "stop", `finished (text: ${answer.text})`);
    assertFitsPlanSchema(JSON.parse(answer.text));
  });

  it("reports tokens in and out, the model name, latency and progress", async () => {
    const progress: number[] = [];
    const answer = await model.chat(request({ onProgress: (n) => progress.push(n) }));
    assert.equal(answer.model, "embedded:tiny.gguf");
    assert.equal(model.name, "embedded:tiny.gguf");
    // The tiny vocabulary is mostly single characters: the prompts alone are > 100 tokens.
    assert.ok(answer.tokensIn > 100, `tokensIn ${answer.tokensIn}`);
    assert.ok(answer.tokensOut > 0, `tokensOut ${answer.tokensOut}`);
    assert.ok(answer.latencyMs >= 0 && answer.latencyMs < 15_000, `latencyMs ${answer.latencyMs}`);
    assert.ok(progress.length > 0, "onProgress was called");
    assert.deepEqual(
      progress,
      [...progress].sort((a, b) => a - b),
      "progress grows",
    );
    assert.equal(progress.at(-1), answer.tokensOut, "the last progress is the answer's tokens");
  });

  it('cuts at maxTokens with finishReason "length"', async () => {
    const answer = await model.chat(request({ maxTokens: 4 }));
    assert.equal(answer.finishReason, "length");
    assert.equal(answer.tokensOut, 4);
    assert.throws(() => JSON.parse(answer.text), SyntaxError, "a cut answer is unfinished JSON");
  });

  it('is "stop" when maxTokens only cuts the newlines the grammar adds after the JSON', async () => {
    const full = await model.chat(request());
    assert.equal(full.finishReason, "stop");
    // node-llama-cpp's JSON grammar ends with four newlines (its stop trigger): they are tokens too.
    const cut = await model.chat(request({ maxTokens: full.tokensOut - 2 }));
    assert.equal(cut.tokensOut, full.tokensOut - 2);
    assert.equal(cut.text, full.text);
    assert.equal(cut.finishReason, "stop");
  });

  it("rejects with a retryable ModelError when the signal aborts, and keeps working after", async () => {
    const controller = new AbortController();
    let seen = 0;
    const call = model.chat(
      request({
        schema: LONG_SCHEMA,
        maxTokens: 3000,
        signal: controller.signal,
        onProgress: (n) => {
          seen = n;
          controller.abort(new Error("attempt timed out"));
        },
      }),
    );
    await assert.rejects(call, (err: unknown) => {
      assert.ok(err instanceof ModelError, `a ModelError, got ${String(err)}`);
      assert.equal(err.retryable, true);
      assert.match(err.message, /aborted: attempt timed out/);
      return true;
    });
    assert.ok(seen > 0, "generation had started");

    const early = new AbortController();
    early.abort();
    await assert.rejects(model.chat(request({ signal: early.signal })), (err: unknown) => {
      assert.ok(err instanceof ModelError && err.retryable && /aborted/.test(err.message), String(err));
      return true;
    });

    const answer = await model.chat(request());
    assertFitsPlanSchema(JSON.parse(answer.text));
  });

  it("answers two chats in a row the same way, and two at once", async () => {
    const first = await model.chat(request());
    const second = await model.chat(request());
    assert.equal(first.finishReason, "stop");
    assert.equal(second.text, first.text, "greedy sampling: the same prompt, the same answer");
    assertFitsPlanSchema(JSON.parse(second.text));

    const other = request({ user: "Plan a command-line tool that renames photos by date." });
    const [a, b, c] = await Promise.all([model.chat(request()), model.chat(other), model.chat(request())]);
    for (const answer of [a, b, c]) {
      assert.equal(answer?.finishReason, "stop");
      assertFitsPlanSchema(JSON.parse(answer!.text));
    }
  });

  it("fails clearly when the model file is missing", async () => {
    const missing = join(dir, "no-such-model.gguf");
    await assert.rejects(openEmbeddedModel({ modelPath: missing }), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.ok(err.message.includes(missing), `names the path: ${err.message}`);
      assert.match(err.message, /no GGUF model file/);
      assert.match(err.message, /writeTinyGguf|node-llama-cpp pull/, "says how to get one");
      return true;
    });
  });
});
