/**
 * The registry codec: Avro bodies in the Confluent wire format (magic byte 0, 4-byte big-endian
 * schema id, Avro binary). Encoding validates against the local schema first and names every
 * field that does not fit; decoding looks the writer schema up by the id in the message (cached)
 * and resolves it to the local reader schema, so old data decodes with newer schemas.
 */
import type avsc from "avsc";
import { topicFor, subjectFor } from "./catalog.js";
import {
  loadSchemas,
  parseWriterSchema,
  registrySchema,
  validationProblems,
  type LoadedSchemas,
} from "./avro-types.js";
import { RegistryClient, RegistryError } from "./registry-client.js";

export const MAGIC_BYTE = 0;

export class ValidationError extends Error {
  override name = "ValidationError";
  constructor(
    readonly messageType: string,
    readonly problems: { path: string; problem: string }[],
  ) {
    super(
      `${messageType} is not valid against its schema: ` +
        problems.map((p) => `field ${p.path}: ${p.problem}`).join("; ") +
        ". Fix the payload; nothing was sent.",
    );
  }
}

export type DecodeErrorKind = "UNDECODABLE" | "UNKNOWN_SCHEMA_ID" | "UNKNOWN_TYPE" | "SCHEMA_MISMATCH";

export class DecodeError extends Error {
  override name = "DecodeError";
  constructor(
    readonly kind: DecodeErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface Decoded<T = Record<string, unknown>> {
  type: string;
  schemaId: number;
  value: T;
}

export class Codec {
  private readonly ids = new Map<string, number>();
  private readonly readers = new Map<number, { type: string; resolver: avsc.Resolver | undefined; local: avsc.Type }>();

  constructor(
    readonly registry: RegistryClient,
    readonly schemas: LoadedSchemas = loadSchemas(),
  ) {}

  static forUrl(url: string, schemas?: LoadedSchemas): Codec {
    return new Codec(new RegistryClient(url), schemas);
  }

  /** The local (reader) type of a message; throws naming the type when it has no schema. */
  typeOf(messageType: string): avsc.Type {
    const entry = this.schemas.messages.get(messageType);
    if (!entry) throw new Error(`message type "${messageType}" has no schema under schemas/avro`);
    return entry.type;
  }

  subjectOf(messageType: string): string {
    return subjectFor(topicFor(messageType).name, this.schemas.messages.get(messageType)?.fullName ?? messageType);
  }

  /** Throws a ValidationError naming every field of `value` that does not fit the schema. */
  validate(messageType: string, value: unknown): void {
    const type = this.typeOf(messageType);
    if (!type.isValid(value)) throw new ValidationError(messageType, validationProblems(type, value));
  }

  /** The schema id of a message type, registering the schema on first use (idempotent at the registry). */
  async schemaId(messageType: string): Promise<number> {
    let id = this.ids.get(messageType);
    if (id === undefined) {
      id = await this.registry.register(this.subjectOf(messageType), registrySchema(this.typeOf(messageType)));
      this.ids.set(messageType, id);
    }
    return id;
  }

  async encode(messageType: string, value: unknown): Promise<Buffer> {
    this.validate(messageType, value);
    const id = await this.schemaId(messageType);
    return this.encodeWithId(messageType, id, value);
  }

  /** Encodes with a known schema id and no validation (the caller has validated). */
  encodeWithId(messageType: string, schemaId: number, value: unknown): Buffer {
    const body = this.typeOf(messageType).toBuffer(value);
    const out = Buffer.allocUnsafe(5 + body.length);
    out.writeUInt8(MAGIC_BYTE, 0);
    out.writeInt32BE(schemaId, 1);
    body.copy(out, 5);
    return out;
  }

  private async readerFor(schemaId: number) {
    let reader = this.readers.get(schemaId);
    if (reader) return reader;
    let schemaText: string;
    try {
      schemaText = await this.registry.schemaById(schemaId);
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) {
        throw new DecodeError("UNKNOWN_SCHEMA_ID", `schema id ${schemaId} is not in the registry`);
      }
      throw e; // the registry is unreachable: not the message's fault, so not a dead letter
    }
    let writer: avsc.Type;
    try {
      writer = parseWriterSchema(schemaText);
    } catch (e) {
      throw new DecodeError("SCHEMA_MISMATCH", `schema id ${schemaId} does not parse: ${(e as Error).message}`);
    }
    const type = (writer.name ?? "").split(".").pop() ?? "";
    const local = this.schemas.messages.get(type);
    if (!local) {
      throw new DecodeError(
        "UNKNOWN_TYPE",
        `schema id ${schemaId} is record "${writer.name}", not a Polity message type`,
      );
    }
    // The same schema (canonical form) needs no resolution: decoding without a resolver is twice as fast.
    let resolver: avsc.Resolver | undefined;
    try {
      resolver = writer.equals(local.type) ? undefined : local.type.createResolver(writer);
    } catch (e) {
      throw new DecodeError(
        "SCHEMA_MISMATCH",
        `schema id ${schemaId} cannot be read as ${type}: ${(e as Error).message}`,
      );
    }
    reader = { type, resolver, local: local.type };
    this.readers.set(schemaId, reader);
    return reader;
  }

  async decode(bytes: Buffer | null): Promise<Decoded> {
    if (!bytes || bytes.length < 5)
      throw new DecodeError("UNDECODABLE", `message of ${bytes?.length ?? 0} byte(s) is too short for the wire format`);
    if (bytes[0] !== MAGIC_BYTE)
      throw new DecodeError("UNDECODABLE", `first byte is ${bytes[0]}, not the wire format's magic byte 0`);
    const schemaId = bytes.readInt32BE(1);
    const reader = await this.readerFor(schemaId);
    let value: Record<string, unknown>;
    try {
      value = reader.local.fromBuffer(bytes.subarray(5), reader.resolver) as Record<string, unknown>;
    } catch (e) {
      throw new DecodeError(
        "UNDECODABLE",
        `body does not decode with schema id ${schemaId} (${reader.type}): ${(e as Error).message}`,
      );
    }
    return { type: reader.type, schemaId, value };
  }
}
