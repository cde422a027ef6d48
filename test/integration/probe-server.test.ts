/**
 * The probe endpoints of processes started on their own (lib/probe-server.ts), as a container
 * runs them and Kubernetes probes them (infra/helm/polity): the module's answers, then a real
 * processors process and a real read-models process against the dev stack, each with
 * POLITY_PROBE_PORT set, answering /health, /ready and /metrics until SIGTERM stops them cleanly.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import pg from "pg";
import { spawnScript } from "../../lib/child.js";
import { urlsToEnv } from "../../lib/config.js";
import { serveProbes, type ProbeResult } from "../../lib/probe-server.js";
import { ensureTopics } from "../../producers/admin.js";
import { readModelTargets } from "../../projections/run.js";
import { topologyFile } from "../support/child.js";
import { testTopology } from "../support/hierarchy.js";
import { kafka, unique, urls } from "../support/infra.js";

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

/** Asks until `path` answers 200 (readiness follows the consumers joining), or fails with the last answer. */
async function until200(url: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const r = await get(url).catch((e: Error) => ({ status: 0, body: e.message }));
    if (r.status === 200) return r.body;
    last = `${r.status} ${r.body}`;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms; last: ${last}`);
}

describe("probe server (lib/probe-server.ts)", () => {
  it("answers /health, /ready (503 until ready) and /metrics, and nothing else", async () => {
    let ready: ProbeResult = { ok: false, detail: "starting" };
    let live: ProbeResult = { ok: true, detail: "alive" };
    const probes = await serveProbes({
      name: "test",
      port: 0,
      host: "127.0.0.1",
      ready: async () => ready,
      live: () => live,
    });
    try {
      assert.equal((await get(`${probes.url}/health`)).status, 200);
      const notReady = await get(`${probes.url}/ready`);
      assert.equal(notReady.status, 503);
      assert.equal(JSON.parse(notReady.body).detail, "starting");
      ready = { ok: true, detail: "running" };
      assert.equal((await get(`${probes.url}/ready`)).status, 200);
      live = { ok: false, detail: "consumer not running: worker" };
      assert.equal((await get(`${probes.url}/health`)).status, 503);
      const metrics = await get(`${probes.url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /^polity_process_process_cpu_seconds_total /m);
      assert.equal((await get(`${probes.url}/other`)).status, 404);
      assert.equal((await fetch(`${probes.url}/health`, { method: "POST" })).status, 405);
    } finally {
      await probes.close();
    }
  });

  it("refuses a port in use, naming POLITY_PROBE_PORT", async () => {
    const first = await serveProbes({ name: "a", port: 0, host: "127.0.0.1", ready: () => ({ ok: true, detail: "" }) });
    try {
      const port = Number(new URL(first.url).port);
      await assert.rejects(
        serveProbes({ name: "b", port, host: "127.0.0.1", ready: () => ({ ok: true, detail: "" }) }),
        /POLITY_PROBE_PORT/,
      );
    } finally {
      await first.close();
    }
  });

  it("a processors process serves them: ready once its tier host runs, stopped cleanly by SIGTERM", async () => {
    const port = await freePort();
    const proc = await spawnScript({
      name: "processors (policy)",
      script: "processors/main.ts",
      args: ["--tiers", "policy"],
      env: {
        ...process.env,
        ...urlsToEnv(urls),
        POLITY_TOPIC_PREFIX: `${unique("probes")}.`,
        POLITY_TOPOLOGY_FILE: topologyFile(testTopology()),
        POLITY_PROBE_PORT: String(port),
        POLITY_PROBE_HOST: "127.0.0.1",
      },
      ready: "processors ready",
      timeoutMs: 90_000,
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      assert.match(proc.output(), new RegExp(`probes at ${base}/health`));
      const ready = JSON.parse(await until200(`${base}/ready`)) as { detail: string; name: string };
      assert.equal(ready.name, "processors: policy");
      assert.match(ready.detail, /^policy: \d+ live partition\(s\)$/);
      assert.equal((await get(`${base}/health`)).status, 200);
      const metrics = await get(`${base}/metrics`);
      assert.match(metrics.body, /^polity_processor_up\{processor="policy"\} 1$/m);
    } finally {
      await proc.signal("SIGTERM");
    }
    assert.equal(proc.child.exitCode, 0, proc.output());
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`), "the port is closed after the stop");
  });

  it("a read-models process serves them: ready once its read model runs", async () => {
    const port = await freePort();
    const prefix = `${unique("probes")}.`;
    await ensureTopics(kafka(), prefix);
    const proc = await spawnScript({
      name: "read models (analytics)",
      script: "projections/main.ts",
      args: ["--models", "analytics"],
      env: {
        ...process.env,
        ...urlsToEnv(urls),
        POLITY_TOPIC_PREFIX: prefix,
        POLITY_PROBE_PORT: String(port),
        POLITY_PROBE_HOST: "127.0.0.1",
      },
      ready: "projections ready",
      timeoutMs: 90_000,
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      const ready = JSON.parse(await until200(`${base}/ready`)) as { detail: string };
      assert.equal(ready.detail, "running: analytics");
      assert.equal((await get(`${base}/health`)).status, 200);
      assert.match((await get(`${base}/metrics`)).body, /^polity_process_process_resident_memory_bytes /m);
    } finally {
      await proc.signal("SIGTERM");
      // The read model's own schema for this prefix (projections/run.ts readModelTargets).
      const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 1 });
      await pool.query(`DROP SCHEMA IF EXISTS "${readModelTargets(prefix).analyticsSchema}" CASCADE`);
      await pool.end();
    }
    assert.equal(proc.child.exitCode, 0, proc.output());
  });
});
