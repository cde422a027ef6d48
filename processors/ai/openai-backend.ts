/**
 * The `openai` backend: any OpenAI-compatible chat-completions endpoint (Ollama, vLLM, llama.cpp's
 * server, LM Studio, hosted providers).
 *
 * One `chat` call is one logical request: it streams the answer (server-sent events), and retries
 * inside the call what is worth retrying before an answer starts (429, 5xx, refused or reset
 * connections), honouring `Retry-After`. What happens once an answer is streaming (a dropped
 * connection, malformed data) ends the call with a retryable ModelError: the caller decides whether
 * to spend another attempt. The caller's signal is the attempt's deadline: it ends the call at once,
 * during a request, a hung stream or a backoff sleep, and releases the socket.
 *
 * The API key is read from a named environment variable once, kept in a closure, and scrubbed from
 * every message this module produces (a misbehaving proxy may echo it back); no error carries a
 * `cause` that could hold it, and this module logs nothing.
 */
import type { ChatAnswer, ChatModel, ChatRequest } from "./model.js";
import { ModelError } from "./model.js";

export interface OpenAiConfig {
  /** The API root, e.g. http://127.0.0.1:11434/v1 (Ollama) or https://api.openai.com/v1. */
  baseUrl: string;
  /** The model to ask, as the server names it. */
  model: string;
  /** The NAME of the environment variable holding the API key; absent = no Authorization header. */
  apiKeyEnv?: string;
  /** Retries inside one call (429, 5xx, connection errors); default 4, so at most 5 requests. */
  maxRetries?: number;
  /** Base of the exponential backoff, in ms; default 500. */
  retryBaseMs?: number;
  /** Cap on one backoff sleep (Retry-After included), in ms; default 30000. */
  maxRetryDelayMs?: number;
  temperature?: number;
}

/** Error bodies and malformed data are quoted up to this many characters. */
const QUOTE_LIMIT = 300;
/** Error bodies are read up to this many bytes. */
const ERROR_BODY_LIMIT = 16 * 1024;
/** Connection errors worth another request (the server may be starting, restarting or overloaded). */
const RETRYABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
]);

type FinishReason = ChatAnswer["finishReason"];

interface Usage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
}

/** What one request produced: an answer, or a failure worth another request. */
type Attempt =
  { kind: "answer"; answer: Omit<ChatAnswer, "latencyMs"> } | { kind: "retry"; reason: string; retryAfterMs?: number };

export function openaiModel(config: OpenAiConfig, env: NodeJS.ProcessEnv = process.env): ChatModel {
  if (typeof config.baseUrl !== "string" || config.baseUrl.trim() === "") {
    throw new Error("openai backend: baseUrl is required (e.g. http://127.0.0.1:11434/v1)");
  }
  if (!URL.canParse(config.baseUrl) || !/^https?:$/.test(new URL(config.baseUrl).protocol)) {
    throw new Error(`openai backend: baseUrl ${JSON.stringify(config.baseUrl)} is not an http(s) URL`);
  }
  if (typeof config.model !== "string" || config.model.trim() === "") {
    throw new Error("openai backend: model is required (the model's name as the server knows it)");
  }
  const maxRetries = nonNegative(config.maxRetries, 4, "maxRetries");
  const retryBaseMs = nonNegative(config.retryBaseMs, 500, "retryBaseMs");
  const maxRetryDelayMs = nonNegative(config.maxRetryDelayMs, 30_000, "maxRetryDelayMs");

  let apiKey: string | undefined;
  if (config.apiKeyEnv !== undefined) {
    const value = env[config.apiKeyEnv];
    if (value === undefined || value.trim() === "") {
      throw new Error(
        `openai backend: the environment variable ${config.apiKeyEnv} (named by apiKeyEnv) is ` +
          `${value === undefined ? "not set" : "empty"}; export it with the API key, or remove ` +
          `apiKeyEnv if the server needs no key`,
      );
    }
    apiKey = value.trim();
  }

  const name = `openai:${config.model}`;
  const url = `${config.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  /** Every string that may reach an error message goes through here. */
  const redact = (text: string): string => (apiKey ? text.split(apiKey).join("[redacted]") : text);
  const fail = (message: string, retryable: boolean): ModelError =>
    new ModelError(redact(`${name}: ${message}`), retryable);

  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "text/event-stream, application/json",
  };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;

  function abortedError(signal: AbortSignal, startedAt: number): ModelError {
    const reason = signal.reason as { name?: unknown } | undefined;
    const why = reason?.name === "TimeoutError" ? "timed out" : "was aborted (timed out or cancelled)";
    return fail(`the call ${why} after ${Math.round(performance.now() - startedAt)} ms`, true);
  }

  async function attempt(request: ChatRequest, body: string, startedAt: number): Promise<Attempt> {
    // One controller per request: the caller's signal aborts it, and so does this function when it
    // stops reading early, so that no socket outlives the request.
    const controller = new AbortController();
    const onAbort = () => controller.abort(request.signal.reason);
    request.signal.addEventListener("abort", onAbort, { once: true });
    try {
      let response: Response;
      try {
        response = await fetch(url, { method: "POST", headers, body, signal: controller.signal });
      } catch (error) {
        if (request.signal.aborted) throw abortedError(request.signal, startedAt);
        const code = errorCode(error);
        const description = `cannot reach ${url}: ${describeError(error)}`;
        if (code !== undefined && (RETRYABLE_CODES.has(code) || code.startsWith("UND_ERR_"))) {
          return { kind: "retry", reason: description };
        }
        throw fail(description, false);
      }

      if (!response.ok) {
        const text = await readCapped(response, ERROR_BODY_LIMIT);
        const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
        const message = quote(serverMessage(text));
        if (response.status === 429 || response.status >= 500) {
          return { kind: "retry", reason: `${status}: ${message}`, retryAfterMs: retryAfter(response.headers) };
        }
        throw fail(`${status}: ${message}`, false);
      }

      const contentType = response.headers.get("content-type") ?? "";
      const answer = contentType.includes("application/json")
        ? parseCompletion(await response.text(), request)
        : await readStream(response, request);
      return { kind: "answer", answer };
    } catch (error) {
      if (request.signal.aborted) throw abortedError(request.signal, startedAt);
      if (error instanceof ModelError) throw error;
      throw fail(`the connection failed during the answer: ${describeError(error)}`, true);
    } finally {
      request.signal.removeEventListener("abort", onAbort);
      controller.abort();
    }
  }

  /** A non-streamed answer (the server ignored `stream: true`). */
  function parseCompletion(text: string, request: ChatRequest): Omit<ChatAnswer, "latencyMs"> {
    const body = parseJson(text);
    if (body.error !== undefined) throw fail(`the server reported an error: ${quote(errorText(body.error))}`, true);
    const choice = firstChoice(body);
    if (choice === undefined) throw fail(`the server's answer has no choices: ${quote(text)}`, true);
    const message = (choice.message ?? {}) as Record<string, unknown>;
    const content = typeof message.content === "string" ? message.content : "";
    const refusal = typeof message.refusal === "string" && message.refusal !== "" ? message.refusal : undefined;
    const usage = (body.usage ?? {}) as Usage;
    const tokensOut = count(usage.completion_tokens) ?? (content === "" ? 0 : 1);
    request.onProgress?.(tokensOut);
    return answerOf(body.model, content, usage, tokensOut, mapFinish(choice.finish_reason, refusal), refusal, request);
  }

  async function readStream(response: Response, request: ChatRequest): Promise<Omit<ChatAnswer, "latencyMs">> {
    if (response.body === null) throw fail("the server sent an empty answer", true);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let dataLines: string[] = [];
    let content = "";
    let refusal = "";
    let chunks = 0;
    let reported = 0;
    let finish: unknown = undefined;
    let usage: Usage = {};
    let model: unknown = undefined;
    let done = false;

    const dispatch = () => {
      const data = dataLines.join("\n");
      dataLines = [];
      if (data.trim() === "") return;
      if (data.trim() === "[DONE]") {
        done = true;
        return;
      }
      const chunk = parseJson(data);
      if (chunk.error !== undefined) {
        throw fail(`the server reported an error during the answer: ${quote(errorText(chunk.error))}`, true);
      }
      if (chunk.model !== undefined) model = chunk.model;
      if (chunk.usage !== null && typeof chunk.usage === "object") usage = chunk.usage as Usage;
      const choice = firstChoice(chunk);
      if (choice !== undefined) {
        const delta = (choice.delta ?? choice.message ?? {}) as Record<string, unknown>;
        if (typeof delta.content === "string" && delta.content !== "") {
          content += delta.content;
          chunks += 1;
        }
        if (typeof delta.refusal === "string") refusal += delta.refusal;
        if (choice.finish_reason !== null && choice.finish_reason !== undefined) finish = choice.finish_reason;
      }
      const soFar = count(usage.completion_tokens) ?? chunks;
      if (soFar > reported) {
        reported = soFar;
        request.onProgress?.(soFar);
      }
    };
    const line = (text: string) => {
      if (text === "") return dispatch();
      if (text.startsWith(":")) return; // a comment (keep-alive)
      const colon = text.indexOf(":");
      const field = colon === -1 ? text : text.slice(0, colon);
      let value = colon === -1 ? "" : text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") dataLines.push(value);
    };
    const feed = (text: string, final: boolean) => {
      buffer += text;
      // A trailing "\r" may be the first half of "\r\n": keep it for the next read.
      const hold = !final && buffer.endsWith("\r");
      const lines = (hold ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
      const rest = final ? "" : (lines.pop() ?? "");
      buffer = rest + (hold ? "\r" : "");
      for (const each of lines) {
        line(each);
        if (done) return;
      }
      if (final) dispatch();
    };

    try {
      while (!done) {
        const { value, done: ended } = await reader.read();
        if (ended) {
          feed(decoder.decode(), true);
          break;
        }
        feed(decoder.decode(value, { stream: true }), false);
      }
    } finally {
      // Stop reading: after [DONE], on malformed data, on abort. The caller's controller then
      // aborts the request, which closes the socket if the server has not.
      reader.cancel().catch(() => {});
    }

    if (!done && (finish === undefined || finish === null)) {
      throw fail(`the stream ended before the answer finished (${chunks} chunks received)`, true);
    }
    const refusalText = refusal !== "" ? refusal : undefined;
    const tokensOut = count(usage.completion_tokens) ?? chunks;
    return answerOf(model, content, usage, tokensOut, mapFinish(finish, refusalText), refusalText, request);
  }

  function answerOf(
    model: unknown,
    text: string,
    usage: Usage,
    tokensOut: number,
    finishReason: FinishReason,
    refusal: string | undefined,
    request: ChatRequest,
  ): Omit<ChatAnswer, "latencyMs"> {
    const answer: Omit<ChatAnswer, "latencyMs"> = {
      text,
      model: typeof model === "string" && model !== "" ? model : config.model,
      // Without usage, the prompt is estimated at four characters a token.
      tokensIn: count(usage.prompt_tokens) ?? Math.ceil((request.system.length + request.user.length) / 4),
      tokensOut,
      finishReason,
    };
    if (finishReason === "refusal" && refusal !== undefined) answer.refusal = refusal;
    return answer;
  }

  function parseJson(text: string): Record<string, unknown> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw fail(`the server sent malformed data: ${quote(text)}`, true);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw fail(`the server sent malformed data (not a JSON object): ${quote(text)}`, true);
    }
    return value as Record<string, unknown>;
  }

  function quote(text: string): string {
    const clean = redact(text).replace(/\s+/g, " ").trim();
    return clean.length > QUOTE_LIMIT ? `${clean.slice(0, QUOTE_LIMIT)}…` : clean;
  }

  function backoff(retry: number, retryAfterMs: number | undefined): number {
    const exponential = retryBaseMs * 2 ** retry;
    const jittered = exponential / 2 + Math.random() * (exponential / 2);
    return Math.min(maxRetryDelayMs, Math.max(retryAfterMs ?? 0, jittered));
  }

  return {
    name,
    async chat(request: ChatRequest): Promise<ChatAnswer> {
      const startedAt = performance.now();
      if (request.signal.aborted) throw abortedError(request.signal, startedAt);
      const body = JSON.stringify({
        model: config.model,
        messages: [
          { role: "system", content: request.system },
          { role: "user", content: request.user },
        ],
        max_tokens: request.maxTokens,
        ...(config.temperature !== undefined ? { temperature: config.temperature } : {}),
        response_format: { type: "json_schema", json_schema: { name: "answer", strict: true, schema: request.schema } },
        stream: true,
        stream_options: { include_usage: true },
      });
      let last: Extract<Attempt, { kind: "retry" }> | undefined;
      for (let retry = 0; retry <= maxRetries; retry++) {
        if (last !== undefined) {
          try {
            await sleep(backoff(retry - 1, last.retryAfterMs), request.signal);
          } catch {
            throw abortedError(request.signal, startedAt);
          }
        }
        const outcome = await attempt(request, body, startedAt);
        if (outcome.kind === "answer") {
          return { ...outcome.answer, latencyMs: Math.round(performance.now() - startedAt) };
        }
        last = outcome;
      }
      throw fail(
        `gave up after ${maxRetries + 1} attempts (${maxRetries} retries); last: ${last?.reason ?? "unknown"}`,
        true,
      );
    },
    async close(): Promise<void> {},
  };
}

/** `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, in ms; undefined when absent or unreadable. */
export function retryAfter(headers: Headers, now: number = Date.now()): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "" && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const value = headers.get("retry-after")?.trim();
  if (value === undefined || value === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function nonNegative(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new Error(`openai backend: ${field} must be a number >= 0`);
  return value;
}

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function firstChoice(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const choices = body.choices;
  if (!Array.isArray(choices)) return undefined;
  const choice = (choices.find((each) => (each as { index?: unknown })?.index === 0) ?? choices[0]) as unknown;
  return choice !== null && typeof choice === "object" ? (choice as Record<string, unknown>) : undefined;
}

function mapFinish(reason: unknown, refusal: string | undefined): FinishReason {
  if (refusal !== undefined || reason === "content_filter") return "refusal";
  if (reason === "stop") return "stop";
  if (reason === "length") return "length";
  return "other";
}

/** The message in an OpenAI-style error body ({error: {message}}, {error: "…"}, {message}), or the body. */
function serverMessage(text: string): string {
  try {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (body !== null && typeof body === "object") {
      if (body.error !== undefined) return errorText(body.error);
      if (typeof body.message === "string") return body.message;
      if (typeof body.detail === "string") return body.detail;
    }
  } catch {
    // not JSON: quote the text
  }
  return text === "" ? "(empty body)" : text;
}

function errorText(error: unknown): string {
  if (typeof error === "string") return error;
  if (error !== null && typeof error === "object") {
    const message = (error as { message?: unknown }).message;
    if (typeof message === "string") return message;
  }
  return JSON.stringify(error) ?? String(error);
}

function errorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current !== null && typeof current === "object" && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    const errors = (current as { errors?: unknown }).errors; // AggregateError (IPv4 and IPv6 both refused)
    if (Array.isArray(errors) && errors.length > 0) current = errors[0];
    else current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function describeError(error: unknown): string {
  const code = errorCode(error);
  const cause = (error as { cause?: unknown })?.cause;
  const message =
    cause instanceof Error && cause.message !== ""
      ? cause.message
      : error instanceof Error
        ? error.message
        : String(error);
  return code !== undefined && !message.includes(code) ? `${code} ${message}` : message;
}

/** Reads at most `limit` bytes of a body as text, then lets the rest go. */
async function readCapped(response: Response, limit: number): Promise<string> {
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  try {
    while (size < limit) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.byteLength;
      text += decoder.decode(value, { stream: true });
    }
    return text + decoder.decode();
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** Sleeps, or rejects as soon as the signal aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
