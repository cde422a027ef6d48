/**
 * What the dashboard's browser tests share: a whole platform on its own topic prefix (the hierarchy
 * with heartbeats, both read models, a gateway serving the built dashboard), and headless Chromium
 * (Debian's package, driven by playwright-core) whose pages record every console error, page error
 * and request that leaves the loopback interface.
 */
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { Auth, type Role } from "../../gateway/auth.js";
import { ReadSide } from "../../gateway/read-side.js";
import { createGateway, type Gateway } from "../../gateway/server.js";
import { ensureChromium } from "../../infra/chromium.js";
import { ensureUi } from "../../infra/ui-build.js";
import { deployment, testTopology, type TestDeployment } from "../support/hierarchy.js";
import { startReadModels } from "../support/gateway.js";
import { urls } from "../support/infra.js";

export const UI_SECRET = "polity-ui-test-secret-0123456789abcdef0123456789";

export interface UiRig {
  d: TestDeployment;
  gateway: Gateway;
  url: string;
  token(role: Role, tenantId: string, ttlSeconds?: number): Promise<string>;
  graphql<T = Record<string, unknown>>(query: string, variables: Record<string, unknown>, token: string): Promise<T>;
  stop(): Promise<void>;
}

/** The platform for one test file; the dashboard is built first when stale. */
export async function uiRig(name: string): Promise<UiRig> {
  await ensureUi();
  const d = await deployment(testTopology(), name, "all", { heartbeats: true });
  const models = await startReadModels(d, "ui");
  const { pool, db, schema, projections } = models;
  const auth = new Auth(UI_SECRET);
  const gateway = await createGateway({
    kafka: d.kafka,
    codec: d.codec,
    writer: d.writer,
    read: new ReadSide(db, pool, { analyticsSchema: schema }),
    auth,
    registryUrl: urls.schemaRegistryUrl,
    topicPrefix: d.prefix,
    projectionWaitMs: 20_000,
    // The browser's page loads and polls come from one address; the default limit is for API clients.
    rateLimitPerSecond: 1_000,
    log: (line) => process.stderr.write(`[gateway] ${line}\n`),
  });
  const url = await gateway.listen(0);
  return {
    d,
    gateway,
    url,
    token: (role, tenantId, ttlSeconds) => auth.mint({ subject: `${role}-${tenantId}`, role, tenantId }, ttlSeconds),
    async graphql<T>(query: string, variables: Record<string, unknown>, token: string): Promise<T> {
      const res = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      const body = (await res.json()) as { data?: T; errors?: { message: string }[] };
      if (body.errors?.length || !body.data) throw new Error(`GraphQL: ${JSON.stringify(body.errors ?? body)}`);
      return body.data;
    },
    async stop() {
      await gateway.stop().catch(() => undefined);
      for (const p of projections) await p.stop().catch(() => undefined);
      await d.stop().catch(() => undefined);
      await models.stop();
    },
  };
}

/** A page and what it has reported: console errors, uncaught errors, requests off the loopback interface. */
export interface Watched {
  page: Page;
  context: BrowserContext;
  consoleErrors: string[];
  pageErrors: string[];
  /** Requests to anything but 127.0.0.1/localhost: refused (the dashboard must work offline) and listed. */
  external: string[];
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const executablePath = await ensureChromium();
  return chromium.launch({
    executablePath,
    headless: true,
    // Root cannot use Chromium's sandbox; /dev/shm is small in containers.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
}

const LOOPBACK = /^(https?|wss?):\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//;

export async function watchedPage(browser: Browser, viewport = { width: 1440, height: 900 }): Promise<Watched> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const consoleErrors: string[] = [];
  const pageErrors: string[] = [];
  const external: string[] = [];
  await context.route(
    (u) => !LOOPBACK.test(u.href) && !u.href.startsWith("data:") && !u.href.startsWith("blob:"),
    (route) => {
      external.push(route.request().url());
      return route.abort("blockedbyclient");
    },
  );
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${m.text()} (${m.location().url}:${m.location().lineNumber})`);
  });
  page.on("pageerror", (e) => pageErrors.push(e.stack ?? e.message));
  // What a refused request asked and was answered, beside Chromium's bare "status of 400" line.
  page.on("response", async (r) => {
    if (r.status() < 400) return;
    const body = await r.text().catch(() => "");
    consoleErrors.push(
      `  ${r.request().method()} ${r.url()} ${r.status()}: ${r.request().postData()?.slice(0, 300)} -> ${body.slice(0, 300)}`,
    );
  });
  return { page, context, consoleErrors, pageErrors, external, close: () => context.close() };
}

/** Signs in through the link `npm run token` prints. */
export async function signIn(w: Watched, baseUrl: string, token: string, hash = "#/"): Promise<void> {
  await w.page.goto(`${baseUrl}/ui#token=${token}`);
  await w.page.getByTestId("live-status").waitFor();
  if (hash !== "#/") await w.page.evaluate((h) => (location.hash = h), hash);
}
