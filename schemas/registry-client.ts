/**
 * The few calls of the Confluent schema registry REST API that Polity makes (works against
 * Confluent's registry and Apicurio's /apis/ccompat/v7). Errors name the subject and the answer.
 */
import { schemaRegistryAuth } from "../lib/config.js";
import { basicAuthorization, splitUrlCredentials, type BasicAuth } from "../lib/redact.js";

export type Compatibility = "BACKWARD" | "BACKWARD_TRANSITIVE" | "FORWARD" | "FULL" | "FULL_TRANSITIVE" | "NONE";

export class RegistryError extends Error {
  override name = "RegistryError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const CONTENT_TYPE = "application/vnd.schemaregistry.v1+json";

export class RegistryClient {
  private readonly base: string;
  private readonly authorization: string | null;
  /**
   * `url` may carry basic-auth credentials (`https://user:password@host/...`); otherwise `auth`
   * (default: SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD from lib/config.ts) is sent.
   */
  constructor(url: string, auth: BasicAuth | null = schemaRegistryAuth()) {
    const split = splitUrlCredentials(url);
    this.base = split.url.replace(/\/$/, "");
    const login = split.auth ?? auth;
    this.authorization = login ? basicAuthorization(login) : null;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        "content-type": CONTENT_TYPE,
        accept: CONTENT_TYPE,
        ...(this.authorization ? { authorization: this.authorization } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new RegistryError(`${method} ${path}: HTTP ${response.status}: ${text.slice(0, 500)}`, response.status);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Registers (or finds) a schema under a subject; returns its global id. */
  async register(subject: string, schema: string): Promise<number> {
    const { id } = await this.call<{ id: number }>("POST", `/subjects/${encodeURIComponent(subject)}/versions`, {
      schema,
      schemaType: "AVRO",
    });
    return id;
  }

  async schemaById(id: number): Promise<string> {
    const { schema } = await this.call<{ schema: string }>("GET", `/schemas/ids/${id}`);
    return schema;
  }

  /** The latest registered schema of a subject, or null when the subject does not exist. */
  async latest(subject: string): Promise<{ id: number; version: number; schema: string } | null> {
    try {
      return await this.call("GET", `/subjects/${encodeURIComponent(subject)}/versions/latest`);
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) return null;
      throw e;
    }
  }

  async setCompatibility(subject: string, level: Compatibility): Promise<void> {
    await this.call("PUT", `/config/${encodeURIComponent(subject)}`, { compatibility: level });
  }

  async compatibility(subject: string): Promise<Compatibility | null> {
    try {
      const config = await this.call<{ compatibilityLevel?: Compatibility; compatibility?: Compatibility }>(
        "GET",
        `/config/${encodeURIComponent(subject)}`,
      );
      return config.compatibilityLevel ?? config.compatibility ?? null;
    } catch (e) {
      if (e instanceof RegistryError && e.status === 404) return null;
      throw e;
    }
  }

  /** Asks the registry whether `schema` may follow the latest version of `subject`. */
  async isCompatible(subject: string, schema: string): Promise<{ compatible: boolean; messages: string[] }> {
    const answer = await this.call<{ is_compatible: boolean; messages?: string[] }>(
      "POST",
      `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest?verbose=true`,
      { schema, schemaType: "AVRO" },
    );
    return { compatible: answer.is_compatible, messages: answer.messages ?? [] };
  }

  async subjects(): Promise<string[]> {
    return this.call<string[]>("GET", "/subjects");
  }
}
