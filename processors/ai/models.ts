/**
 * The models a topology names (`models` in the topology file): each is an OpenAI-compatible
 * endpoint or an embedded GGUF file, opened once per process and shared by the planner and every
 * model worker that names it. An embedded model is loaded on its first call, so a process that
 * never plans or runs a model task never loads one.
 *
 * Configuration problems are found at start (`modelConfigProblems`), naming the key and the
 * allowed values; an API key is named by its environment variable and never read into the
 * configuration, a log line or an event.
 */
import fs from "node:fs";
import path from "node:path";
import type { ChatModel, ChatRequest, ChatAnswer } from "./model.js";
import type { ModelPricing } from "./model-executor.js";
import { openaiModel } from "./openai-backend.js";

export const MODEL_BACKENDS = ["openai", "embedded"] as const;
export type ModelBackend = (typeof MODEL_BACKENDS)[number];

interface CommonModelConfig {
  /** What 1,000 tokens cost, so a task's cost (and a budget) counts its model calls; free when absent. */
  pricing?: ModelPricing;
}

/** An OpenAI-compatible chat-completions endpoint (Ollama, vLLM, llama.cpp's server, LM Studio, hosted providers). */
export interface OpenAiModelConfig extends CommonModelConfig {
  backend: "openai";
  baseUrl: string;
  model: string;
  /** Name of the environment variable holding the API key (never the key itself). */
  apiKeyEnv?: string;
  maxRetries?: number;
  retryBaseMs?: number;
  temperature?: number;
}

/** A GGUF file run in this process by node-llama-cpp. */
export interface EmbeddedModelSettings extends CommonModelConfig {
  backend: "embedded";
  /** Path of the GGUF file; relative paths are taken from the topology file's folder. */
  file: string;
  contextSize?: number;
  threads?: number;
  /** Chats run at once on the model (a context sequence each). Default 1. */
  sequences?: number;
}

export type ModelConfig = OpenAiModelConfig | EmbeddedModelSettings;

const isDecimal = (v: unknown) => typeof v === "string" && /^\d{1,14}(\.\d{1,4})?$/.test(v);

/** What is wrong with one entry of `models`, field by field. */
export function modelConfigProblems(name: string, raw: unknown): string[] {
  const where = `models.${name}`;
  const c = raw as {
    backend?: unknown;
    baseUrl?: unknown;
    model?: unknown;
    apiKeyEnv?: unknown;
    file?: unknown;
    pricing?: { inputPer1k?: unknown; outputPer1k?: unknown };
    maxRetries?: unknown;
    contextSize?: unknown;
    threads?: unknown;
    sequences?: unknown;
  } | null;
  if (!c || typeof c !== "object") return [`${where}: give { backend: ${MODEL_BACKENDS.join(" | ")}, ... }`];
  const problems: string[] = [];
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    problems.push(`${where}: model names are letters, digits, dots, dashes and underscores`);
  if (!(MODEL_BACKENDS as readonly unknown[]).includes(c.backend))
    problems.push(`${where}.backend must be one of ${MODEL_BACKENDS.join(", ")}, got ${JSON.stringify(c.backend)}`);
  if (c.backend === "openai") {
    if (typeof c.baseUrl !== "string" || !/^https?:\/\//.test(c.baseUrl))
      problems.push(`${where}.baseUrl must be an http(s) URL such as http://127.0.0.1:11434/v1`);
    if (typeof c.model !== "string" || c.model === "") problems.push(`${where}.model must name the served model`);
    if (c.apiKeyEnv !== undefined && (typeof c.apiKeyEnv !== "string" || !/^[A-Z_][A-Z0-9_]*$/.test(c.apiKeyEnv)))
      problems.push(`${where}.apiKeyEnv must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key`);
  }
  if (c.backend === "embedded" && (typeof c.file !== "string" || c.file === ""))
    problems.push(`${where}.file must be the path of a GGUF model file`);
  if (c.pricing !== undefined && (!isDecimal(c.pricing?.inputPer1k) || !isDecimal(c.pricing?.outputPer1k)))
    problems.push(`${where}.pricing: give { inputPer1k: "0.0005", outputPer1k: "0.0015" } as decimal strings`);
  for (const key of ["maxRetries", "contextSize", "threads", "sequences"] as const) {
    const v = c[key];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < (key === "maxRetries" ? 0 : 1)))
      problems.push(`${where}.${key} must be a whole number >= ${key === "maxRetries" ? 0 : 1}`);
  }
  return problems;
}

/**
 * The models of a topology, opened for this process. `get` answers a ChatModel at once; an
 * embedded one loads its file on its first call. An OpenAI-compatible model whose key variable is
 * unset fails here, at start.
 */
export class ModelRegistry {
  private readonly models = new Map<string, ChatModel>();

  constructor(configs: Record<string, ModelConfig>, baseDir: string, env: NodeJS.ProcessEnv = process.env) {
    for (const [name, config] of Object.entries(configs)) {
      if (config.backend === "openai") {
        this.models.set(name, openaiModel(config, env));
      } else {
        const file = path.resolve(baseDir, config.file);
        if (!fs.existsSync(file))
          throw new Error(
            `models.${name}.file: no GGUF file at ${file}; give the path of a model file (relative to the topology file)`,
          );
        this.models.set(name, lazyEmbedded({ ...config, file }));
      }
    }
  }

  get(name: string): ChatModel | null {
    return this.models.get(name) ?? null;
  }

  names(): string[] {
    return [...this.models.keys()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.models.values()].map((m) => m.close().catch(() => undefined)));
  }
}

/**
 * An embedded model that loads its file on its first call. node-llama-cpp itself is imported then
 * too (about 0.5 s): every process reads the topology, few of them run an embedded model.
 */
function lazyEmbedded(config: EmbeddedModelSettings): ChatModel {
  let opening: Promise<ChatModel> | null = null;
  const open = () =>
    (opening ??= import("./embedded-backend.js").then(({ openEmbeddedModel }) =>
      openEmbeddedModel({
        modelPath: config.file,
        contextSize: config.contextSize,
        threads: config.threads,
        sequences: config.sequences,
      }),
    ));
  return {
    name: `embedded:${path.basename(config.file)}`,
    chat: async (request: ChatRequest): Promise<ChatAnswer> => (await open()).chat(request),
    close: async () => {
      if (opening) await (await opening.catch(() => null))?.close();
    },
  };
}
