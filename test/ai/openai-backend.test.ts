/**
 * The openai backend against a local HTTP server on 127.0.0.1 that misbehaves on purpose: rate
 * limits, 5xx, dropped connections, hung streams, malformed data, error bodies echoing the key.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { inspect } from "node:util";
import { describe, it } from "node:test";
import { ModelError, type ChatModel, type ChatRequest } from "../../processors/ai/model.js";
import { openaiModel, retryAfter, type OpenAiConfig } from "../../processors/ai/openai-backend.js";

const KEY = "sk-test-9f8e7d6c5b4a-DO-NOT-LEAK";
const ENV = { POLITY_TEST_OPENAI_KEY: KEY };

interface Seen {
  count: number;
  /** When each request arrived (performance.now()). */
  times: number[];
  headers: IncomingHttpHeaders[];
  bodies: Record<string, unknown>[];
  paths: string[];
  /** Resolves when the socket of a request closes (by request index, 1-based). */
  closed: Map<number, Promise<number>>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

interface Server {
  baseUrl: string;
  seen: Seen;
  close(): Promise<void>;
}

async function serve(handler: Handler): Promise<Server> {
  const seen: Seen = { count: 0, times: [], headers: [], bodies: [], paths: [], closed: new Map() };
  const server = createServer((req, res) => {
    const n = ++seen.count;
    seen.times.push(performance.now());
    seen.headers.push(req.headers);
    seen.paths.push(req.url ?? "");
    seen.closed.set(n, new Promise((resolve) => req.socket.once("close", () => resolve(performance.now()))));
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("end", () => {
      const text = Buffer.concat(parts).toString("utf8");
      seen.bodies.push(text === "" ? {} : (JSON.parse(text) as Record<string, unknown>));
      handler(req, res, n);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function withServer(handler: Handler, run: (server: Server) => Promise<void>): Promise<void> {
  const server = await serve(handler);
  try {
    await run(server);
  } finally {
    await server.close();
  }
}

function model(server: Server, extra: Partial<OpenAiConfig> = {}, env: NodeJS.ProcessEnv = ENV): ChatModel {
  return openaiModel({ baseUrl: server.baseUrl, model: "tiny", retryBaseMs: 5, ...extra }, env);
}

const SCHEMA = { type: "object", properties: { a: { type: "number" } }, required: ["a"] };

function request(extra: Partial<ChatRequest> = {}): ChatRequest {
  return {
    system: "You answer in JSON.",
    user: "Give me a.",
    schema: SCHEMA,
    maxTokens: 64,
    // A safety net: no test should get anywhere near it.
    signal: AbortSignal.timeout(10_000),
    ...extra,
  };
}

const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  model: "tiny-as-served",
  choices: [{ index: 0, delta, finish_reason: finish }],
});
const usageChunk = (prompt: number, completion: number) => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  model: "tiny-as-served",
  choices: [],
  usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
});

function sse(res: ServerResponse, events: unknown[], done = true): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const event of events) res.write(`data: ${JSON.stringify(event)}\n\n`);
  if (done) res.end("data: [DONE]\n\n");
}

/** A normal streamed answer: {"a":1} in three pieces, then usage. */
function answerOk(res: ServerResponse): void {
  sse(res, [
    chunk({ role: "assistant", content: "" }),
    chunk({ content: '{"a"' }),
    chunk({ content: ":" }),
    chunk({ content: "1}" }),
    chunk({}, "stop"),
    usageChunk(21, 7),
  ]);
}

function fail(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ error: { message, type: "test_error" } }));
}

async function rejection(promise: Promise<unknown>): Promise<ModelError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ModelError, `expected a ModelError, got ${inspect(error)}`);
    return error;
  }
  assert.fail("expected the call to reject");
}

describe("openai backend: answers", () => {
  it("(a) streams a completion: text, tokens from usage, finish reason, progress, the request it sent", async () => {
    await withServer(
      (_req, res) => answerOk(res),
      async (server) => {
        const progress: number[] = [];
        const answer = await model(server).chat(request({ onProgress: (n) => progress.push(n) }));
        assert.equal(answer.text, '{"a":1}');
        assert.equal(answer.tokensIn, 21);
        assert.equal(answer.tokensOut, 7);
        assert.equal(answer.finishReason, "stop");
        assert.equal(answer.model, "tiny-as-served");
        assert.equal(answer.refusal, undefined);
        assert.ok(answer.latencyMs >= 0);
        assert.deepEqual(progress, [1, 2, 3, 7], "chunks counted while usage is unknown, then usage");

        assert.equal(server.seen.count, 1);
        assert.equal(server.seen.paths[0], "/v1/chat/completions");
        assert.equal(server.seen.headers[0]?.authorization, undefined, "no apiKeyEnv: no Authorization header");
        const body = server.seen.bodies[0];
        assert.equal(body?.model, "tiny");
        assert.deepEqual(body?.messages, [
          { role: "system", content: "You answer in JSON." },
          { role: "user", content: "Give me a." },
        ]);
        assert.equal(body?.max_tokens, 64);
        assert.deepEqual(body?.response_format, {
          type: "json_schema",
          json_schema: { name: "answer", strict: true, schema: SCHEMA },
        });
        assert.equal(body?.stream, true);
        assert.deepEqual(body?.stream_options, { include_usage: true });
        assert.equal("temperature" in (body ?? {}), false);
      },
    );
  });

  it("parses SSE split at arbitrary byte boundaries with CRLF line endings and comments", async () => {
    const events = [
      ": keep-alive",
      "",
      `data: ${JSON.stringify(chunk({ content: '{"a":' }))}`,
      "",
      `data: ${JSON.stringify(chunk({ content: "2}" }, "stop"))}`,
      "",
      `data: ${JSON.stringify(usageChunk(3, 2))}`,
      "",
      "data: [DONE]",
      "",
      "",
    ].join("\r\n");
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        let at = 0;
        const step = () => {
          if (at >= events.length) return res.end();
          res.write(events.slice(at, at + 7));
          at += 7;
          setTimeout(step, 1);
        };
        step();
      },
      async (server) => {
        const answer = await model(server, { temperature: 0.2 }).chat(request());
        assert.equal(answer.text, '{"a":2}');
        assert.equal(answer.tokensOut, 2);
        assert.equal(answer.finishReason, "stop");
        assert.equal(server.seen.bodies[0]?.temperature, 0.2);
      },
    );
  });

  it("(i) accepts a non-streaming application/json answer", async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
        res.end(
          JSON.stringify({
            id: "chatcmpl-2",
            object: "chat.completion",
            model: "tiny-json",
            choices: [{ index: 0, message: { role: "assistant", content: '{"a":3}' }, finish_reason: "stop" }],
            usage: { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 },
          }),
        );
      },
      async (server) => {
        const progress: number[] = [];
        const answer = await model(server).chat(request({ onProgress: (n) => progress.push(n) }));
        assert.equal(answer.text, '{"a":3}');
        assert.equal(answer.tokensIn, 11);
        assert.equal(answer.tokensOut, 4);
        assert.equal(answer.finishReason, "stop");
        assert.equal(answer.model, "tiny-json");
        assert.deepEqual(progress, [4]);
      },
    );
  });

  it('(j) maps finish_reason "length" to "length"', async () => {
    await withServer(
      (_req, res) => sse(res, [chunk({ content: '{"a":12' }), chunk({}, "length"), usageChunk(5, 64)]),
      async (server) => {
        const answer = await model(server).chat(request());
        assert.equal(answer.finishReason, "length");
        assert.equal(answer.text, '{"a":12');
        assert.equal(answer.tokensOut, 64);
      },
    );
  });

  it('(j) a refusal in the delta is finishReason "refusal" with its text', async () => {
    await withServer(
      (_req, res) =>
        sse(res, [chunk({ refusal: "I can't " }), chunk({ refusal: "help with that." }), chunk({}, "stop")]),
      async (server) => {
        const answer = await model(server).chat(request());
        assert.equal(answer.finishReason, "refusal");
        assert.equal(answer.refusal, "I can't help with that.");
        assert.equal(answer.text, "");
      },
    );
  });

  it('(j) a refusal in a non-streamed message, and finish_reason "content_filter", are refusals', async () => {
    let n = 0;
    await withServer(
      (_req, res) => {
        n += 1;
        if (n === 1) {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              choices: [{ index: 0, message: { content: null, refusal: "No." }, finish_reason: "stop" }],
            }),
          );
        } else {
          sse(res, [chunk({ content: "{" }), chunk({}, "content_filter")]);
        }
      },
      async (server) => {
        const first = await model(server).chat(request());
        assert.equal(first.finishReason, "refusal");
        assert.equal(first.refusal, "No.");
        const second = await model(server).chat(request());
        assert.equal(second.finishReason, "refusal");
        assert.equal(second.text, "{");
      },
    );
  });

  it("without usage, tokensOut counts content chunks and tokensIn is estimated", async () => {
    await withServer(
      (_req, res) => sse(res, [chunk({ content: "{" }), chunk({ content: "}" }, "stop")]),
      async (server) => {
        const answer = await model(server).chat(request());
        assert.equal(answer.tokensOut, 2);
        assert.ok(answer.tokensIn > 0);
        assert.equal(answer.model, "tiny-as-served");
      },
    );
  });
});

describe("openai backend: retries", () => {
  it("(b) 429 with Retry-After: 1 then success waits the server's second", async () => {
    await withServer(
      (_req, res, n) => (n === 1 ? fail(res, 429, "slow down", { "retry-after": "1" }) : answerOk(res)),
      async (server) => {
        const answer = await model(server).chat(request());
        assert.equal(answer.text, '{"a":1}');
        assert.equal(server.seen.count, 2);
        const waited = (server.seen.times[1] ?? 0) - (server.seen.times[0] ?? 0);
        assert.ok(waited >= 900, `waited ${waited} ms, Retry-After asked for 1000`);
        assert.ok(answer.latencyMs >= 900, `latencyMs ${answer.latencyMs} covers the retries`);
      },
    );
  });

  it("caps Retry-After at maxRetryDelayMs", async () => {
    await withServer(
      (_req, res, n) => (n === 1 ? fail(res, 429, "slow down", { "retry-after": "30" }) : answerOk(res)),
      async (server) => {
        const started = performance.now();
        await model(server, { maxRetryDelayMs: 50 }).chat(request());
        assert.ok(performance.now() - started < 1000);
        assert.equal(server.seen.count, 2);
      },
    );
  });

  it("reads Retry-After as seconds, as an HTTP date, and retry-after-ms", () => {
    const now = Date.parse("2025-01-01T00:00:00Z");
    assert.equal(retryAfter(new Headers({ "retry-after": "2" }), now), 2000);
    assert.equal(retryAfter(new Headers({ "retry-after": "Wed, 01 Jan 2025 00:00:03 GMT" }), now), 3000);
    assert.equal(retryAfter(new Headers({ "retry-after": "Tue, 31 Dec 2024 00:00:00 GMT" }), now), 0);
    assert.equal(retryAfter(new Headers({ "retry-after-ms": "250", "retry-after": "9" }), now), 250);
    assert.equal(retryAfter(new Headers({ "retry-after": "soon" }), now), undefined);
    assert.equal(retryAfter(new Headers(), now), undefined);
  });

  it("(c) 500 twice then success: succeeds after 3 requests", async () => {
    await withServer(
      (_req, res, n) => (n <= 2 ? fail(res, 500, "overloaded") : answerOk(res)),
      async (server) => {
        const answer = await model(server).chat(request());
        assert.equal(answer.text, '{"a":1}');
        assert.equal(server.seen.count, 3);
      },
    );
  });

  it("(d) 500 always: a retryable ModelError after maxRetries + 1 requests, naming attempts and status", async () => {
    await withServer(
      (_req, res) => fail(res, 503, "model is loading"),
      async (server) => {
        const error = await rejection(model(server, { maxRetries: 3 }).chat(request()));
        assert.equal(error.retryable, true);
        assert.equal(server.seen.count, 4);
        assert.match(error.message, /4 attempts/);
        assert.match(error.message, /HTTP 503/);
        assert.match(error.message, /model is loading/);
      },
    );
  });

  it("a connection dropped before the response is retried", async () => {
    await withServer(
      (req, res, n) => (n === 1 ? req.socket.destroy() : answerOk(res)),
      async (server) => {
        const answer = await model(server).chat(request());
        assert.equal(answer.text, '{"a":1}');
        assert.equal(server.seen.count, 2);
      },
    );
  });

  it("a refused connection is retried, then a retryable ModelError names ECONNREFUSED", async () => {
    const server = await serve((_req, res) => answerOk(res));
    await server.close();
    const error = await rejection(model(server, { maxRetries: 2 }).chat(request()));
    assert.equal(error.retryable, true);
    assert.match(error.message, /3 attempts/);
    assert.match(error.message, /ECONNREFUSED/);
  });
});

describe("openai backend: failures", () => {
  it(
    "(e) a stream that never ends: aborting the signal rejects promptly and closes the socket",
    { timeout: 5_000 },
    async () => {
      await withServer(
        (_req, res) => {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.write(`data: ${JSON.stringify(chunk({ content: "{" }))}\n\n`); // ...and nothing more, ever
        },
        async (server) => {
          const controller = new AbortController();
          setTimeout(() => controller.abort(), 300);
          const progress: number[] = [];
          const started = performance.now();
          const error = await rejection(
            model(server).chat(request({ signal: controller.signal, onProgress: (n) => progress.push(n) })),
          );
          const elapsed = performance.now() - started;
          assert.ok(elapsed >= 250 && elapsed < 2000, `rejected after ${elapsed} ms`);
          assert.equal(error.retryable, true);
          assert.match(error.message, /abort|timed out/);
          assert.deepEqual(progress, [1], "the first chunk was seen before the hang");
          const closed = server.seen.closed.get(1);
          assert.ok(closed !== undefined);
          let timer: NodeJS.Timeout | undefined;
          const closedAt = await Promise.race([
            closed,
            new Promise<number>((resolve) => (timer = setTimeout(() => resolve(Infinity), 2000))),
          ]);
          clearTimeout(timer);
          assert.ok(closedAt - started < 2000, "the client closed the socket");
          assert.equal(server.seen.count, 1, "an abort is not retried");
        },
      );
    },
  );

  it("a timeout signal during a hung response says it timed out", { timeout: 5_000 }, async () => {
    await withServer(
      () => {}, // never answers, not even headers
      async (server) => {
        const started = performance.now();
        const error = await rejection(model(server).chat(request({ signal: AbortSignal.timeout(200) })));
        assert.ok(performance.now() - started < 2000);
        assert.equal(error.retryable, true);
        assert.match(error.message, /timed out/);
      },
    );
  });

  it("an abort during a backoff sleep rejects at once", { timeout: 5_000 }, async () => {
    await withServer(
      (_req, res) => fail(res, 429, "slow down", { "retry-after": "20" }),
      async (server) => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 200);
        const started = performance.now();
        const error = await rejection(model(server).chat(request({ signal: controller.signal })));
        assert.ok(performance.now() - started < 2000);
        assert.equal(error.retryable, true);
        assert.match(error.message, /abort/);
        assert.equal(server.seen.count, 1);
      },
    );
  });

  it("(f) malformed JSON in the stream is a retryable ModelError", { timeout: 5_000 }, async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify(chunk({ content: "{" }))}\n\n`);
        res.write('data: {"choices": [{"delta": {"content": "oops\n\n'); // cut mid-object
        // ...and the stream stays open: the client must stop on its own.
      },
      async (server) => {
        const started = performance.now();
        const error = await rejection(model(server).chat(request()));
        assert.ok(performance.now() - started < 2000);
        assert.equal(error.retryable, true);
        assert.match(error.message, /malformed/);
        assert.equal(server.seen.count, 1, "malformed data is not retried inside the call");
      },
    );
  });

  it("(f) a malformed application/json body is a retryable ModelError", async () => {
    await withServer(
      (_req, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{not json");
      },
      async (server) => {
        const error = await rejection(model(server).chat(request()));
        assert.equal(error.retryable, true);
        assert.match(error.message, /malformed/);
      },
    );
  });

  it("a stream that ends before any finish_reason or [DONE] is a retryable ModelError", async () => {
    await withServer(
      (_req, res) => {
        sse(res, [chunk({ content: '{"a"' })], false);
        res.end();
      },
      async (server) => {
        const error = await rejection(model(server).chat(request()));
        assert.equal(error.retryable, true);
        assert.match(error.message, /ended before the answer finished/);
      },
    );
  });

  it("(g) 400 with an error body: a non-retryable ModelError with the status and the server's message", async () => {
    const long = "x".repeat(5000);
    await withServer(
      (_req, res) => fail(res, 400, `response_format json_schema is not supported by this model ${long}`),
      async (server) => {
        const error = await rejection(model(server).chat(request()));
        assert.equal(error.retryable, false);
        assert.equal(server.seen.count, 1, "a 400 is not retried");
        assert.match(error.message, /400/);
        assert.match(error.message, /response_format json_schema is not supported/);
        assert.ok(error.message.length < 600, `the message is truncated (${error.message.length} chars)`);
        assert.match(error.message, /^openai:tiny: /);
      },
    );
  });
});

describe("openai backend: the API key", () => {
  function assertNoKey(thing: unknown, what: string): void {
    const views = [String(thing), inspect(thing, { depth: 10, showHidden: true }), JSON.stringify(thing) ?? ""];
    if (thing instanceof Error) views.push(thing.message, thing.stack ?? "", thing.name);
    for (const view of views) assert.ok(!view.includes(KEY), `${what} leaks the key: ${view}`);
  }

  it("(h) sends the key from the named variable, and no failure's error carries it", { timeout: 5_000 }, async () => {
    const echo = (req: IncomingMessage) => `bad auth header: ${req.headers.authorization ?? ""}`;
    await withServer(
      (req, res) => {
        const path = String(req.url);
        if (path.startsWith("/ok/")) return answerOk(res);
        if (path.startsWith("/400/")) return fail(res, 400, echo(req));
        if (path.startsWith("/401/")) return fail(res, 401, echo(req));
        if (path.startsWith("/500/")) return fail(res, 500, echo(req));
        if (path.startsWith("/text500/")) {
          res.writeHead(502, { "content-type": "text/plain" });
          return res.end(echo(req));
        }
        if (path.startsWith("/malformed/")) {
          res.writeHead(200, { "content-type": "text/event-stream" });
          return res.end(`data: {${echo(req)}\n\n`);
        }
        if (path.startsWith("/midstream/")) {
          return sse(res, [{ error: { message: echo(req) } }]);
        }
        if (path.startsWith("/hang/")) {
          res.writeHead(200, { "content-type": "text/event-stream" });
          return res.write(": hello\n\n");
        }
        res.writeHead(404).end();
      },
      async (server) => {
        const root = server.baseUrl.replace(/\/v1$/, "");
        const at = (path: string) =>
          openaiModel(
            {
              baseUrl: `${root}/${path}/v1`,
              model: "tiny",
              apiKeyEnv: "POLITY_TEST_OPENAI_KEY",
              retryBaseMs: 1,
              maxRetries: 1,
            },
            ENV,
          );

        const ok = at("ok");
        await ok.chat(request());
        assert.equal(server.seen.headers[0]?.authorization, `Bearer ${KEY}`);
        assertNoKey(ok, "the model object");
        assert.equal(ok.name, "openai:tiny");

        const failures: ModelError[] = [];
        for (const path of ["400", "401", "500", "text500", "malformed", "midstream"]) {
          const error = await rejection(at(path).chat(request()));
          assert.ok(error.message.includes("[redacted]"), `${path}: the echoed key was redacted: ${error.message}`);
          failures.push(error);
        }
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 100);
        failures.push(await rejection(at("hang").chat(request({ signal: controller.signal }))));
        const closed = await serve(() => {});
        await closed.close();
        failures.push(
          await rejection(
            openaiModel(
              {
                baseUrl: closed.baseUrl,
                model: "tiny",
                apiKeyEnv: "POLITY_TEST_OPENAI_KEY",
                retryBaseMs: 1,
                maxRetries: 0,
              },
              ENV,
            ).chat(request()),
          ),
        );
        assert.equal(failures.length, 8);
        failures.forEach((error, i) => assertNoKey(error, `failure ${i}`));
      },
    );
  });

  it("(h) a missing or empty key variable fails at construction, naming the variable", () => {
    const config = { baseUrl: "http://127.0.0.1:1/v1", model: "tiny", apiKeyEnv: "POLITY_TEST_MISSING_KEY" };
    assert.throws(() => openaiModel(config, {}), /POLITY_TEST_MISSING_KEY.*not set/);
    assert.throws(() => openaiModel(config, { POLITY_TEST_MISSING_KEY: "  " }), /POLITY_TEST_MISSING_KEY.*empty/);
    assert.doesNotThrow(() => openaiModel({ ...config, apiKeyEnv: "POLITY_TEST_OPENAI_KEY" }, ENV));
    assert.throws(() => openaiModel({ baseUrl: "localhost:11434", model: "tiny" }, {}), /baseUrl/);
    try {
      openaiModel(config, {});
    } catch (error) {
      assert.ok(error instanceof Error && !error.message.includes(KEY));
    }
  });
});
