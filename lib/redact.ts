/**
 * Credentials never reach a log line, an error message or a printed configuration. Passwords come
 * from the environment only (lib/config.ts); there they are wrapped in a `Secret`, which prints as
 * "***" however it is printed (template string, JSON, console.log, util.inspect), and the URLs that
 * may carry a password (MONGO_URL, DATABASE_URL, SCHEMA_REGISTRY_URL) go through `redactUrl` (or
 * `redact`, for a text that may hold one) wherever they are printed.
 */
import { inspect } from "node:util";

export const REDACTED = "***";

/** A password or key: `reveal()` gives it to the one client that needs it; everything else sees "***". */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}

/** `scheme://user:password@` (the password is everything up to the authority's last '@'). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#:@]*):([^\s/?#]*)@/gi;
/** `password=...` in a query string or a key=value connection string. */
const PASSWORD_PARAM = /(\b(?:password|passwd|pwd|sasl\.password)=)[^&\s#;]*/gi;

/** A text with every URL password, password parameter and given secret replaced by "***". */
export function redact(text: string, secrets: readonly (Secret | string | null | undefined)[] = []): string {
  let out = text.replace(URL_PASSWORD, `$1$2:${REDACTED}@`).replace(PASSWORD_PARAM, `$1${REDACTED}`);
  for (const secret of secrets) {
    const value = secret instanceof Secret ? secret.reveal() : secret;
    // A one- or two-character "secret" would blank out ordinary text; such a password is no secret anyway.
    if (value && value.length >= 3) out = out.split(value).join(REDACTED);
  }
  return out;
}

/** A connection URL fit to print: the user name stays, the password is "***". */
export function redactUrl(url: string): string {
  return redact(url);
}

export interface BasicAuth {
  username: string;
  password: Secret;
}

/**
 * Splits `https://user:password@host/path` into the URL without its credentials and the basic-auth
 * credentials (percent-decoded); fetch() refuses a URL that carries credentials.
 */
export function splitUrlCredentials(url: string): { url: string; auth: BasicAuth | null } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, auth: null };
  }
  if (!parsed.username && !parsed.password) return { url, auth: null };
  const auth = {
    username: decodeURIComponent(parsed.username),
    password: new Secret(decodeURIComponent(parsed.password)),
  };
  parsed.username = "";
  parsed.password = "";
  return { url: parsed.toString(), auth };
}

/** The Authorization header value of HTTP basic auth. */
export function basicAuthorization(auth: BasicAuth): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password.reveal()}`).toString("base64")}`;
}
