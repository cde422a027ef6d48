/**
 * A whole platform for gateway tests, isolated from every other run: the hierarchy on its own
 * topic prefix, both read models (analytics in a fresh PostgreSQL schema, state in a fresh MongoDB
 * database) and a gateway on a free port reading them, plus helpers to mint tokens and call it.
 */
import { randomUUID } from "node:crypto";
import { MongoClient, type Db } from "mongodb";
import pg from "pg";
import { Auth, type Role } from "../../gateway/auth.js";
import { ReadSide } from "../../gateway/read-side.js";
import { createGateway, type Gateway, type GatewayOptions } from "../../gateway/server.js";
import { ProjectionHost } from "../../projections/host.js";
import { StateStore } from "../../projections/mongo/state-store.js";
import { AnalyticsStore } from "../../projections/pg/analytics-store.js";
import { migrate } from "../../projections/pg/migrate.js";
import { PROJECTED_TOPICS } from "../../projections/run.js";
import { deployment, testTopology, type TestDeployment } from "./hierarchy.js";
import { urls } from "./infra.js";

export const TEST_SECRET = "polity-test-secret-0123456789abcdef0123456789";

export interface GatewayRig {
  d: TestDeployment;
  pool: pg.Pool;
  mongo: MongoClient;
  db: Db;
  schema: string;
  read: ReadSide;
  auth: Auth;
  gateway: Gateway;
  url: string;
  projections: ProjectionHost[];
  /** A bearer token for the given role and tenant (subject defaults to `<role>-user`). */
  token(role: Role, tenantId?: string, extra?: { subject?: string; agentId?: string }): Promise<string>;
  /** POST /graphql with an optional token; returns the status and the parsed body. */
  graphql(
    query: string,
    variables?: Record<string, unknown>,
    token?: string | null,
  ): Promise<{ status: number; body: GraphQLBody }>;
  /** A second gateway over the same read models and topics (for multi-instance tests). */
  another(overrides?: Partial<GatewayOptions>): Promise<{ gateway: Gateway; url: string }>;
  stop(): Promise<void>;
}

export interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string; field?: string } }[];
}

/** Both read models of a deployment, each in a fresh database or schema named after `label`, projecting. */
export interface TestReadModels {
  pool: pg.Pool;
  mongo: MongoClient;
  db: Db;
  schema: string;
  projections: ProjectionHost[];
  /** Stops the projections and drops what they wrote. */
  stop(): Promise<void>;
}

export async function startReadModels(d: TestDeployment, label: string): Promise<TestReadModels> {
  const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 10 });
  const mongo = new MongoClient(urls.mongoUrl);
  await mongo.connect();
  const db = mongo.db(`${label}_${randomUUID().slice(0, 8)}`);
  const schema = `analytics_${label}_${randomUUID().slice(0, 8)}`;
  await migrate(pool, schema);
  const state = new StateStore(db);
  await state.ensureIndexes();
  const common = { kafka: d.kafka, codec: d.codec, topicPrefix: d.prefix };
  const projections = [
    new ProjectionHost({
      ...common,
      store: new AnalyticsStore(pool, { schema }),
      topics: [...PROJECTED_TOPICS.analytics],
    }),
    new ProjectionHost({ ...common, store: state, topics: [...PROJECTED_TOPICS.state] }),
  ];
  for (const p of projections) await p.start();
  return {
    pool,
    mongo,
    db,
    schema,
    projections,
    async stop() {
      for (const p of projections) await p.stop().catch(() => undefined);
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end().catch(() => undefined);
      await db.dropDatabase().catch(() => undefined);
      await mongo.close().catch(() => undefined);
    },
  };
}

export async function gatewayRig(name: string, overrides: Partial<GatewayOptions> = {}): Promise<GatewayRig> {
  const d = await deployment(testTopology(), name);
  const models = await startReadModels(d, "gw");
  const { pool, mongo, db, schema, projections } = models;
  const read = new ReadSide(db, pool, { analyticsSchema: schema });
  const auth = new Auth(TEST_SECRET);
  const options = (): GatewayOptions => ({
    kafka: d.kafka,
    codec: d.codec,
    writer: d.writer,
    read,
    auth,
    registryUrl: urls.schemaRegistryUrl,
    topicPrefix: d.prefix,
    projectionWaitMs: 20_000,
    ...overrides,
  });
  const gateways: Gateway[] = [];
  const gateway = await createGateway(options());
  gateways.push(gateway);
  const url = await gateway.listen(0);
  const rig: GatewayRig = {
    d,
    pool,
    mongo,
    db,
    schema,
    read,
    auth,
    gateway,
    url,
    projections,
    token: (role, tenantId = "acme", extra = {}) =>
      auth.mint({ subject: extra.subject ?? `${role}-user`, role, tenantId, agentId: extra.agentId ?? null }),
    async graphql(query, variables = {}, token = null) {
      const res = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as GraphQLBody };
    },
    async another(more = {}) {
      const g = await createGateway({ ...options(), ...more });
      gateways.push(g);
      return { gateway: g, url: await g.listen(0) };
    },
    async stop() {
      for (const g of gateways) await g.stop().catch(() => undefined);
      // Projections stop before the deployment removes their topics; their stores are dropped after.
      for (const p of projections) await p.stop().catch(() => undefined);
      await d.stop().catch(() => undefined);
      await models.stop();
    },
  };
  return rig;
}
