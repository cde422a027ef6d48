/**
 * The `model` executor: a language model does a worker's task. Like every executor it is a side
 * effect the worker decider stays clear of; its outcome (the answer's fields as the task's outputs,
 * the model, tokens, cost, latency and digests) comes back as TaskCompleted or TaskFailed, so a
 * replay reads the answer and never calls the model again.
 *
 * The prompt is the worker's role (its group's system prompt, or one made from its domain and
 * specialization), the task's title, description and inputs, and the results and outputs of the
 * tasks it depends on (the DGM design's context retriever). The answer is constrained to a JSON
 * schema: the task's `outputSchema` input, else its worker group's, else { result: string }.
 * A refusal, a cut-off answer or one that does not fit the schema fails the attempt with the
 * reason, and the usual retries and escalation follow.
 */
import { formatCost, toUnits } from "../domain/kernel/costs.js";
import type { Execution, Executor, Outcome } from "../executors.js";
import type { ModelUsage } from "../../schemas/generated/types.js";
import { askForJson, isSchema } from "./json-answer.js";
import type { ChatModel, JsonSchema } from "./model.js";

/** A worker group's `model` settings in the topology file. */
export interface ModelWorkerConfig {
  /** The model (a name in the topology's `models`). */
  model: string;
  /** The worker's role; made from its domain and specialization when absent. */
  systemPrompt?: string;
  /** The answer's JSON schema for the group's tasks (a task's `outputSchema` input wins). */
  outputSchema?: JsonSchema;
  /** Time limit of one attempt's model call, in ms. Default 120 000. */
  timeoutMs?: number;
  /** Tokens an answer may take. Default 1536: room for the default schema's 1000-character result. */
  maxTokens?: number;
}

/** What a model's tokens cost (the topology's `models.<name>.pricing`), per 1,000 tokens, decimal strings. */
export interface ModelPricing {
  inputPer1k: string;
  outputPer1k: string;
}

/** The schema an answer gets when neither the task nor the group names one. */
export const DEFAULT_OUTPUT_SCHEMA: JsonSchema = {
  type: "object",
  properties: { result: { type: "string", maxLength: 1000 } },
  required: ["result"],
  additionalProperties: false,
};

/** The task input that carries a task's own output schema, as JSON text. */
export const OUTPUT_SCHEMA_INPUT = "outputSchema";

/** Cost of a call at a price: tokens / 1000 x price, in the platform's decimal(18,4). */
export function costOfTokens(usage: Pick<ModelUsage, "tokensIn" | "tokensOut">, pricing?: ModelPricing): string {
  if (!pricing) return "0.0000";
  const per = (tokens: number, price: string) => (BigInt(tokens) * toUnits(price)) / 1000n;
  return formatCost(per(usage.tokensIn, pricing.inputPer1k) + per(usage.tokensOut, pricing.outputPer1k));
}

/** The prompts of an execution. */
export function taskPrompt(
  e: Execution,
  role: { domain: string | null; specialization: string | null; systemPrompt?: string },
): { system: string; user: string } {
  const system =
    role.systemPrompt ??
    `You are a ${role.specialization ?? "general"} specialist in the ${role.domain ?? "general"} domain of a team of agents. ` +
      "Do the task you are given as well as you can and answer with JSON only, in the schema given.";
  const inputs = Object.entries(e.spec.inputs).filter(([k]) => k !== OUTPUT_SCHEMA_INPUT);
  const lines = [
    `Task: ${e.spec.title}`,
    e.spec.description ? `Description: ${e.spec.description}` : null,
    inputs.length > 0 ? "Inputs:" : null,
    ...inputs.map(([k, v]) => `- ${k}: ${v}`),
    e.dependencies.length > 0 ? "Results of the tasks this one depends on:" : null,
    ...e.dependencies.flatMap((d) => [
      `- ${d.title} (${d.taskId}): ${d.result ?? "(no result)"}`,
      ...Object.entries(d.outputs).map(([k, v]) => `  ${k}: ${v}`),
    ]),
  ];
  return { system, user: lines.filter((l): l is string => l !== null).join("\n") };
}

/** The schema for an execution: the task's, the group's, or the default; or why the task's is unusable. */
function schemaFor(e: Execution, group: ModelWorkerConfig): { schema: JsonSchema } | { problem: string } {
  const own = e.spec.inputs[OUTPUT_SCHEMA_INPUT];
  if (own === undefined) return { schema: group.outputSchema ?? DEFAULT_OUTPUT_SCHEMA };
  try {
    const parsed: unknown = JSON.parse(own);
    if (isSchema(parsed)) return { schema: parsed };
  } catch {
    /* reported below */
  }
  return { problem: `the task's ${OUTPUT_SCHEMA_INPUT} input is not a JSON schema object` };
}

/** The answer's fields as TaskCompleted outputs (strings; anything else as JSON), and its result line. */
function outputsOf(value: unknown, text: string): { result: string; outputs: Record<string, string> } {
  const outputs: Record<string, string> = {};
  if (value !== null && typeof value === "object" && !Array.isArray(value))
    for (const [k, v] of Object.entries(value)) outputs[k] = typeof v === "string" ? v : JSON.stringify(v);
  else outputs.answer = text;
  const result = outputs.result ?? outputs.summary ?? text;
  return { result: result.slice(0, 4_000), outputs };
}

/**
 * The executor of a model worker group. `progress` reports the tokens generated so far (the host
 * turns it into TaskProgressed).
 */
export function modelExecutor(
  model: ChatModel,
  group: ModelWorkerConfig,
  role: { domain: string | null; specialization: string | null },
  pricing?: ModelPricing,
): Executor {
  return {
    async run(e, signal, progress): Promise<Outcome> {
      const started = Date.now();
      const failed = (
        reason: string,
        kind: "EXECUTION_ERROR" | "INVALID_OUTPUT",
        retryable: boolean,
        usage: ModelUsage | null,
        output: string | null = null,
      ): Outcome => ({
        ok: false,
        reason,
        kind,
        retryable,
        durationMs: Date.now() - started,
        exitCode: null,
        output,
        usage,
      });
      const chosen = schemaFor(e, group);
      if ("problem" in chosen) return failed(chosen.problem, "INVALID_OUTPUT", false, null);
      const { system, user } = taskPrompt(e, { ...role, systemPrompt: group.systemPrompt });
      const maxTokens = group.maxTokens ?? 1536;
      let lastReported = 0;
      const answer = await askForJson(
        model,
        {
          system,
          user,
          schema: chosen.schema,
          maxTokens,
          onProgress: (tokensOut) => {
            const now = Date.now();
            if (!progress || now - lastReported < 1_000) return;
            lastReported = now;
            progress({
              percent: Math.min(99, Math.floor((tokensOut / maxTokens) * 100)),
              message: `${tokensOut} tokens generated by ${model.name}`,
              metrics: { tokensOut },
            });
          },
        },
        group.timeoutMs ?? 120_000,
        signal,
      );
      if (!answer.ok)
        return failed(
          answer.reason,
          answer.usage ? "INVALID_OUTPUT" : "EXECUTION_ERROR",
          answer.retryable,
          answer.usage,
          answer.text,
        );
      return {
        ok: true,
        ...outputsOf(answer.value, answer.text),
        durationMs: Date.now() - started,
        cost: costOfTokens(answer.usage, pricing),
        exitCode: null,
        usage: answer.usage,
      };
    },
  };
}
