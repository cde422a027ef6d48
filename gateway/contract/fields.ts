/**
 * The building blocks of the request schemas: zod schemas that refuse in the gateway's words
 * ("must be an integer from 1 to 10, got 11") and hold their limits as zod checks, so one number
 * both validates a request and appears in the OpenAPI document (json-schema.ts). `parseWith` turns
 * the first problem into INVALID_INPUT naming the field path as the client sent it
 * ("tasks[2].depends_on").
 */
import { z } from "zod";
import { invalid } from "../errors.js";

export const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const ID_HINT = "must be 1-128 letters, digits, '.', '_', ':' or '-'";
export const DECIMAL = /^-?\d{1,14}(\.\d{1,4})?$/;
/** The longest duration the API takes (effort, time limits, durations): 30 days. */
export const MAX_DURATION_MS = 30 * 24 * 3600 * 1000;
/** Most entries of a string map (inputs, outputs, labels, constraints). */
export const MAX_MAP_ENTRIES = 100;

/** Null is taken as left out, everywhere. */
const absent = (v: unknown) => v === undefined || v === null;
const got = (v: unknown) => JSON.stringify(v);
const notString = (i: { input?: unknown }) =>
  absent(i.input) ? "is required" : `must be a string, got ${typeof i.input}`;

/** A string; `required` also refuses a blank one. */
export function text(o: { max?: number; pattern?: RegExp; hint?: string; required?: boolean } = {}) {
  let s = z.string({ error: notString });
  if (o.required)
    s = s.min(1, { error: "must not be empty" }).refine((v) => v.trim() !== "", { error: "must not be empty" });
  if (o.max) s = s.max(o.max, { error: `must be at most ${o.max} characters` });
  if (o.pattern) s = s.regex(o.pattern, { error: o.hint ?? "has an invalid format" });
  return s;
}

/** An id (goal, task, agent, policy): 1-128 letters, digits and . _ : - */
export const id = (required = false) => text({ required, pattern: ID, hint: ID_HINT });

/** A decimal string with at most four places (money). */
export const decimal = (example: string) =>
  text({ pattern: DECIMAL, hint: `must be a decimal with at most 4 places, e.g. "${example}"` });

/** An integer from `min` to `max`. */
export function int(min: number, max: number) {
  const m = (i: { input?: unknown }) =>
    absent(i.input) ? "is required" : `must be an integer from ${min} to ${max}, got ${got(i.input)}`;
  return z.number({ error: m }).int({ error: m }).min(min, { error: m }).max(max, { error: m });
}

/** A number (or with `integer`, an integer) from `min` to `max`: the worker API's wording. */
export function num(min: number, max: number, integer = false) {
  const kind = (i: { input?: unknown }) =>
    absent(i.input) ? "is required" : `must be ${integer ? "an integer" : "a number"}, got ${got(i.input)}`;
  const range = (i: { input?: unknown }) => `must be from ${min} to ${max}, got ${String(i.input)}`;
  const n = z.number({ error: kind });
  return (integer ? n.int({ error: kind }) : n).min(min, { error: range }).max(max, { error: range });
}

export const bool = () => z.boolean({ error: "must be true or false" });

/** One of `values`. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (i) =>
      absent(i.input)
        ? "is required"
        : typeof i.input !== "string"
          ? `must be a string, got ${typeof i.input}`
          : `must be one of ${values.join(", ")}, got "${i.input}"`,
  });
}

/** A list of at most `max` non-empty strings (each at most `maxLength` characters when given). */
export function strings(o: { max: number; pattern?: RegExp; maxLength?: number }) {
  let each = z.string({ error: "must be a non-empty string" }).min(1, { error: "must be a non-empty string" });
  if (o.maxLength) each = each.max(o.maxLength, { error: "must be a non-empty string" });
  if (o.pattern) each = each.regex(o.pattern, { error: "has an invalid format" });
  return list(each, o.max, "must be a list of strings");
}

/** A list of at most `max` entries. */
export const list = <T extends z.ZodType>(of: T, max: number, notAList = "must be a list") =>
  z.array(of, { error: notAList }).max(max, { error: `must have at most ${max} entries` });

const tooMany = { error: `must have at most ${MAX_MAP_ENTRIES} entries` };

/** An object of strings: { "name": "value" }, at most MAX_MAP_ENTRIES of them. */
export function stringObject<V extends z.ZodType = z.ZodString>(value?: V) {
  return z
    .record(z.string(), (value ?? z.string({ error: "must be a string" })) as V, {
      error: "must be an object of strings",
    })
    .refine((o) => Object.keys(o).length <= MAX_MAP_ENTRIES, tooMany)
    .meta({ maxProperties: MAX_MAP_ENTRIES });
}

/**
 * A string map as REST sends it (an object) or as GraphQL does (a list of { key, value }); either
 * way a Record. `value` reads an object's values (default: strings only).
 */
export function stringMap<V extends z.ZodType<string, unknown> = z.ZodString>(value?: V) {
  const entry = z.object(
    { key: text({ required: true, max: 200 }), value: text().nullish() },
    { error: "must be a JSON object" },
  );
  const entries = z
    .array(entry)
    .max(MAX_MAP_ENTRIES, tooMany)
    .meta({ description: "The GraphQL form: a list of { key, value }." });
  return z
    .union([stringObject(value), entries], { error: "must be an object of strings" })
    .transform((v): Record<string, string> =>
      Array.isArray(v) ? Object.fromEntries(v.map((e) => [e.key, e.value ?? ""])) : (v as Record<string, string>),
    );
}

/** An ISO-8601 date-time, as a Date. */
export const dateTime = () =>
  z
    .string({ error: notString })
    .refine((v) => !Number.isNaN(new Date(v).getTime()), {
      error: (i) => `must be an ISO-8601 date-time, got "${String(i.input)}"`,
    })
    .meta({ format: "date-time" })
    .transform((v) => new Date(v));

/**
 * Snake_case names (the DGM design's) beside camelCase ones: `aliases` maps each alias to its
 * field, which it validates exactly like the field, so an error names the field as the client sent
 * it. Sending both with different values is refused; the result has the camelCase names only.
 */
export function aliased<S extends z.ZodRawShape, const A extends Record<string, keyof S & string>>(
  shape: S,
  aliases: A,
  errorNotObject = "must be a JSON object",
) {
  const fields = shape as unknown as Record<string, z.ZodType>;
  const both = { ...fields };
  for (const [alias, name] of Object.entries(aliases))
    both[alias] = fields[name]!.meta({ description: `The DGM design's name of ${name}.` });
  return z.object(both, { error: errorNotObject }).transform((raw, ctx) => {
    const v: Record<string, unknown> = { ...raw };
    for (const [alias, name] of Object.entries(aliases)) {
      if (absent(v[alias])) {
        delete v[alias];
        continue;
      }
      if (!absent(v[name]) && got(v[name]) !== got(v[alias]))
        ctx.issues.push({
          code: "custom",
          path: [alias],
          input: raw,
          message: `and ${name} are the same field; send one of them`,
        });
      v[name] = v[alias];
      delete v[alias];
    }
    return v as z.output<z.ZodObject<S>>;
  });
}

/** Adds "is required" at `field` unless it is given. */
export function need(ctx: z.RefinementCtx, v: Record<string, unknown>, field: string, message = "is required"): void {
  if (absent(v[field])) ctx.issues.push({ code: "custom", path: [field], input: v, message });
}

type Issue = z.core.$ZodIssue;

/** Where an issue is and what it says; a union's issue is its one branch of the value's type. */
function located(issue: Issue, base: PropertyKey[]): { path: PropertyKey[]; message: string } {
  const path = [...base, ...issue.path];
  if (issue.code === "invalid_union") {
    const ofType = issue.errors.filter(
      (branch) => branch.length && !branch.some((i) => i.path.length === 0 && i.code === "invalid_type"),
    );
    if (ofType.length === 1) return located(ofType[0]![0]!, path);
  }
  return { path, message: issue.message };
}

/** "tasks[2].dependsOn" from ["tasks", 2, "dependsOn"]. */
export function fieldName(path: readonly PropertyKey[], root: string): string {
  if (!path.length) return root;
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

/** The schema's output for `raw`, or INVALID_INPUT naming the first field at fault (`root`: the whole input). */
export function parseWith<T extends z.ZodType>(schema: T, raw: unknown, root = "input"): z.output<T> {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const { path, message } = located(r.error.issues[0]!, []);
  throw invalid(fieldName(path, root), message);
}
