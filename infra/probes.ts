/**
 * "Does it really answer?" checks for the four servers, shared by the native stack (waiting on a
 * server it started), the resolver (checking URLs from the environment) and `stack status`.
 * Each probe either resolves with a short description or throws with what went wrong.
 */
import { MongoClient } from "mongodb";
import pg from "pg";
import { PLAINTEXT_SECURITY, type KafkaSecurity } from "../lib/config.js";
import { PolityKafka } from "../lib/kafka.js";
import { basicAuthorization, redactUrl, splitUrlCredentials, type BasicAuth } from "../lib/redact.js";

/** `security`: the environment's for a broker given in KAFKA_BROKERS; the native stack's Kafka is PLAINTEXT. */
export async function probeKafka(brokers: string[], security: KafkaSecurity = PLAINTEXT_SECURITY): Promise<string> {
  const kafka = new PolityKafka(brokers, "polity-probe", {
    quiet: true,
    security,
    connectionTimeout: 2000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    // A KRaft broker answers metadata before its controller is elected; require one.
    if (cluster.controller === null || cluster.controller === undefined || cluster.controller < 0) {
      throw new Error("broker answers but no controller is active yet");
    }
    return `cluster ${cluster.clusterId}, ${cluster.brokers.length} broker(s)`;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** `auth`: SCHEMA_REGISTRY_USERNAME/PASSWORD; credentials in the URL itself are used too. */
export async function probeRegistry(url: string, auth: BasicAuth | null = null): Promise<string> {
  const split = splitUrlCredentials(url);
  const login = split.auth ?? auth;
  const response = await fetch(`${split.url.replace(/\/$/, "")}/subjects`, {
    signal: AbortSignal.timeout(3000),
    headers: login ? { authorization: basicAuthorization(login) } : {},
  });
  if (!response.ok) throw new Error(`GET ${redactUrl(url)}/subjects answered HTTP ${response.status}`);
  const subjects = (await response.json()) as unknown[];
  return `${subjects.length} subject(s)`;
}

export async function probeMongo(url: string): Promise<string> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 2000, connectTimeoutMS: 2000 });
  try {
    await client.connect();
    const hello = await client.db("admin").command({ hello: 1 });
    if (hello.isWritablePrimary !== true) throw new Error("hello: not a writable primary");
    const info = await client.db("admin").command({ buildInfo: 1 });
    return `version ${String(info.version)}`;
  } finally {
    await client.close().catch(() => undefined);
  }
}

export async function probePostgres(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    const result = await client.query<{ one: number }>("select 1 as one");
    if (result.rows[0]?.one !== 1) throw new Error("select 1 did not return 1");
    return "select 1 ok";
  } finally {
    await client.end().catch(() => undefined);
  }
}
