/**
 * Prometheus metrics of this process: one registry every module registers into, served as text at
 * GET /metrics (by `npm start` on POLITY_METRICS_PORT, and by the gateway on its own port).
 * Gauges that describe another component (a projection's lag) are computed when scraped, so a
 * scrape always shows the present, never the last value someone remembered to set.
 */
import http from "node:http";
import os from "node:os";
import { collectDefaultMetrics, Counter, Registry } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "polity_process_" });

const collectFailures = new Counter({
  name: "polity_metrics_collect_failures_total",
  help: "Scrape-time reads that failed (a store or the broker not answering), by metric; that metric has no samples in that scrape",
  labelNames: ["metric"],
  registers: [registry],
});

/**
 * Runs a scrape-time read; a failure is counted and leaves its metric without samples, instead of
 * failing the whole scrape (prom-client rejects every metric when one collect throws).
 */
export async function guarded(metric: string, read: () => Promise<void>): Promise<void> {
  try {
    await read();
  } catch {
    collectFailures.inc({ metric });
  }
}

/** Serves the registry on 127.0.0.1:port; resolves once listening. */
export async function serveMetrics(port: number, log?: (line: string) => void): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics is served here\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (e: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${e.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          e.code === "EADDRINUSE"
            ? `port ${port} for metrics is in use; set POLITY_METRICS_PORT to a free port`
            : `metrics server: ${e.message}`,
        ),
      ),
    );
    server.listen(port, "127.0.0.1", resolve);
  });
  log?.(`metrics at http://127.0.0.1:${port}/metrics`);
  return server;
}

/** This process's share of the machine, as `agent_cpu_usage_percent` / `agent_memory_usage_percent` report it. */
export interface ProcessUsage {
  /** CPU time (user + system) over the last window, in percent of one core, as `top` shows it: above 100 on several cores. */
  cpuPercent: number;
  /** Resident memory in percent of what the process may use: the cgroup's limit when there is one, else the machine's memory. */
  memoryPercent: number;
  rssBytes: number;
}

/** A scrape shorter than this after the previous one reuses its CPU figure instead of measuring a tiny window. */
const MIN_CPU_WINDOW_MS = 1_000;
let cpuMark = { at: performance.now(), usage: process.cpuUsage() };
let cpuPercent = 0;

/**
 * CPU and memory of this process. CPU is measured between calls (at least a second apart; the first
 * call measures from when this module loaded), so every scraper sees the same recent window.
 */
export function processUsage(): ProcessUsage {
  const now = performance.now();
  const elapsedMs = now - cpuMark.at;
  if (elapsedMs >= MIN_CPU_WINDOW_MS) {
    const used = process.cpuUsage(cpuMark.usage);
    cpuPercent = ((used.user + used.system) / 1000 / elapsedMs) * 100;
    cpuMark = { at: now, usage: process.cpuUsage() };
  }
  const rssBytes = process.memoryUsage.rss();
  // constrainedMemory() is the cgroup limit; without one it answers 0 or a huge number.
  const limit = process.constrainedMemory?.() ?? 0;
  const total = limit > 0 && limit < os.totalmem() ? limit : os.totalmem();
  return { cpuPercent, memoryPercent: (rssBytes / total) * 100, rssBytes };
}
