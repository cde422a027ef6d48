/**
 * The Docker path of infrastructure resolution: the same four servers as docker-compose.yml,
 * started with testcontainers for the life of the calling process. These machines have no Docker
 * engine, so this path is not exercised by CI here; the native stack is.
 */
import net from "node:net";
import fs from "node:fs";
import type { InfraUrls } from "../lib/config.js";

export const IMAGES = {
  kafka: "apache/kafka:3.9.1",
  registry: "confluentinc/cp-schema-registry:7.7.1",
  mongo: "mongo:7.0",
  postgres: "postgres:16",
} as const;

/** True when a Docker engine answers; cheap when there is plainly none (no socket, no DOCKER_HOST). */
export async function dockerEngineAnswers(): Promise<boolean> {
  if (!process.env.DOCKER_HOST && !fs.existsSync("/var/run/docker.sock")) return false;
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface DockerStack {
  urls: InfraUrls;
  stop(): Promise<void>;
}

export async function startDockerStack(): Promise<DockerStack> {
  const { GenericContainer, Network, Wait } = await import("testcontainers");
  const network = await new Network().start();
  // Kafka must advertise an address the host can reach, so its host port is chosen up front.
  const kafkaHostPort = await freePort();
  const kafka = await new GenericContainer(IMAGES.kafka)
    .withNetwork(network)
    .withNetworkAliases("kafka")
    .withExposedPorts({ container: 9092, host: kafkaHostPort })
    .withEnvironment({
      KAFKA_NODE_ID: "1",
      KAFKA_PROCESS_ROLES: "broker,controller",
      KAFKA_LISTENERS: "PLAINTEXT://0.0.0.0:9092,INTERNAL://0.0.0.0:19094,CONTROLLER://0.0.0.0:9093",
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${kafkaHostPort},INTERNAL://kafka:19094`,
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
      KAFKA_CONTROLLER_LISTENER_NAMES: "CONTROLLER",
      KAFKA_INTER_BROKER_LISTENER_NAME: "INTERNAL",
      KAFKA_CONTROLLER_QUORUM_VOTERS: "1@kafka:9093",
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: "1",
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: "1",
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: "1",
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: "0",
      KAFKA_LOG_RETENTION_HOURS: "-1",
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .start();
  const [registry, mongo, postgres] = await Promise.all([
    new GenericContainer(IMAGES.registry)
      .withNetwork(network)
      .withExposedPorts(8081)
      .withEnvironment({
        SCHEMA_REGISTRY_HOST_NAME: "schema-registry",
        SCHEMA_REGISTRY_LISTENERS: "http://0.0.0.0:8081",
        SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS: "PLAINTEXT://kafka:19094",
      })
      .withWaitStrategy(Wait.forHttp("/subjects", 8081))
      .start(),
    new GenericContainer(IMAGES.mongo).withExposedPorts(27017).withWaitStrategy(Wait.forListeningPorts()).start(),
    new GenericContainer(IMAGES.postgres)
      .withExposedPorts(5432)
      .withEnvironment({ POSTGRES_USER: "polity", POSTGRES_DB: "polity", POSTGRES_HOST_AUTH_METHOD: "trust" })
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start(),
  ]);
  return {
    urls: {
      kafkaBrokers: [`127.0.0.1:${kafkaHostPort}`],
      schemaRegistryUrl: `http://${registry.getHost()}:${registry.getMappedPort(8081)}`,
      mongoUrl: `mongodb://${mongo.getHost()}:${mongo.getMappedPort(27017)}/polity`,
      databaseUrl: `postgres://polity@${postgres.getHost()}:${postgres.getMappedPort(5432)}/polity`,
    },
    async stop() {
      await Promise.allSettled([registry.stop(), mongo.stop(), postgres.stop()]);
      await kafka.stop();
      await network.stop();
    },
  };
}
