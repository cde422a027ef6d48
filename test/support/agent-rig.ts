/**
 * A platform with an agent outside it, for the worker API, the agent socket and the Python HTTP
 * agent: an aamas hierarchy whose `ext` domain has one mayor and one worker group with executor
 * "external" (nobody on the platform runs its tasks), both read models, and a gateway in-process.
 */
import { Auth } from "../../gateway/auth.js";
import { ReadSide } from "../../gateway/read-side.js";
import { createGateway, type Gateway } from "../../gateway/server.js";
import type { TopologyConfig } from "../../processors/topology.js";
import type { TaskSpec } from "../../schemas/generated/types.js";
import { startReadModels, TEST_SECRET, type TestReadModels } from "./gateway.js";
import { deployment, task, type TestDeployment } from "./hierarchy.js";
import { urls } from "./infra.js";

/** The external worker the topology declares (ids: topology.ts `<topology>-worker-<domain>-<spec>-<n>`). */
export const EXTERNAL_AGENT = "aamas-worker-ext-http-1";
export const EXTERNAL_MAYOR = "aamas-mayor-ext-1";

export function externalTopology(heartbeatIntervalMs?: number): TopologyConfig {
  return {
    simulated: { seed: 7, meanDurationMs: 20, failureRate: 0 },
    ...(heartbeatIntervalMs ? { heartbeatIntervalMs } : {}),
    topologies: {
      aamas: {
        domains: {
          ext: { mayors: 1, workers: { http: { count: 1, capacity: 2, executor: "external" } } },
          backend: { mayors: 1, workers: { api: { count: 1, capacity: 2 } } },
        },
      },
    },
  };
}

/** A task for the external agent. */
export const externalTask = (id: string, extra: Partial<TaskSpec> = {}, dependsOn: string[] = []): TaskSpec =>
  task(id, "ext", "http", dependsOn, extra);

export interface Call {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Headers;
}

export interface AgentRig {
  d: TestDeployment;
  models: TestReadModels;
  read: ReadSide;
  auth: Auth;
  gateway: Gateway;
  url: string;
  token(role: "operator" | "viewer" | "admin" | "agent", agentId?: string, tenantId?: string): Promise<string>;
  call(method: string, path: string, token: string | null, body?: unknown): Promise<Call>;
  stop(): Promise<void>;
}

export async function agentRig(name: string, options: { heartbeatIntervalMs?: number } = {}): Promise<AgentRig> {
  const heartbeats = options.heartbeatIntervalMs !== undefined;
  const d = await deployment(externalTopology(options.heartbeatIntervalMs), name, "all", { heartbeats });
  const models = await startReadModels(d, "agent");
  const read = new ReadSide(models.db, models.pool, { analyticsSchema: models.schema });
  const auth = new Auth(TEST_SECRET);
  const gateway = await createGateway({
    kafka: d.kafka,
    codec: d.codec,
    writer: d.writer,
    read,
    auth,
    registryUrl: urls.schemaRegistryUrl,
    topicPrefix: d.prefix,
    projectionWaitMs: 20_000,
    ui: false,
  });
  const url = await gateway.listen(0);
  return {
    d,
    models,
    read,
    auth,
    gateway,
    url,
    token: (role, agentId, tenantId = "acme") =>
      auth.mint({ subject: agentId ?? `${role}-user`, role, tenantId, agentId: agentId ?? null }),
    async call(method, path, token, body) {
      const res = await fetch(`${url}/api/v1${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        // not JSON (an event stream, an empty 204)
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async stop() {
      await gateway.stop().catch(() => undefined);
      for (const p of models.projections) await p.stop().catch(() => undefined);
      await d.stop().catch(() => undefined);
      await models.stop();
    },
  };
}

export { eventually } from "./eventually.js";
