/**
 * Loads the .avsc files under schemas/avro (the single source of truth) into avsc types, with
 * Polity's logical types: timestamp-millis <-> Date, decimal <-> exact decimal string, uuid as a
 * checked string. Shared named types (common/, shared/) are parsed first so message schemas can
 * refer to them by full name.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import avsc from "avsc";

export const AVRO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "avro");

/** timestamp-millis carried as a JavaScript Date. */
class TimestampMillis extends avsc.types.LogicalType {
  override _fromValue(value: number): Date {
    return new Date(value);
  }
  override _toValue(value: unknown): number | undefined {
    if (value instanceof Date) return value.getTime();
    return undefined; // anything else is invalid: only Dates are accepted
  }
  override _resolve(type: avsc.Type) {
    if (avsc.Type.isType(type, "long", "logical:timestamp-millis")) return (v: unknown) => this._fromValue(v as number);
    return undefined;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** uuid: a string that must look like one. */
class Uuid extends avsc.types.LogicalType {
  override _fromValue(value: string): string {
    return value;
  }
  override _toValue(value: unknown): string | undefined {
    return typeof value === "string" && UUID.test(value) ? value : undefined;
  }
  override _resolve(type: avsc.Type) {
    if (avsc.Type.isType(type, "string", "logical:uuid")) return (v: unknown) => v;
    return undefined;
  }
}

/**
 * decimal over bytes: a two's-complement big-endian unscaled integer with the schema's scale,
 * carried in JavaScript as an exact decimal string ("12.3400") so money never passes through floats.
 */
class Decimal extends avsc.types.LogicalType {
  readonly scale: number;
  readonly precision: number;
  constructor(schema: { scale?: number; precision: number }, opts?: avsc.ForSchemaOptions) {
    super(schema as unknown as avsc.Schema, opts);
    this.scale = schema.scale ?? 0;
    this.precision = schema.precision;
  }
  override _fromValue(buf: Buffer): string {
    let n = 0n;
    for (const byte of buf) n = (n << 8n) | BigInt(byte);
    if (buf.length > 0 && (buf[0]! & 0x80) !== 0) n -= 1n << BigInt(buf.length * 8);
    const negative = n < 0n;
    const digits = (negative ? -n : n).toString().padStart(this.scale + 1, "0");
    const whole = digits.slice(0, digits.length - this.scale);
    const frac = this.scale > 0 ? `.${digits.slice(digits.length - this.scale)}` : "";
    return `${negative ? "-" : ""}${whole}${frac}`;
  }
  override _toValue(value: unknown): Buffer | undefined {
    if (typeof value !== "string") return undefined;
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(value);
    if (!m) return undefined;
    const frac = m[3] ?? "";
    if (frac.length > this.scale) return undefined; // would lose digits
    const digits = `${m[2]}${frac.padEnd(this.scale, "0")}`.replace(/^0+(?=\d)/, "");
    if (digits.length > this.precision) return undefined;
    let n = BigInt(digits) * (m[1] ? -1n : 1n);
    const bytes: number[] = [];
    // Two's complement, shortest form that keeps the sign bit right.
    do {
      bytes.unshift(Number(n & 0xffn));
      n >>= 8n;
    } while (!((n === 0n && (bytes[0]! & 0x80) === 0) || (n === -1n && (bytes[0]! & 0x80) !== 0)));
    return Buffer.from(bytes);
  }
  override _resolve(type: avsc.Type) {
    // Only the same scale reads the same digits; anything else would silently rescale money.
    if (avsc.Type.isType(type, "logical:decimal") && (type as unknown as Decimal).scale === this.scale) {
      return (v: unknown) => v;
    }
    return undefined;
  }
  /** avsc drops unknown attributes of a custom logical type; keep precision and scale in the schema. */
  override _export(schema: avsc.Schema): void {
    const attrs = schema as unknown as Record<string, unknown>;
    attrs.precision = this.precision;
    attrs.scale = this.scale;
  }
}

export const LOGICAL_TYPES = {
  "timestamp-millis": TimestampMillis,
  uuid: Uuid,
  decimal: Decimal,
} as unknown as Record<string, new (schema: avsc.Schema, opts?: avsc.ForSchemaOptions) => avsc.types.LogicalType>;

export interface SchemaFile {
  file: string;
  schema: { type: string; name: string; namespace?: string; [k: string]: unknown };
}

function readDir(dir: string): SchemaFile[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry): SchemaFile[] => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return readDir(full);
      if (!entry.name.endsWith(".avsc")) return [];
      try {
        return [{ file: full, schema: JSON.parse(fs.readFileSync(full, "utf8")) }];
      } catch (e) {
        throw new Error(`${full}: not valid JSON: ${(e as Error).message}`, { cause: e });
      }
    })
    .sort((a, b) => a.file.localeCompare(b.file));
}

export function fullName(schema: { name: string; namespace?: string }): string {
  return schema.name.includes(".") || !schema.namespace ? schema.name : `${schema.namespace}.${schema.name}`;
}

export interface LoadedSchemas {
  /** Every named type by full name, parsed with Polity's logical types. */
  registry: Record<string, avsc.Type>;
  /** Message record types (everything outside common/ and shared/) by short record name. */
  messages: Map<string, { file: string; type: avsc.Type; fullName: string }>;
}

/** Parses the shared types (in whatever order their references allow), then every message schema. */
export function loadSchemas(dir: string = AVRO_DIR): LoadedSchemas {
  const registry: Record<string, avsc.Type> = {};
  const opts = () => ({ registry, logicalTypes: LOGICAL_TYPES });
  const sharedDirs = ["common", "shared"].map((d) => path.join(dir, d));
  let pending = sharedDirs.flatMap(readDir);
  // Shared types may refer to each other: parse what can be parsed until nothing is left.
  while (pending.length > 0) {
    const failed: SchemaFile[] = [];
    let lastError = "";
    for (const f of pending) {
      // avsc registers names before a parse fails; parse into a scratch copy and keep it on success.
      const scratch = { ...registry };
      try {
        avsc.Type.forSchema(f.schema as avsc.Schema, { registry: scratch, logicalTypes: LOGICAL_TYPES });
        Object.assign(registry, scratch);
      } catch (e) {
        failed.push(f);
        lastError = `${f.file}: ${(e as Error).message}`;
      }
    }
    if (failed.length === pending.length) throw new Error(`shared Avro types do not parse: ${lastError}`);
    pending = failed;
  }
  const messages = new Map<string, { file: string; type: avsc.Type; fullName: string }>();
  for (const f of readDir(dir).filter((f) => !sharedDirs.some((d) => f.file.startsWith(d + path.sep)))) {
    let type: avsc.Type;
    try {
      type = avsc.Type.forSchema(f.schema as avsc.Schema, opts());
    } catch (e) {
      throw new Error(`${f.file}: ${(e as Error).message}`, { cause: e });
    }
    const name = f.schema.name.split(".").pop()!;
    if (messages.has(name)) throw new Error(`${f.file}: record ${name} is also defined in ${messages.get(name)!.file}`);
    messages.set(name, { file: f.file, type, fullName: fullName(f.schema) });
  }
  return { registry, messages };
}

/**
 * The schema text to register for a type: self-contained (every named type it uses inlined at
 * first use), so a reader in any language needs nothing but this one schema.
 */
export function registrySchema(type: avsc.Type): string {
  return JSON.stringify(type.schema({ exportAttrs: true }));
}

/** Parses a schema fetched from the registry with the same logical types (a writer schema). */
export function parseWriterSchema(schema: string): avsc.Type {
  return avsc.Type.forSchema(JSON.parse(schema) as avsc.Schema, { logicalTypes: LOGICAL_TYPES });
}

export interface FieldProblem {
  path: string;
  problem: string;
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (value instanceof Date) return `Date ${value.toISOString()}`;
  const text = JSON.stringify(value);
  return `${typeof value} ${text && text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}

/** Every field of `value` that does not fit `type`, with the expected type and what was given. */
export function validationProblems(type: avsc.Type, value: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  type.isValid(value, {
    errorHook: (pathParts: string[], v: unknown, t: avsc.Type) => {
      const expected = t.typeName === "record" ? `record ${t.name}` : (t.name ?? t.typeName);
      problems.push({ path: pathParts.join(".") || "(root)", problem: `expected ${expected}, got ${describe(v)}` });
    },
  });
  return problems;
}
