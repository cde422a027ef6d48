/**
 * Prometheus metrics of this process: one registry every module registers into, served as text at
 * GET /metrics (by `npm start` on POLITY_METRICS_PORT, and by the gateway on its own port).
 * Gauges that describe another component (a projection's lag) are computed when scraped, so a
 * scrape always shows the present, never the last value someone remembered to set.
 */
import http from "node:http";
import { collectDefaultMetrics, Registry } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "polity_process_" });

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
