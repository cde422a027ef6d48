/**
 * Whether the gateway can serve: each backing server answers (Kafka, the registry, MongoDB,
 * PostgreSQL) and each read model is close to the end of the log. Read-model lag is measured from
 * the stores' own checkpoints against the log's end offsets, so it is right wherever the
 * projections run (in this process or another).
 */
import type { Admin, Kafka } from "kafkajs";
import { physicalTopic } from "../schemas/catalog.js";
import type { ProjectionStore } from "../projections/host.js";
import { AnalyticsStore } from "../projections/pg/analytics-store.js";
import { StateStore } from "../projections/mongo/state-store.js";
import { PROJECTED_TOPICS, type ReadModel } from "../projections/run.js";
import type { ReadSide } from "./read-side.js";
import { topicOffsets } from "../lib/kafka.js";
import { RegistryClient } from "../schemas/registry-client.js";

export interface ComponentHealth {
  name: string;
  up: boolean;
  latencyMs: number;
  detail: string;
}

export interface ProjectionLag {
  projection: ReadModel;
  /** Records in the log the read model has not applied yet (all partitions). */
  lag: number;
}

export interface HealthReport {
  ready: boolean;
  components: ComponentHealth[];
  projections: ProjectionLag[];
  checkedAt: Date;
  /** Why the gateway is not ready, one line per cause. */
  problems: string[];
}

/** `work`, or a rejection after 3 s: a readiness probe answers in bounded time, also when a store hangs. */
function within3s<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no answer within 3 s")), 3_000);
  });
  return Promise.race([work, expiry]).finally(() => clearTimeout(timer));
}

async function timed(name: string, probe: () => Promise<string>): Promise<ComponentHealth> {
  const started = Date.now();
  try {
    const detail = await within3s(probe());
    return { name, up: true, latencyMs: Date.now() - started, detail };
  } catch (e) {
    return { name, up: false, latencyMs: Date.now() - started, detail: (e as Error).message };
  }
}

export class HealthChecks {
  private admin?: Promise<Admin>;
  private readonly stores: Record<ReadModel, ProjectionStore>;
  /** Sends the registry's credentials (from the URL or SCHEMA_REGISTRY_USERNAME/PASSWORD). */
  private readonly registry: RegistryClient;

  constructor(
    private readonly kafka: Kafka,
    registryUrl: string,
    private readonly read: ReadSide,
    private readonly options: { topicPrefix?: string; maxLag?: number } = {},
  ) {
    this.registry = new RegistryClient(registryUrl);
    this.stores = {
      analytics: new AnalyticsStore(read.pool, { schema: read.analyticsSchema }),
      state: new StateStore(read.db, { collectionPrefix: read.collectionPrefix }),
    };
  }

  /**
   * One admin client, connected once: concurrent reports (two requests, or aliases of systemHealth)
   * share the same connection attempt instead of each opening a client that stop() never closes.
   */
  private kafkaAdmin(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      this.admin = admin.connect().then(
        () => admin,
        (e: unknown) => {
          this.admin = undefined;
          throw e;
        },
      );
    }
    return this.admin;
  }

  async stop(): Promise<void> {
    const admin = await this.admin?.catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
  }

  private async lag(model: ReadModel): Promise<number> {
    const admin = await this.kafkaAdmin();
    const checkpoints = await this.stores[model].checkpoints();
    let lag = 0n;
    for (const topic of PROJECTED_TOPICS[model]) {
      for (const { partition, high } of await topicOffsets(admin, physicalTopic(topic, this.options.topicPrefix))) {
        const at = checkpoints.get(`${topic}:${partition}`) ?? 0n;
        if (BigInt(high) > at) lag += BigInt(high) - at;
      }
    }
    return Number(lag);
  }

  async report(): Promise<HealthReport> {
    const components = await Promise.all([
      timed("kafka", async () => {
        const cluster = await (await this.kafkaAdmin()).describeCluster();
        return `${cluster.brokers.length} broker(s), controller ${cluster.controller}`;
      }),
      timed("registry", async () => {
        return `${(await this.registry.subjects()).length} subject(s)`;
      }),
      timed("mongo", async () => {
        await this.read.db.command({ ping: 1 });
        return "ping ok";
      }),
      timed("postgres", async () => {
        await this.read.pool.query("SELECT 1");
        return "select 1 ok";
      }),
    ]);
    const problems = components.filter((c) => !c.up).map((c) => `${c.name}: ${c.detail}`);
    const projections: ProjectionLag[] = [];
    const kafkaUp = components[0]!.up;
    if (kafkaUp) {
      for (const model of ["analytics", "state"] as const) {
        try {
          // Bounded like the component checks: a saturated store must not hang /ready (seen under load).
          const lag = await within3s(this.lag(model));
          projections.push({ projection: model, lag });
          const max = this.options.maxLag ?? 10_000;
          if (lag > max) problems.push(`read model ${model} is ${lag} events behind the log (bound ${max})`);
        } catch (e) {
          problems.push(`read model ${model}: ${(e as Error).message}`);
        }
      }
    }
    return { ready: problems.length === 0, components, projections, checkedAt: new Date(), problems };
  }
}
