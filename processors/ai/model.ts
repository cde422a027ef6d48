/**
 * A chat model behind one interface: the model planner and the model executor ask it for a JSON
 * answer fitting a schema, and never know which backend answers. Two backends implement it:
 *
 * - `openai` (openai-backend.ts): any OpenAI-compatible chat-completions endpoint (Ollama, vLLM,
 *   llama.cpp's server, LM Studio, hosted providers), its key read from a named environment variable;
 * - `embedded` (embedded-backend.ts): node-llama-cpp running a GGUF file in this process.
 *
 * Calls to a model are side effects: they run outside the deciders (in the hosts), and what they
 * answered comes back as an event, so replaying the log never calls a model again.
 */

/** A JSON schema, as far as both backends constrain output with it (objects, arrays, strings, numbers, enums). */
export type JsonSchema = Record<string, unknown>;

export interface ChatRequest {
  /** The system prompt: the role the model plays. */
  system: string;
  /** The user prompt: the work. */
  user: string;
  /** The answer must be JSON of this schema (grammar-constrained where the backend can). */
  schema: JsonSchema;
  /** Upper bound on the answer's tokens. */
  maxTokens: number;
  /** Aborts the call (the attempt's timeout, a cancelled task). */
  signal: AbortSignal;
  /** Called as the answer streams, with the tokens generated so far. */
  onProgress?: (tokensOut: number) => void;
}

export interface ChatAnswer {
  /** The answer's raw text. */
  text: string;
  /** The model that answered, as the backend names it. */
  model: string;
  tokensIn: number;
  tokensOut: number;
  /** Wall time of the call, retries included, in ms. */
  latencyMs: number;
  /** Why generation stopped: "stop" is a finished answer; "length" was cut at maxTokens. */
  finishReason: "stop" | "length" | "refusal" | "other";
  /** The model's refusal text when finishReason is "refusal". */
  refusal?: string;
}

export interface ChatModel {
  /** The backend kind and model, e.g. "openai:gpt-4o-mini" or "embedded:tiny.gguf". */
  readonly name: string;
  chat(request: ChatRequest): Promise<ChatAnswer>;
  /** Releases what the backend holds (the embedded runtime's model and contexts). */
  close(): Promise<void>;
}

/** A model call that did not produce an answer; `retryable` says whether another attempt may help. */
export class ModelError extends Error {
  override name = "ModelError";
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}
