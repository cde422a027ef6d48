/**
 * The probe endpoints of a processors or read-models process started on its own (a container, a
 * Kubernetes pod): GET /health (the process answers and none of its consumers crashed for good),
 * GET /ready (its consumers are connected and running) and GET /metrics (this process's registry,
 * lib/metrics.ts). The gateway serves the same three paths on its own port (gateway/server.ts).
 * Served only when POLITY_PROBE_PORT is set (lib/config.ts), on POLITY_PROBE_HOST.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { registry } from "./metrics.js";

/** One answer of a check: `ok` decides the status code (200 or 503), `detail` says why. */
export interface ProbeResult {
  ok: boolean;
  detail: string;
}

export interface ProbeServerOptions {
  /** What runs here, in the answers and the log line (e.g. "processors: worker"). */
  name: string;
  port: number;
  host: string;
  /** Readiness: the consumers joined and run. Called on every GET /ready. */
  ready: () => ProbeResult | Promise<ProbeResult>;
  /** Liveness beyond "the process answers" (e.g. no consumer crashed for good); ok when absent. */
  live?: () => ProbeResult;
  log?: (line: string) => void;
}

export interface ProbeServer {
  url: string;
  close(): Promise<void>;
}

const started = Date.now();

/**
 * Starts `start`'s service beside its probe server (none when `probes` is undefined): the probes
 * close when it fails to start, and stopping it stops the service, then closes them.
 */
export async function withProbes(
  probes: ProbeServer | undefined,
  start: () => Promise<{ stop(): Promise<void> }>,
): Promise<{ stop(): Promise<void> }> {
  let service: { stop(): Promise<void> };
  try {
    service = await start();
  } catch (e) {
    await probes?.close();
    throw e;
  }
  return {
    async stop() {
      await service.stop();
      await probes?.close();
    },
  };
}

function json(res: http.ServerResponse, result: ProbeResult, name: string): void {
  res
    .writeHead(result.ok ? 200 : 503, { "content-type": "application/json" })
    .end(
      `${JSON.stringify({ status: result.ok ? "ok" : "unavailable", name, detail: result.detail, uptimeSeconds: Math.round((Date.now() - started) / 1000) })}\n`,
    );
}

export async function serveProbes(options: ProbeServerOptions): Promise<ProbeServer> {
  const server = http.createServer((req, res) => {
    const route = req.url?.split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("only GET is served here\n");
      return;
    }
    const failed = (e: unknown) =>
      json(res, { ok: false, detail: `check failed: ${(e as Error).message}` }, options.name);
    if (route === "/health") {
      try {
        json(res, options.live?.() ?? { ok: true, detail: "alive" }, options.name);
      } catch (e) {
        failed(e);
      }
    } else if (route === "/ready") {
      Promise.resolve()
        .then(options.ready)
        .then((result) => json(res, result, options.name), failed);
    } else if (route === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
        (e: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${e.message}\n`),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("served here: GET /health, /ready, /metrics\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          e.code === "EADDRINUSE"
            ? `port ${options.port} for the probes is in use; set POLITY_PROBE_PORT to a free port`
            : `probe server on ${options.host}:${options.port}: ${e.message}`,
        ),
      ),
    );
    server.listen(options.port, options.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const shown = options.host.includes(":") ? `[${options.host}]` : options.host;
  const url = `http://${shown}:${port}`;
  options.log?.(`probes at ${url}/health, /ready, /metrics`);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Resolves on the first SIGINT or SIGTERM: how a served command (infra/cli.ts) waits until it is stopped. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve(signal);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
