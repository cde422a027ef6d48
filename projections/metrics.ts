/**
 * The read models' metrics: lag per projection and partition (log end minus checkpoint, asked of
 * the broker at scrape time) and events applied. Hosts are added when they start and removed when
 * they stop, so a scrape only shows live projections.
 */
import { Gauge } from "prom-client";
import { registry } from "../lib/metrics.js";
import type { ProjectionHost } from "./host.js";

const hosts = new Set<ProjectionHost>();

new Gauge({
  name: "polity_projection_lag_events",
  help: "Events in the log not yet applied by a read model, per topic partition",
  labelNames: ["projection", "topic", "partition"],
  registers: [registry],
  async collect() {
    this.reset();
    for (const host of hosts) {
      const lag = await host.lag().catch(() => new Map<string, bigint>());
      for (const [key, n] of lag) {
        const at = key.lastIndexOf(":");
        this.set({ projection: host.name, topic: key.slice(0, at), partition: key.slice(at + 1) }, Number(n));
      }
    }
  },
});

new Gauge({
  name: "polity_projection_events_applied",
  help: "Events applied by a read model since this process started",
  labelNames: ["projection"],
  registers: [registry],
  collect() {
    this.reset();
    for (const host of hosts) this.set({ projection: host.name }, host.stats.events);
  },
});

export function watchProjection(host: ProjectionHost): () => void {
  hosts.add(host);
  return () => hosts.delete(host);
}
