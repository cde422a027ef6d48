/**
 * Reading a model's JSON answer: parse it and check it against the schema it was asked for, in
 * words that name the offending field. Grammar-constrained backends always produce valid JSON of
 * the schema (unless cut off at maxTokens); a remote endpoint may not honour the schema, so every
 * answer is checked the same way before anything is built from it.
 */
import { createHash } from "node:crypto";
import type { JsonSchema } from "./model.js";

export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

/** The answer as JSON, or the problem with it. */
export function parseAnswer(text: string, schema: JsonSchema): { value: unknown; problems: string[] } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { value: null, problems: [`the answer is not JSON (${(e as Error).message})`] };
  }
  return { value, problems: schemaProblems(value, schema, "answer") };
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
