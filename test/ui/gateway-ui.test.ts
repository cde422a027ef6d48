/**
 * What the gateway serves for the dashboard, without a stack (no request here reaches a server):
 * the page and its hashed assets, GraphiQL bundled (GET /graphql from a browser), the Swagger UI
 * page for the OpenAPI document, the schema for GraphiQL, the switch that turns them off, and the
 * page that says how to build a missing dashboard. And the bundle loads nothing from elsewhere.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { MongoClient } from "mongodb";
import pg from "pg";
import { Auth } from "../../gateway/auth.js";
import { ReadSide } from "../../gateway/read-side.js";
import { createGateway, type GatewayOptions } from "../../gateway/server.js";
import { buildKey, builtKey, ensureUi, UI_DIST } from "../../infra/ui-build.js";
import { kafkaClient } from "../../lib/kafka.js";
import type { EventWriter } from "../../producers/writer.js";
import { Codec } from "../../schemas/codec.js";

/** A gateway whose servers are never asked: its express app, on a free port. */
async function serve(overrides: Partial<GatewayOptions> = {}) {
  const mongo = new MongoClient("mongodb://127.0.0.1:1/none", { serverSelectionTimeoutMS: 100 });
  const pool = new pg.Pool({ connectionString: "postgres://none@127.0.0.1:1/none" });
  const gateway = await createGateway({
    kafka: kafkaClient(["127.0.0.1:1"], "ui-test", true),
    codec: Codec.forUrl("http://127.0.0.1:1"),
    writer: {} as EventWriter,
    read: new ReadSide(mongo.db(), pool),
    auth: new Auth("polity-ui-test-secret-0123456789abcdef"),
    registryUrl: "http://127.0.0.1:1",
    ...overrides,
  });
  const server = http.createServer(gateway.app);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    get: (p: string, headers: Record<string, string> = {}) => fetch(`${url}${p}`, { headers, redirect: "manual" }),
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await pool.end();
    },
  };
}

const HTML = { accept: "text/html" };

describe("the gateway serves the dashboard, GraphiQL and the API docs", () => {
  let g: Awaited<ReturnType<typeof serve>>;
  before(async () => {
    await ensureUi();
    g = await serve();
  });
  after(async () => {
    await g?.close();
  });

  it("builds only when stale: the key on disk is the key of the sources", () => {
    assert.equal(builtKey(), buildKey());
  });

  it("serves the dashboard at /ui with hashed, long-cached assets; / leads there", async () => {
    const root = await g.get("/");
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/ui");
    const page = await g.get("/ui");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    assert.equal(page.headers.get("cache-control"), "no-cache");
    const html = await page.text();
    const scripts = [...html.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(scripts.some((s) => /app-\w+\.js$/.test(s)) && scripts.some((s) => /app-\w+\.css$/.test(s)), html);
    for (const s of scripts) {
      const asset = await g.get(s);
      assert.equal(asset.status, 200, s);
      assert.match(asset.headers.get("cache-control") ?? "", /immutable/);
      await asset.arrayBuffer();
    }
    const missing = await g.get("/ui/assets/none-1234.js");
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, "NOT_FOUND");
  });

  it("serves its own GraphiQL at GET /graphql to a browser, and the schema it reads", async () => {
    const page = await g.get("/graphql", HTML);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /\/ui\/assets\/graphiql-\w+\.js/);
    assert.doesNotMatch(html, /https?:\/\//, "GraphiQL's page names no other host");
    const schema = await g.get("/ui/schema.json");
    assert.equal(schema.status, 200);
    const body = (await schema.json()) as { __schema: { queryType: { name: string } } };
    assert.equal(body.__schema.queryType.name, "Query");
    // An API client is still answered as before.
    const api = await fetch(`${g.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    assert.deepEqual(await api.json(), { data: { __typename: "Query" } });
  });

  it("serves the OpenAPI document in Swagger UI at /api-docs", async () => {
    const page = await g.get("/api-docs");
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /\/ui\/api-docs\/swagger-ui-bundle\.js/);
    assert.doesNotMatch(html, /https?:\/\//);
    assert.equal((await g.get("/ui/api-docs/swagger-ui-bundle.js")).status, 200);
    assert.match(await (await g.get("/ui/api-docs/init.js")).text(), /url: "\/openapi\.json"/);
  });

  it("bundles every asset: no stylesheet, font or script is fetched from another host", () => {
    const assets = fs.readdirSync(path.join(UI_DIST, "assets")).map((f) => path.join(UI_DIST, "assets", f));
    const css = [...assets.filter((f) => f.endsWith(".css")), path.join(UI_DIST, "api-docs", "swagger-ui.css")];
    for (const f of css) {
      const text = fs.readFileSync(f, "utf8");
      assert.doesNotMatch(text, /url\(\s*["']?(https?:)?\/\//, `${path.basename(f)} loads from another host`);
      assert.doesNotMatch(text, /@import/, `${path.basename(f)} imports a stylesheet`);
    }
    for (const f of assets.filter((x) => x.endsWith(".js"))) {
      const text = fs.readFileSync(f, "utf8");
      assert.doesNotMatch(text, /unpkg\.com|jsdelivr\.net|cdnjs|fonts\.googleapis/, `${path.basename(f)} names a CDN`);
    }
  });

  it("serves none of it when turned off", async () => {
    const off = await serve({ ui: false });
    try {
      assert.equal((await off.get("/ui")).status, 404);
      assert.equal((await off.get("/api-docs")).status, 404);
      const graphql = await off.get("/graphql", HTML);
      assert.doesNotMatch(await graphql.text(), /graphiql/i);
    } finally {
      await off.close();
    }
  });

  it("says how to build a dashboard that is not built", async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "polity-ui-"));
    const bare = await serve({ uiDir: empty });
    try {
      const page = await bare.get("/ui");
      assert.equal(page.status, 503);
      assert.match(await page.text(), /npm run ui:build/);
      assert.match(await (await bare.get("/graphql", HTML)).text(), /not built/);
    } finally {
      await bare.close();
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
