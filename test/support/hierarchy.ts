/** What the hierarchy's integration tests share: a topology, an isolated topic prefix, a running hierarchy. */
import { randomUUID } from "node:crypto";
import type { Kafka } from "kafkajs";
import { kafkaClient } from "../../lib/kafka.js";
import { startHierarchy, type RunningHierarchy } from "../../processors/hierarchy.js";
import type { Role } from "../../processors/domain/directory.js";
import type { TopologyConfig } from "../../processors/topology.js";
import { ensureTopics } from "../../producers/admin.js";
import { EventWriter } from "../../producers/writer.js";
import { Codec } from "../../schemas/codec.js";
import type { TaskSpec } from "../../schemas/generated/types.js";
import { urls } from "./infra.js";
import { LogWatcher } from "./watch.js";
import { task } from "./decider-spec.js";

export { task };

/** Three domains in both topologies; small capacities so dispatch and waiting really happen. */
export function testTopology(meanDurationMs = 20): TopologyConfig {
  const workers = {
    frontend: { react: { count: 2, capacity: 2 }, css: { count: 1, capacity: 1 } },
    backend: { api: { count: 2, capacity: 2 }, database: { count: 1, capacity: 1 } },
    testing: { "unit-test": { count: 1, capacity: 2 }, "e2e-test": { count: 1, capacity: 1 } },
  };
  return {
    simulated: { seed: 7, meanDurationMs, failureRate: 0 },
    topologies: {
      aamas: {
        domains: {
          frontend: { mayors: 1, workers: workers.frontend },
          backend: { mayors: 2, workers: workers.backend },
          testing: { mayors: 1, workers: workers.testing },
        },
      },
      dgm: {
        domains: {
          frontend: { workers: workers.frontend },
          backend: { workers: workers.backend },
          testing: { workers: workers.testing },
        },
      },
    },
  };
}

/** A ten-task DAG across frontend, backend and testing. */
export const TEN_TASK_DAG: TaskSpec[] = [
  task("fe-design", "frontend", "react"),
  task("be-schema", "backend", "database"),
  task("be-api", "backend", "api", ["be-schema"]),
  task("fe-ui", "frontend", "react", ["fe-design"]),
  task("fe-style", "frontend", "css", ["fe-design"]),
  task("be-auth", "backend", "api", ["be-schema"]),
  task("test-unit", "testing", "unit-test", ["be-api", "be-auth"]),
  task("fe-integrate", "frontend", "react", ["fe-ui", "fe-style", "be-api"]),
  task("test-e2e", "testing", "e2e-test", ["fe-integrate", "test-unit"]),
  task("release", "backend", "api", ["test-e2e"]),
];

export interface TestDeployment {
  prefix: string;
  kafka: Kafka;
  codec: Codec;
  writer: EventWriter;
  watch: LogWatcher;
  start(roles?: Role[]): Promise<RunningHierarchy>;
  stop(): Promise<void>;
}

/**
 * A fresh topic prefix with a writer and a watcher on it; hierarchies started through it stop with
 * it. Heartbeats (and with them the health monitor) are off unless asked for: they never let the
 * log go quiet, which tests comparing a read model with the log rely on.
 */
export async function deployment(
  topology: TopologyConfig,
  name: string,
  roles: Role[] | "all" = "all",
  options: { heartbeats?: boolean } = {},
): Promise<TestDeployment> {
  const heartbeats = options.heartbeats ?? false;
  const prefix = `t-${name}-${randomUUID().slice(0, 8)}.`;
  const kafka = kafkaClient(urls.kafkaBrokers, `test-${name}`, true);
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  const running: RunningHierarchy[] = [];
  await ensureTopics(kafka, prefix);
  if (roles === "all" || roles.length > 0) {
    running.push(
      await startHierarchy({
        kafka,
        codec,
        topology,
        topicPrefix: prefix,
        heartbeats,
        ...(roles === "all" ? {} : { roles }),
      }),
    );
  }
  const writer = await EventWriter.connect(kafka, codec, { topicPrefix: prefix });
  const watch = await LogWatcher.start(kafka, codec, prefix, ["polity.goals.events", "polity.tasks.events"]);
  return {
    prefix,
    kafka,
    codec,
    writer,
    watch,
    async start(roles) {
      const h = await startHierarchy({
        kafka,
        codec,
        topology,
        topicPrefix: prefix,
        heartbeats,
        ...(roles ? { roles } : {}),
      });
      running.push(h);
      return h;
    },
    async stop() {
      await Promise.all(running.map((h) => h.stop()));
      await writer.disconnect();
      await watch.stop();
      await removePrefix(kafka, prefix);
    },
  };
}

/** Deletes a test run's topics and consumer groups, so the broker does not collect them run after run. */
export async function removePrefix(kafka: Kafka, prefix: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(prefix));
    if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics });
  } finally {
    await admin.disconnect();
  }
}
