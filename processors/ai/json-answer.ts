/**
 * Reading a model's JSON answer: parse it and check it against the schema it was asked for, in
 * words that name the offending field. Grammar-constrained backends always produce valid JSON of
 * the schema (unless cut off at maxTokens); a remote endpoint may not honour the schema, so every
 * answer is checked the same way before anything is built from it.
 */
import { createHash } from "node:crypto";
import type { ModelUsage } from "../../schemas/generated/types.js";
import { ModelError, type ChatModel, type ChatRequest, type JsonSchema } from "./model.js";

export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

/** The answer as JSON and what does not fit its schema; `json` false (and one problem) when it is not JSON at all. */
export function parseAnswer(text: string, schema: JsonSchema): { value: unknown; json: boolean; problems: string[] } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { value: null, json: false, problems: [`the answer is not JSON (${(e as Error).message})`] };
  }
  return { value, json: true, problems: schemaProblems(value, schema, "answer") };
}

/**
 * What does not fit `schema` in `value`: type, required properties, enum, string length and array
 * size, recursively. The subset of JSON Schema the prompts use; unknown keywords are ignored.
 */
export function schemaProblems(value: unknown, schema: JsonSchema, at: string): string[] {
  const s = schema as {
    type?: string | string[];
    enum?: unknown[];
    const?: unknown;
    properties?: Record<string, JsonSchema>;
    required?: string[];
    additionalProperties?: boolean | JsonSchema;
    items?: JsonSchema;
    prefixItems?: JsonSchema[];
    oneOf?: JsonSchema[];
    anyOf?: JsonSchema[];
    minItems?: number;
    maxItems?: number;
    minLength?: number;
    maxLength?: number;
    minimum?: number;
    maximum?: number;
  };
  const alternatives = s.oneOf ?? s.anyOf;
  if (alternatives) {
    const each = alternatives.map((alt) => schemaProblems(value, alt, at));
    if (each.some((p) => p.length === 0)) return [];
    // The alternative that came closest says best what is wrong.
    return each.reduce((best, p) => (p.length < best.length ? p : best));
  }
  const problems: string[] = [];
  if (s.enum && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
    return [`${at} must be one of ${s.enum.map((e) => JSON.stringify(e)).join(", ")}, got ${JSON.stringify(value)}`];
  if ("const" in s && JSON.stringify(s.const) !== JSON.stringify(value))
    return [`${at} must be ${JSON.stringify(s.const)}`];
  const types = s.type === undefined ? null : Array.isArray(s.type) ? s.type : [s.type];
  if (types && !types.some((t) => typeMatches(value, t)))
    return [`${at} must be ${types.join(" or ")}, got ${describe(value)}`];
  if (typeof value === "string") {
    if (s.minLength !== undefined && value.length < s.minLength)
      problems.push(`${at} must have at least ${s.minLength} characters`);
    if (s.maxLength !== undefined && value.length > s.maxLength)
      problems.push(`${at} must have at most ${s.maxLength} characters, has ${value.length}`);
  }
  if (typeof value === "number") {
    if (s.minimum !== undefined && value < s.minimum) problems.push(`${at} must be >= ${s.minimum}`);
    if (s.maximum !== undefined && value > s.maximum) problems.push(`${at} must be <= ${s.maximum}`);
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems)
      problems.push(`${at} must have at least ${s.minItems} item(s), has ${value.length}`);
    if (s.maxItems !== undefined && value.length > s.maxItems)
      problems.push(`${at} must have at most ${s.maxItems} item(s), has ${value.length}`);
    value.forEach((v, i) => {
      const item = s.prefixItems?.[i] ?? s.items;
      if (item) problems.push(...schemaProblems(v, item, `${at}[${i}]`));
    });
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    for (const key of s.required ?? []) if (!(key in obj)) problems.push(`${at}.${key} is missing`);
    for (const [key, v] of Object.entries(obj)) {
      const sub = s.properties?.[key];
      if (sub) problems.push(...schemaProblems(v, sub, `${at}.${key}`));
      else if (s.additionalProperties === false) problems.push(`${at}.${key} is not expected`);
      else if (typeof s.additionalProperties === "object")
        problems.push(...schemaProblems(v, s.additionalProperties, `${at}.${key}`));
    }
  }
  return problems;
}

function typeMatches(value: unknown, type: string): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "array":
      return Array.isArray(value);
    case "object":
      return value !== null && typeof value === "object" && !Array.isArray(value);
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    default:
      return typeof value === type;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

/** Whether a value is a usable JSON schema object (for schemas given in configuration or task inputs). */
export function isSchema(value: unknown): value is JsonSchema {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A model's JSON answer, checked, with what the call used; or why there is none. */
export type JsonAnswer =
  | { ok: true; value: unknown; text: string; usage: ModelUsage }
  | {
      ok: false;
      reason: string;
      /** Whether another attempt may help. */
      retryable: boolean;
      /** What the call used, when it answered at all. */
      usage: ModelUsage | null;
      /** The tail of what it answered, for the record. */
      text: string | null;
    };

/**
 * One call for a JSON answer of `request.schema`, within `timeoutMs`: the answer parsed and checked
 * against the schema, with its usage (model, tokens, latency and the digests of prompt and answer).
 * Never throws: a refusal, an answer cut off at maxTokens, one that does not fit, a failed or
 * timed-out call each come back with the reason.
 */
export async function askForJson(
  model: ChatModel,
  request: Omit<ChatRequest, "signal">,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<JsonAnswer> {
  const promptDigest = sha256(JSON.stringify({ system: request.system, user: request.user, schema: request.schema }));
  const started = Date.now();
  try {
    const answer = await model.chat({ ...request, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
    const usage: ModelUsage = {
      model: answer.model,
      tokensIn: answer.tokensIn,
      tokensOut: answer.tokensOut,
      calls: 1,
      latencyMs: answer.latencyMs,
      promptDigest,
      answerDigest: sha256(answer.text),
    };
    const failed = (reason: string): JsonAnswer => ({
      ok: false,
      reason,
      retryable: true,
      usage,
      text: answer.text.slice(-4_096),
    });
    if (answer.finishReason === "refusal")
      return failed(`the model refused: ${answer.refusal ?? answer.text}`.slice(0, 1_000));
    if (answer.finishReason === "length") return failed(`the answer was cut off at ${request.maxTokens} tokens`);
    const { value, json, problems } = parseAnswer(answer.text, request.schema);
    if (!json) return failed(problems[0]!);
    if (problems.length > 0) return failed(`the answer does not fit its schema: ${problems.slice(0, 10).join("; ")}`);
    return { ok: true, value, text: answer.text, usage };
  } catch (e) {
    const timedOut = !signal.aborted && Date.now() - started >= timeoutMs - 5;
    const reason = timedOut
      ? `the model did not answer within ${timeoutMs} ms`
      : e instanceof ModelError
        ? e.message
        : `the model call failed: ${(e as Error).message}`;
    return { ok: false, reason, retryable: e instanceof ModelError ? e.retryable : true, usage: null, text: null };
  }
}
