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

async function timed(name: string, probe: () => Promise<string>): Promise<ComponentHealth> {
  const started = Date.now();
  try {
    const detail = await Promise.race([
      probe(),
      new Promise<string>((_, reject) => setTimeout(() => reject(new Error("no answer within 3 s")), 3_000)),
    ]);
    return { name, up: true, latencyMs: Date.now() - started, detail };
  } catch (e) {
    return { name, up: false, latencyMs: Date.now() - started, detail: (e as Error).message };
  }
}

export class HealthChecks {
  private admin?: Promise<Admin>;
  private readonly stores: Record<ReadModel, ProjectionStore>;

  constructor(
    private readonly kafka: Kafka,
    private readonly registryUrl: string,
    private readonly read: ReadSide,
    private readonly options: { topicPrefix?: string; maxLag?: number } = {},
  ) {
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
        const res = await fetch(`${this.registryUrl.replace(/\/$/, "")}/subjects`);
        if (!res.ok) throw new Error(`GET /subjects answered ${res.status}`);
        return `${((await res.json()) as unknown[]).length} subject(s)`;
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
          const lag = await this.lag(model);
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
