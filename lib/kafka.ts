/**
 * The one way Polity processes build a kafkajs client. kafkajs logs answers it retries itself
 * (a coordinator still loading, a transaction still completing) at ERROR; those are dropped here so
 * that what remains in the log is worth reading. Failures still surface as rejected calls.
 *
 * Security (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*; see lib/config.ts) is applied to
 * every client built here, and a refused SASL login or an untrusted broker certificate surfaces as
 * a `KafkaSecurityError` that names the mechanism and the user (or the CA setting), never the
 * password; log lines are scrubbed of it as well.
 */
import {
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type KafkaConfig,
  type logCreator,
  type RetryOptions,
  type SASLOptions,
} from "kafkajs";
import type { ConnectionOptions } from "node:tls";
import { kafkaSecurity as securityFromEnv, type KafkaSecurity } from "./config.js";
import { assertReadCommittedFilter } from "./kafka-read-committed.js";
import { redact, type Secret } from "./redact.js";

const RETRIED_BY_CALLER =
  /CONCURRENT_TRANSACTIONS|concurrent operation on the same transaction|coordinator is loading|COORDINATOR_LOAD_IN_PROGRESS|The group is rebalancing|REBALANCE_IN_PROGRESS|NOT_COORDINATOR|This is not the correct coordinator/i;

/**
 * kafkajs log lines, minus the answers it (or its caller) retries, with the given secrets (and URL
 * passwords) replaced; a SASL line names the user it is about (kafkajs's own says only the mechanism).
 */
export function quietLogFor(
  secrets: readonly Secret[] = [],
  sink: (line: string) => void = console.error,
  saslUser?: string,
): logCreator {
  return () =>
    ({ label, log }) => {
      const error = (log as { error?: unknown }).error;
      let text = `${log.message ?? ""}${error ? `: ${String(error)}` : ""}`;
      if (saslUser !== undefined && /SASL/.test(text)) text += ` (user "${saslUser}")`;
      if (!RETRIED_BY_CALLER.test(text)) sink(redact(`[kafkajs ${label}] ${text}`, secrets));
    };
}

/** kafkajs log lines, minus the answers it (or its caller) retries; for clients built elsewhere (benchmarks). */
export const quietLog: logCreator = quietLogFor();

export interface KafkaClientOptions {
  /** No kafkajs log lines at all (failures still reject the calls). */
  quiet?: boolean;
  /** Default: the environment's (lib/config.ts kafkaSecurity, as loadConfig().kafkaSecurity). */
  security?: KafkaSecurity;
  /** Where log lines go (default console.error); tests capture them. */
  logSink?: (line: string) => void;
  /** kafkajs settings for callers that must fail fast (probes, tests). */
  connectionTimeout?: number;
  requestTimeout?: number;
  retry?: RetryOptions;
  logLevel?: logLevel;
}

/** The TLS options of a security setting, or undefined when it does not use TLS. */
function tlsOptions(security: KafkaSecurity): ConnectionOptions | undefined {
  const tls = security.tls;
  if (!tls) return undefined;
  return {
    rejectUnauthorized: tls.rejectUnauthorized,
    ...(tls.ca !== null ? { ca: [tls.ca] } : {}),
    ...(tls.cert !== null && tls.key !== null ? { cert: tls.cert, key: tls.key.reveal() } : {}),
  };
}

function secretsOf(security: KafkaSecurity): Secret[] {
  return [security.sasl?.password, security.tls?.key].filter((s): s is Secret => s !== null && s !== undefined);
}

/** The kafkajs configuration of a Polity client: security, logging and the caller's timeouts. */
export function kafkaConfig(brokers: string[], clientId: string, options: KafkaClientOptions = {}): KafkaConfig {
  const security = options.security ?? securityFromEnv();
  const sasl = security.sasl;
  const ssl = tlsOptions(security);
  return {
    clientId,
    brokers,
    logLevel: options.logLevel ?? (options.quiet ? logLevel.NOTHING : logLevel.ERROR),
    logCreator: quietLogFor(secretsOf(security), options.logSink, sasl?.username),
    ...(ssl ? { ssl } : {}),
    ...(sasl
      ? {
          sasl: {
            mechanism: sasl.mechanism.toLowerCase() as "plain" | "scram-sha-256" | "scram-sha-512",
            username: sasl.username,
            password: sasl.password.reveal(),
          } as SASLOptions,
        }
      : {}),
    ...(options.connectionTimeout !== undefined ? { connectionTimeout: options.connectionTimeout } : {}),
    ...(options.requestTimeout !== undefined ? { requestTimeout: options.requestTimeout } : {}),
    ...(options.retry !== undefined ? { retry: options.retry } : {}),
  };
}

/** A refused SASL login or a broker certificate not trusted: retrying does not help, the settings must change. */
export class KafkaSecurityError extends Error {
  override name = "KafkaSecurityError";
  readonly retriable = false;
  constructor(
    readonly kind: "sasl" | "tls",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Node's codes for a TLS handshake that failed on the certificate, or on a peer that speaks no TLS. */
const TLS_CODES =
  /^(?:DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_\w+|ERR_TLS_CERT_ALTNAME_INVALID|ERR_SSL_\w+)$/;

type ErrorLike = { name?: string; message?: string; code?: unknown; broker?: string; cause?: unknown };

function chain(error: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  for (let e = error as ErrorLike | undefined; e && typeof e === "object" && out.length < 8; e = e.cause as ErrorLike) {
    out.push(e);
    const original = (e as { originalError?: unknown }).originalError;
    if (original && typeof original === "object") out.push(original as ErrorLike);
  }
  return out;
}

/**
 * What kafkajs threw, said so that the operator knows which setting to fix: a SASL failure names
 * the mechanism, the user and the brokers (never the password); a TLS failure names the CA setting.
 * Other errors are returned as they are.
 */
export function explainKafkaError(error: unknown, brokers: string[], security: KafkaSecurity): unknown {
  const errors = chain(error);
  const secrets = secretsOf(security);
  const sasl = errors.find((e) => e.name === "KafkaJSSASLAuthenticationError");
  if (sasl && security.sasl) {
    const { mechanism, username } = security.sasl;
    return new KafkaSecurityError(
      "sasl",
      `Kafka SASL ${mechanism} authentication of user "${username}" failed at ${brokers.join(",")} ` +
        `(KAFKA_SECURITY_PROTOCOL=${security.protocol}): ${redact(sasl.message ?? "", secrets)}. ` +
        `Check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) and KAFKA_SASL_MECHANISM.`,
      { cause: error },
    );
  }
  const tls = errors.find((e) => typeof e.code === "string" && TLS_CODES.test(e.code));
  if (tls && security.tls) {
    const ca = security.tls.caFile
      ? `KAFKA_SSL_CA_FILE=${security.tls.caFile}`
      : "the system's CAs (KAFKA_SSL_CA_FILE unset)";
    return new KafkaSecurityError(
      "tls",
      `Kafka TLS handshake with ${tls.broker ?? brokers.join(",")} failed: ${redact(tls.message ?? "", secrets)} ` +
        `(${String(tls.code)}). The broker's certificate is not trusted by ${ca}, or does not name the host; ` +
        `point KAFKA_SSL_CA_FILE at the CA that signed it.`,
      { cause: error },
    );
  }
  return error;
}

interface Connectable {
  connect(): Promise<void>;
}

function explained<T extends Connectable>(client: T, brokers: string[], security: KafkaSecurity): T {
  const connect = client.connect.bind(client);
  client.connect = async () => {
    try {
      await connect();
    } catch (e) {
      throw explainKafkaError(e, brokers, security);
    }
  };
  return client;
}

/** A kafkajs client whose producers, consumers and admins explain security failures at connect. */
export class PolityKafka extends Kafka {
  readonly security: KafkaSecurity;
  readonly brokers: string[];
  constructor(brokers: string[], clientId: string, options: KafkaClientOptions = {}) {
    const security = options.security ?? securityFromEnv();
    super(kafkaConfig(brokers, clientId, { ...options, security }));
    this.security = security;
    this.brokers = brokers;
  }
  override producer(...args: Parameters<Kafka["producer"]>): ReturnType<Kafka["producer"]> {
    return explained(super.producer(...args), this.brokers, this.security);
  }
  override consumer(...args: Parameters<Kafka["consumer"]>): ReturnType<Kafka["consumer"]> {
    return explained(super.consumer(...args), this.brokers, this.security);
  }
  override admin(...args: Parameters<Kafka["admin"]>): ReturnType<Kafka["admin"]> {
    return explained(super.admin(...args), this.brokers, this.security);
  }
}

/**
 * A Polity Kafka client. `options` may be `true` for a quiet client (the old signature); security
 * defaults to the environment's.
 */
export function kafkaClient(brokers: string[], clientId: string, options: boolean | KafkaClientOptions = false): Kafka {
  assertReadCommittedFilter();
  return new PolityKafka(brokers, clientId, typeof options === "boolean" ? { quiet: options } : options);
}

/**
 * A topic's offsets per partition, asked again while the broker answers with a retriable error:
 * right after a topic is created (or a broker restarts) ListOffsets can answer
 * NOT_LEADER_FOR_PARTITION until the leader's metadata has spread, and kafkajs's admin does not
 * retry that itself (seen in CI as a feed failing to start on a topic made a moment before).
 */
export async function topicOffsets(
  admin: Admin,
  topic: string,
  tries = 10,
): Promise<{ partition: number; offset: string; high: string; low: string }[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await admin.fetchTopicOffsets(topic);
    } catch (e) {
      if (!(e as { retriable?: boolean }).retriable || attempt >= tries) throw e;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

/**
 * Calls `replace` when kafkajs gives up on `consumer` (its CRASH event with `restart` false; kafkajs
 * then never fetches again), saying so in the log, unless `ignore()` (the host is stopping, or this
 * consumer was replaced already).
 */
export function whenGivenUp(
  consumer: Consumer,
  options: { what: string; ignore: () => boolean; log?: (line: string) => void },
  replace: () => void,
): void {
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (payload.restart || options.ignore()) return;
    options.log?.(
      `${options.what}: its consumer stopped (${payload.error.message}) and kafkajs will not restart it; starting a new one`,
    );
    replace();
  });
}

/**
 * Starts a consumer again after kafkajs gave up on the one before (its CRASH event with `restart`
 * false): kafkajs then never fetches again, and a process whose consumers have all given up ends
 * with exit code 0 (seen in CI: a tier after a broker restart). Disconnects the old consumer, then
 * calls `start` every second until it succeeds or `stopped()` says to give up; `start` failing
 * leaves its own consumer to `cleanup`.
 */
export async function startAgain(
  old: Consumer,
  start: () => Promise<void>,
  options: { what: string; stopped: () => boolean; cleanup: () => Promise<unknown>; log?: (line: string) => void },
): Promise<void> {
  await old.disconnect().catch(() => undefined);
  for (let attempt = 1; !options.stopped(); attempt++) {
    try {
      await start();
      return;
    } catch (e) {
      if (attempt === 1 || attempt % 10 === 0)
        options.log?.(
          `${options.what}: starting a new consumer failed (${(e as Error).message}); trying again every second`,
        );
      await options.cleanup().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}
