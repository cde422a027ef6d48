/**
 * The `embedded` chat-model backend: node-llama-cpp (3.21.x) running a GGUF file in this process,
 * on the CPU, with the answer constrained by a grammar built from the request's JSON schema.
 *
 * - The runtime is node-llama-cpp's prebuilt CPU binary (`getLlama({ gpu: false, build: "never" })`):
 *   it never compiles or downloads anything; if the binary does not load, opening fails saying so.
 * - One model, one context holding `sequences` context sequences (default 1). Each `chat()` takes a
 *   free sequence (waiting in FIFO order when all are busy), runs a fresh `LlamaChatSession` on it
 *   (system + user prompt, no earlier turns) and gives the sequence back: the session is disposed
 *   with `disposeSequence: false`, because disposing a session otherwise disposes its sequence.
 *   A sequence keeps its evaluated tokens between calls, so a prompt sharing a prefix with the last
 *   one on that sequence (the same system prompt) is not evaluated again.
 * - Sampling is greedy by default (temperature 0): the same prompt gives the same answer.
 * - Threads default to the cores this process may use, less one (at least 1). ggml's threads
 *   spin-wait for each other at every step, so more threads than idle cores is ruinous: on a 2-core
 *   machine node-llama-cpp's own CPU default (at least 4 threads) made generation ~500x slower, and
 *   2 threads while other processes kept the cores busy ~150x slower than 1 thread.
 *   `maxThreads` is passed to getLlama too, so node-llama-cpp never goes above `threads`.
 *
 * Grammar (node-llama-cpp's JSON-schema subset, see `llama.createGrammarForJsonSchema`): every
 * property of an object is emitted, in schema order (`required` is ignored; additionalProperties
 * defaults to false); `enum`/`const` (checked before `type`), `oneOf` (not `anyOf`: this backend
 * rewrites `anyOf` to `oneOf`), strings with minLength/maxLength and format date/time/date-time,
 * arrays with items/prefixItems/minItems/maxItems, number/integer (no minimum/maximum), boolean,
 * null, type arrays, `$ref` to `#/$defs/...`. A grammar does not stop a cut at maxTokens: such an
 * answer reports finishReason "length" and its text is unfinished JSON. llama.cpp refuses grammars
 * whose rules repeat ~2000 times or more (a minLength/minItems that large; a large max is fine).
 */
import { availableParallelism } from "node:os";
import { basename } from "node:path";
import { statSync } from "node:fs";
import {
  getLlama,
  LlamaChatSession,
  LlamaLogLevel,
  type ChatHistoryItem,
  type GbnfJsonSchema,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  type LlamaModel,
} from "node-llama-cpp";
import { ModelError, type ChatAnswer, type ChatModel, type ChatRequest, type JsonSchema } from "./model.js";

export interface EmbeddedModelConfig {
  /** Path of the GGUF model file. */
  modelPath: string;
  /** Context size (tokens) of each sequence; default min(4096, the model's training context). */
  contextSize?: number;
  /** CPU threads; default the cores available to this process less one (at least 1). */
  threads?: number;
  /** Sampling seed; only matters when temperature > 0. */
  seed?: number;
  /** Sampling temperature; default 0 (greedy, deterministic). */
  temperature?: number;
  /** How many chats may run at once (one context sequence each, each with its own KV cache); default 1. */
  sequences?: number;
}

/** How often, at most, `onProgress` is called while tokens stream (plus once at the end). */
const PROGRESS_INTERVAL_MS = 200;
/** Compiled grammars kept per model, by schema. */
const GRAMMAR_CACHE_SIZE = 32;

/**
 * Loads the model and returns it as a ChatModel. Throws an Error naming the path when the file is
 * missing, and an Error saying what to do when the node-llama-cpp binary cannot be loaded.
 */
export async function openEmbeddedModel(config: EmbeddedModelConfig): Promise<ChatModel> {
  const { modelPath } = config;
  let isFile: boolean;
  try {
    isFile = statSync(modelPath).isFile();
  } catch {
    isFile = false;
  }
  if (!isFile) {
    throw new Error(
      `embedded model: no GGUF model file at "${modelPath}". Point modelPath at a GGUF file ` +
        `(e.g. download one with \`npx --no node-llama-cpp pull --dir <dir> <url-of-a-gguf>\`), ` +
        `or write the tiny random test model with writeTinyGguf() from processors/ai/tiny-gguf.ts`,
    );
  }
  const threads = Math.max(1, Math.floor(config.threads ?? availableParallelism() - 1));
  const sequences = Math.max(1, Math.floor(config.sequences ?? 1));

  let llama: Llama;
  try {
    llama = await getLlama({
      gpu: false,
      build: "never",
      maxThreads: threads,
      logLevel: LlamaLogLevel.error,
      progressLogs: false,
    });
  } catch (err) {
    throw new Error(
      `embedded model: the node-llama-cpp native binary failed to load (${errorMessage(err)}). ` +
        `It must come prebuilt with the @node-llama-cpp/${process.platform}-${process.arch} package: ` +
        `reinstall dependencies (\`npm ci\`) on a supported platform (glibc Linux, macOS, Windows; x64/arm64), ` +
        `or build it once with \`npx --no node-llama-cpp source build --gpu false\``,
      { cause: err },
    );
  }

  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  try {
    model = await llama.loadModel({ modelPath, gpuLayers: 0 });
    const contextSize = Math.max(64, Math.floor(config.contextSize ?? Math.min(4096, model.trainContextSize)));
    context = await model.createContext({ contextSize, sequences, threads });
  } catch (err) {
    await context?.dispose().catch(() => undefined);
    await model?.dispose().catch(() => undefined);
    await llama.dispose().catch(() => undefined);
    throw new Error(`embedded model: could not load "${modelPath}": ${errorMessage(err)}`, { cause: err });
  }
  return new EmbeddedChatModel(llama, model, context, config);
}

class EmbeddedChatModel implements ChatModel {
  readonly name: string;
  private readonly free: LlamaContextSequence[] = [];
  private readonly waiters: { take: (s: LlamaContextSequence) => void; fail: (e: Error) => void }[] = [];
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private readonly closing = new AbortController();
  private closed: Promise<void> | undefined;

  constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly config: EmbeddedModelConfig,
  ) {
    this.name = `embedded:${basename(config.modelPath)}`;
    while (context.sequencesLeft > 0) this.free.push(context.getSequence());
  }

  async chat(request: ChatRequest): Promise<ChatAnswer> {
    const started = performance.now();
    const signal = AbortSignal.any([request.signal, this.closing.signal]);
    const sequence = await this.acquire(signal);
    let session: LlamaChatSession | undefined;
    let tokensOut = 0;
    let reported = -1;
    let lastReport = -Infinity;
    const report = (force: boolean): void => {
      if (!request.onProgress || tokensOut === reported) return;
      const now = performance.now();
      if (!force && now - lastReport < PROGRESS_INTERVAL_MS) return;
      lastReport = now;
      reported = tokensOut;
      request.onProgress(tokensOut);
    };
    let clean = false;
    try {
      const grammar = await this.grammar(request.schema);
      session = new LlamaChatSession({
        contextSequence: sequence,
        autoDisposeSequence: false,
        systemPrompt: request.system,
        forceAddSystemPrompt: true,
      });
      const tokensIn = this.promptTokens(session, request);
      const room = sequence.contextSize - tokensIn - 1;
      if (room < 1) {
        throw new ModelError(
          `embedded model: the prompt is ${tokensIn} tokens, which does not fit the context of ${sequence.contextSize} tokens`,
          false,
        );
      }
      const maxTokens = Math.max(1, Math.min(Math.floor(request.maxTokens), room));
      throwIfAborted(signal);
      const metered = sequence.tokenMeter.usedOutputTokens;
      const result = await session.promptWithMeta(request.user, {
        grammar,
        maxTokens,
        signal,
        stopOnAbortSignal: false,
        temperature: this.config.temperature ?? 0,
        seed: this.config.seed,
        onToken: (tokens) => {
          tokensOut += tokens.length;
          report(false);
        },
      });
      // Every token generated, held-back and trimmed ones (the grammar's closing newlines) included.
      tokensOut = Math.max(tokensOut, sequence.tokenMeter.usedOutputTokens - metered);
      report(true);
      clean = true;
      return {
        text: result.responseText,
        model: this.name,
        tokensIn,
        tokensOut,
        latencyMs: Math.round(performance.now() - started),
        finishReason: finishReason(result.stopReason, result.responseText),
      };
    } catch (err) {
      if (err instanceof ModelError) throw err;
      if (this.closing.signal.aborted) throw new ModelError("embedded model: closed during the call", false);
      if (request.signal.aborted) throw abortError(request.signal);
      const message = errorMessage(err);
      if (/grammar/i.test(message)) {
        throw new ModelError(
          `embedded model: llama.cpp rejected the grammar made from the schema (${message}); ` +
            `it refuses rules repeated about 2000 times or more, as a minLength or minItems that large makes them`,
          false,
        );
      }
      throw new ModelError(`embedded model: generation failed: ${message}`, false);
    } finally {
      session?.dispose({ disposeSequence: false });
      void this.release(sequence, clean);
    }
  }

  async close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing.abort(new Error("model closed"));
      for (const w of this.waiters.splice(0)) w.fail(new ModelError("embedded model: closed", false));
      await this.context.dispose().catch(() => undefined);
      await this.model.dispose().catch(() => undefined);
      await this.llama.dispose().catch(() => undefined);
    })();
    return this.closed;
  }

  /** The tokens of the prompt the model sees (chat template, system and user prompts), by its tokenizer. */
  private promptTokens(session: LlamaChatSession, request: ChatRequest): number {
    const chatHistory: ChatHistoryItem[] = [
      { type: "system", text: request.system },
      { type: "user", text: request.user },
      { type: "model", response: [] },
    ];
    const { contextText } = session.chatWrapper.generateContextState({ chatHistory });
    return contextText.tokenize(this.model.tokenizer).length;
  }

  private acquire(signal: AbortSignal): Promise<LlamaContextSequence> {
    if (this.closing.signal.aborted) return Promise.reject(new ModelError("embedded model: closed", false));
    if (signal.aborted) return Promise.reject(abortError(signal));
    const sequence = this.free.shift();
    if (sequence) return Promise.resolve(sequence);
    return new Promise((resolve, reject) => {
      const waiter = {
        take: (s: LlamaContextSequence) => {
          signal.removeEventListener("abort", onAbort);
          resolve(s);
        },
        fail: (e: Error) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(this.closing.signal.aborted ? new ModelError("embedded model: closed", false) : abortError(signal));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Gives a sequence back; after a failed or aborted call its cached tokens are dropped first. */
  private async release(sequence: LlamaContextSequence, clean: boolean): Promise<void> {
    if (this.closing.signal.aborted || sequence.disposed) return;
    if (!clean) await sequence.clearHistory().catch(() => undefined);
    const waiter = this.waiters.shift();
    if (waiter) waiter.take(sequence);
    else this.free.push(sequence);
  }

  private grammar(schema: JsonSchema): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.grammars.get(key);
    if (!grammar) {
      grammar = this.llama.createGrammarForJsonSchema<GbnfJsonSchema>(toGbnfSchema(schema) as GbnfJsonSchema);
      grammar.catch(() => this.grammars.delete(key));
      if (this.grammars.size >= GRAMMAR_CACHE_SIZE) {
        const oldest = this.grammars.keys().next().value;
        if (oldest !== undefined) this.grammars.delete(oldest);
      }
      this.grammars.set(key, grammar);
    }
    return grammar;
  }
}

/** node-llama-cpp's schema subset: `anyOf` becomes `oneOf` (it only knows `oneOf`; a bare `anyOf` would be read as `null`). */
function toGbnfSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toGbnfSchema);
  if (schema === null || typeof schema !== "object") return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "anyOf" && !("oneOf" in schema)) out.oneOf = toGbnfSchema(value);
    else if (key === "enum" || key === "const") out[key] = value;
    else out[key] = toGbnfSchema(value);
  }
  return out;
}

/**
 * node-llama-cpp's JSON grammar ends the JSON with four newlines (its stop trigger, trimmed from the
 * text), so maxTokens can cut those newlines after a finished object or array: that is still "stop".
 */
function finishReason(stopReason: string, text: string): ChatAnswer["finishReason"] {
  if (stopReason === "eogToken" || stopReason === "stopGenerationTrigger") return "stop";
  if (stopReason !== "maxTokens") return "other";
  const trimmed = text.trim();
  if (trimmed.endsWith("}") || trimmed.endsWith("]")) {
    try {
      JSON.parse(trimmed);
      return "stop";
    } catch {
      return "length";
    }
  }
  return "length";
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortError(signal);
}

function abortError(signal: AbortSignal): ModelError {
  const reason: unknown = signal.reason;
  const why = reason === undefined ? "" : `: ${errorMessage(reason)}`;
  return new ModelError(`embedded model: aborted${why}`, true);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
