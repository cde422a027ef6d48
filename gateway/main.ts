/**
 * Starts the gateway against resolved infrastructure: its own Kafka client, writer, MongoDB and
 * PostgreSQL connections. Used by `npm start` (beside the hierarchy and the read models) and by
 * tests and benchmarks that need a real gateway on a free port.
 */
import path from "node:path";
import { loadConfig, type InfraUrls, type PolityConfig } from "../lib/config.js";
import { kafkaClient } from "../lib/kafka.js";
import { EventWriter } from "../producers/writer.js";
import { Codec } from "../schemas/codec.js";
import { Auth } from "./auth.js";
import { readModelTargets } from "../projections/run.js";
import { ReadSide } from "./read-side.js";
import { createGateway, type Gateway, type GatewayOptions } from "./server.js";
import { pgPool } from "../lib/pg.js";
import { watchedMongoClient } from "../lib/mongo.js";

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  auth: Auth;
  stop(): Promise<void>;
}

export async function startGateway(options: {
  urls: InfraUrls;
  port: number;
  /** Listen address; default POLITY_GATEWAY_HOST (lib/config.ts), which defaults to 127.0.0.1. */
  host?: string;
  /** Where the development JWT secret lives when no secret is configured. */
  home: string;
  /** The HS256 secret (loadConfig().jwtSecret); null: the development one under `home`. Default: lib/config.ts. */
  jwtSecret?: string | null;
  /** Serve the dashboard, GraphiQL and the API docs page (loadConfig().gatewayUi). Default: lib/config.ts. */
  ui?: boolean;
  topicPrefix?: string;
  clientId?: string;
  analyticsSchema?: string;
  collectionPrefix?: string;
  mongoDb?: string;
  log?: (line: string) => void;
  overrides?: Partial<GatewayOptions>;
}): Promise<RunningGateway> {
  const { urls } = options;
  // A setting not passed (tests, benches) is taken from lib/config.ts; npm start passes them all.
  let config: PolityConfig | undefined;
  const setting = <K extends "gatewayHost" | "jwtSecret" | "gatewayUi">(given: PolityConfig[K] | undefined, key: K) =>
    given !== undefined ? given : (config ??= loadConfig())[key];
  const kafka = kafkaClient(urls.kafkaBrokers, `${options.clientId ?? "polity"}-gateway`, true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const pool = pgPool(urls.databaseUrl, 10);
  const watched = watchedMongoClient(urls.mongoUrl, { name: "gateway", log: options.log });
  const mongo = watched.client;
  let writer: EventWriter | undefined;
  let gateway: Gateway | undefined;
  const stop = async () => {
    await gateway?.stop().catch(() => undefined);
    await writer?.disconnect().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await watched.close().catch(() => undefined);
  };
  try {
    await mongo.connect();
    writer = await EventWriter.connect(kafka, codec, { topicPrefix: options.topicPrefix });
    const targets = readModelTargets(options.topicPrefix);
    const read = new ReadSide(options.mongoDb ? mongo.db(options.mongoDb) : mongo.db(), pool, {
      analyticsSchema: options.analyticsSchema ?? targets.analyticsSchema,
      collectionPrefix: options.collectionPrefix ?? targets.collectionPrefix,
    });
    const auth = Auth.fromEnv(options.home, setting(options.jwtSecret, "jwtSecret"));
    gateway = await createGateway({
      kafka,
      codec,
      writer,
      read,
      auth,
      registryUrl: urls.schemaRegistryUrl,
      topicPrefix: options.topicPrefix,
      ui: setting(options.ui, "gatewayUi"),
      log: options.log,
      ...options.overrides,
    });
    const url = await gateway.listen(options.port, setting(options.host, "gatewayHost"));
    return { gateway, url, auth, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export const defaultHome = (repoRoot: string) => path.join(repoRoot, ".polity");
