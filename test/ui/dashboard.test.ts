/**
 * The web dashboard in a real browser (Debian's Chromium, headless, driven by playwright-core)
 * against the real stack: a goal submitted through the API appears and its tasks turn completed
 * without a reload, also across a lost connection (cut by a TCP proxy), which the page says it
 * made again; a stop from the UI stops a running goal; a project submitted and its next phase
 * approved from the UI; a refused command shows the API's message; a bad token says why and how
 * to get one; another tenant's goals never appear; and every page (GraphiQL and the API docs
 * included) renders with no console error and no request leaving the machine.
 *
 * `UI_SCREENSHOTS=1 node --import tsx --test test/ui/dashboard.test.ts` also writes a screenshot of
 * each page into docs/screenshots/ (the README's "Dashboard" section shows them).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { repoRoot } from "../../lib/config.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { launchBrowser, signIn, uiRig, watchedPage, type UiRig, type Watched } from "./support.js";

const SCREENSHOTS = process.env.UI_SCREENSHOTS ? path.join(repoRoot, "docs", "screenshots") : null;

/** A small shop as a ten-task DAG across three domains; every task takes about `effortMs`. */
function shop(effortMs: number) {
  const t = (id: string, title: string, domain: string, specialization: string, dependsOn: string[] = []) => ({
    id,
    title,
    domain,
    specialization,
    dependsOn,
    estimatedEffortMs: effortMs,
  });
  return [
    t("design", "Design the storefront", "frontend", "react"),
    t("schema", "Catalogue schema", "backend", "database"),
    t("orders-api", "Orders API", "backend", "api", ["schema"]),
    t("auth-api", "Sign-in API", "backend", "api", ["schema"]),
    t("checkout", "Checkout pages", "frontend", "react", ["design"]),
    t("styles", "Styles", "frontend", "css", ["design"]),
    t("unit", "Unit tests", "testing", "unit-test", ["orders-api", "auth-api"]),
    t("wire-up", "Wire pages to the API", "frontend", "react", ["checkout", "styles", "orders-api"]),
    t("e2e", "End-to-end tests", "testing", "e2e-test", ["wire-up", "unit"]),
    t("release", "Release", "backend", "api", ["e2e"]),
  ];
}

const SUBMIT = `mutation ($input: GoalInput!) { submitGoal(input: $input, waitForProjection: true) { accepted aggregateId projected outcome } }`;

async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  if (!SCREENSHOTS) return;
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  // Let charts and the live indicator settle, and no caret blink.
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage, caret: "hide" });
}

/** Waits until nothing on the page says it is loading. */
async function loaded(page: Page): Promise<void> {
  await page.waitForFunction(() => !/Loading [^…]*…/.test(document.body.innerText), null, { timeout: 20_000 });
}

async function statuses(page: Page): Promise<Record<string, string>> {
  return page.$$eval("[data-task]", (nodes) =>
    Object.fromEntries(nodes.map((n) => [n.getAttribute("data-task"), n.getAttribute("data-status")])),
  );
}

describe("dashboard in a real browser", () => {
  let rig: UiRig;
  let browser: Browser;
  let acme: string;
  let acmeAdmin: string;
  let globex: string;
  const pages: Watched[] = [];
  const open = async () => {
    const w = await watchedPage(browser);
    pages.push(w);
    return w;
  };

  before(async () => {
    [rig, browser] = await Promise.all([uiRig("ui"), launchBrowser()]);
    acme = await rig.token("operator", "acme");
    acmeAdmin = await rig.token("admin", "acme");
    globex = await rig.token("operator", "globex");
  });
  after(async () => {
    for (const w of pages) await w.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await rig?.stop();
  });

  it("a bad token says why and how to get one", async () => {
    const w = await open();
    await w.page.goto(`${rig.url}/ui#token=not-a-token`);
    const error = w.page.getByTestId("signin-error");
    await error.waitFor();
    assert.match(await error.innerText(), /not accepted/);
    assert.match(await w.page.innerText("body"), /npm run token -- --role operator/);
    // The token is taken out of the address, and not kept.
    assert.equal(new URL(w.page.url()).hash, "#/");
    assert.equal(await w.page.evaluate(() => localStorage.getItem("polity.token")), null);
    // An expired one: the gateway's own reason.
    const expired = await rig.token("operator", "acme", 1);
    await new Promise((r) => setTimeout(r, 1_100));
    await w.page.goto(`${rig.url}/ui#token=${expired}`);
    await w.page.waitForFunction(() =>
      /exp/.test(document.querySelector("[data-testid=signin-error]")?.textContent ?? ""),
    );
    await screenshot(w.page, "sign-in");
  });

  it("shows a goal submitted through the API, and its tasks turn completed live, across a lost connection", async () => {
    // Through a TCP proxy, so that the test can cut the page's connections like a network would.
    const proxy = await TcpProxy.start({ host: "127.0.0.1", port: Number(new URL(rig.url).port) });
    try {
      const base = `http://127.0.0.1:${proxy.port}`;
      const w = await open();
      await signIn(w, base, acme);
      await w.page.evaluate(() => ((window as unknown as { loadedOnce: number }).loadedOnce = Date.now()));
      await w.page.getByTestId("page-overview").waitFor();

      const goalId = `ui-shop-${randomUUID().slice(0, 8)}`;
      const submitted = await rig.graphql<{ submitGoal: { accepted: boolean } }>(
        SUBMIT,
        {
          input: {
            goalId,
            title: "Online shop",
            priority: 7,
            domainHints: ["frontend", "backend"],
            tasks: shop(1_200),
          },
        },
        acme,
      );
      assert.equal(submitted.submitGoal.accepted, true);

      // It appears in the portfolio without a reload, and its page is one click away.
      const row = w.page.locator(`[data-goal="${goalId}"]`);
      await row.waitFor({ timeout: 15_000 });
      await row.locator("a").first().click();
      await w.page.getByTestId("page-goal").waitFor();
      await w.page.waitForFunction(() => document.querySelectorAll("[data-task]").length === 10, null, {
        timeout: 15_000,
      });
      const first = await statuses(w.page);
      assert.ok(
        Object.values(first).some((s) => s !== "COMPLETED"),
        `the goal should still be running when its page opens: ${JSON.stringify(first)}`,
      );

      // Cut every connection the page has: the live connection is lost, made again, and said so.
      for (let n = 1; n <= proxy.accepted; n++) proxy.cut(n);
      await w.page.waitForFunction(
        () => {
          const s = document.querySelector("[data-testid=live-status]");
          return s?.getAttribute("data-state") === "live" && Number(s.getAttribute("data-reconnects")) >= 1;
        },
        null,
        { timeout: 20_000 },
      );
      assert.match(await w.page.getByTestId("live-status").innerText(), /reconnected/);

      await w.page.waitForFunction(
        () => {
          const nodes = [...document.querySelectorAll("[data-task]")];
          return nodes.length === 10 && nodes.every((n) => n.getAttribute("data-status") === "COMPLETED");
        },
        null,
        { timeout: 60_000 },
      );
      await w.page.waitForSelector('[data-testid=page-goal][data-goal-status="COMPLETED"]', { timeout: 20_000 });
      assert.ok(
        await w.page.evaluate(() => (window as unknown as { loadedOnce?: number }).loadedOnce),
        "the page was never reloaded",
      );
      assert.deepEqual(w.pageErrors, []);
    } finally {
      await proxy.stop();
    }
  });

  it("stops a running goal from the UI", async () => {
    const w = await open();
    await signIn(w, rig.url, acme);
    const goalId = `ui-long-${randomUUID().slice(0, 8)}`;
    await rig.graphql(
      SUBMIT,
      { input: { goalId, title: "Data migration (long)", tasks: shop(120_000).slice(0, 4) } },
      acme,
    );
    await w.page.evaluate((id) => (location.hash = `#/goals/${id}`), goalId);
    await w.page.waitForSelector('[data-task][data-status="RUNNING"]', { timeout: 30_000 });
    await w.page.getByTestId("stop").click();
    await w.page.getByTestId("stop-reason").fill("wrong data set");
    await w.page.getByTestId("stop-confirm").click();
    await w.page.waitForSelector(".modal .ok", { timeout: 30_000 });
    await w.page.waitForSelector('[data-testid=page-goal][data-goal-status="STOPPED"]', { timeout: 30_000 });
    const end = await rig.d.watch.final(goalId, 30_000);
    assert.equal(end.type, "GoalStopped");
    await w.page.waitForFunction(
      () =>
        [...document.querySelectorAll("[data-task]")].every((n) =>
          ["CANCELLED", "COMPLETED"].includes(n.getAttribute("data-status") ?? ""),
        ),
      null,
      { timeout: 20_000 },
    );
    assert.equal(await w.page.getByTestId("stop").isDisabled(), true);
    assert.deepEqual(w.pageErrors, []);
  });

  it("never shows another tenant's goals", async () => {
    const { goals } = await rig.graphql<{ goals: { edges: { node: { id: string; title: string } }[] } }>(
      `{ goals(first: 50) { edges { node { id title } } } }`,
      {},
      acme,
    );
    assert.ok(goals.edges.length >= 2, "acme has goals by now");
    const own = `ui-globex-${randomUUID().slice(0, 8)}`;
    await rig.graphql(SUBMIT, { input: { goalId: own, title: "Globex payroll", tasks: shop(10).slice(0, 2) } }, globex);

    const w = await open();
    await signIn(w, rig.url, globex);
    await w.page.locator(`[data-goal="${own}"]`).waitFor({ timeout: 15_000 });
    assert.match(await w.page.getByTestId("tenant").innerText(), /globex/);
    const shown = await w.page.$$eval("[data-goal]", (rows) => rows.map((r) => r.getAttribute("data-goal")));
    assert.deepEqual(shown, [own]);
    const text = await w.page.innerText("body");
    for (const { node } of goals.edges) {
      assert.ok(!text.includes(node.id), `acme's goal ${node.id} is on globex's overview`);
      assert.ok(!text.includes(node.title), `acme's goal "${node.title}" is on globex's overview`);
    }
    // Asked for by id, it is not found (and not a glimpse of it).
    await w.page.evaluate((id) => (location.hash = `#/goals/${id}`), goals.edges[0]!.node.id);
    await w.page.getByTestId("page-goal-missing").waitFor({ timeout: 15_000 });
    assert.ok(!(await w.page.innerText("body")).includes(goals.edges[0]!.node.title));
  });

  it("submits a project and approves its next phase from the UI; a refused command shows the API's message", async () => {
    const w = await open();
    await signIn(w, rig.url, acme, "#/submit");
    await w.page.getByTestId("page-submit").waitFor();
    // Refused by the gateway: no title.
    await w.page.getByTestId("submit").click();
    await w.page.getByTestId("submit-confirm").click();
    const refused = w.page.locator(".modal .error");
    await refused.waitFor();
    assert.match(await refused.innerText(), /Refused: .*title.*INVALID_INPUT/s);
    await w.page.getByRole("button", { name: "Cancel" }).click();

    await w.page.getByLabel("project (eight SDLC phases)").check();
    await w.page.getByTestId("submit-title").fill("Bookshop relaunch");
    await w.page.getByLabel("backend").check();
    await w.page.getByLabel("frontend").check();
    await w.page.getByLabel("wait for my approval between phases").check();
    await screenshot(w.page, "submit");
    await w.page.getByTestId("submit").click();
    await w.page.getByTestId("submit-confirm").click();
    await w.page.waitForSelector(".modal .ok", { timeout: 30_000 });
    await w.page.getByRole("button", { name: "Close" }).click();
    await w.page.getByTestId("submitted").locator("a").click();
    await w.page.getByTestId("page-goal").waitFor();
    // The initiation phase runs, then the project waits for approval.
    await w.page.waitForFunction(
      () => {
        const nodes = [...document.querySelectorAll("[data-task]")];
        return nodes.length > 0 && nodes.every((n) => n.getAttribute("data-status") === "COMPLETED");
      },
      null,
      { timeout: 60_000 },
    );
    await w.page.getByTestId("approve-phase").click();
    await w.page.getByTestId("approve-phase-confirm").click();
    const ok = w.page.locator(".modal .ok");
    await ok.waitFor({ timeout: 30_000 });
    assert.match(await ok.innerText(), /FEASIBILITY/);
    await w.page.getByRole("button", { name: "Close" }).click();
    await w.page.waitForSelector(".phase.current >> text=feasibility", { timeout: 20_000 });
    assert.deepEqual(w.pageErrors, []);
    // Chromium logs the refused command's HTTP 400 itself; nothing else may be logged.
    assert.deepEqual(
      w.consoleErrors.filter((e) => !/status of 400 \(Bad Request\)|title: must not be empty/.test(e)),
      [],
    );
  });

  it("renders every page with no console error and nothing fetched from outside", async () => {
    // Something for the policies page: a constitutional policy, amended once, and a goal it refused.
    const policyId = `no-crypto-${randomUUID().slice(0, 6)}`;
    await rig.graphql(
      `mutation ($input: PolicyInput!) { definePolicy(input: $input, waitForProjection: true) { accepted } }`,
      {
        input: {
          policyId,
          name: "No crypto mining",
          category: "CONSTITUTIONAL",
          description: "goals may not mine coins",
          rules: { principle: "Polity mines no coins", forbiddenTerms: ["crypto"], enforcement: "BLOCKED" },
        },
      },
      acmeAdmin,
    );
    await rig.graphql(
      `mutation ($input: PolicyAmendmentInput!) { amendPolicy(input: $input, waitForProjection: true) { accepted } }`,
      {
        input: {
          policyId,
          expectedVersion: 1,
          rules: {
            principle: "Polity mines no coins",
            forbiddenTerms: ["crypto", "mining rig"],
            enforcement: "BLOCKED",
          },
          rationale: "mining rigs too",
        },
      },
      acmeAdmin,
    );
    // The president reads the policy from the log: until it has, a goal using the term still runs.
    for (let i = 0; ; i++) {
      const r = await rig.graphql<{ submitGoal: { outcome: string | null } }>(
        SUBMIT,
        { input: { title: "Crypto wallet miner", tasks: shop(10).slice(0, 1) } },
        acme,
      );
      if (r.submitGoal.outcome?.startsWith("REJECTED")) break;
      assert.ok(i < 20, `the policy never refused a goal: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 500));
    }
    // And one goal left running, for the overview.
    await rig.graphql(SUBMIT, { input: { title: "Search index rebuild", tasks: shop(90_000).slice(0, 3) } }, acme);

    const w = await open();
    await signIn(w, rig.url, acme);
    const visit = async (hash: string, testId: string, name?: string) => {
      await w.page.evaluate((h) => (location.hash = h), hash);
      await w.page
        .getByTestId(testId)
        .waitFor({ timeout: 20_000 })
        .catch(async (e: Error) => {
          throw new Error(`${hash}: ${e.message}\n${await w.page.innerText("main").catch(() => "")}`);
        });
      await loaded(w.page);
      if (name) await screenshot(w.page, name);
    };
    await visit("#/", "page-overview");
    await w.page.waitForSelector("[data-goal]");
    await screenshot(w.page, "overview");
    await visit("#/domains/backend", "page-domain", "domain");
    await visit("#/agents", "page-agents", "agents");
    await w.page.locator("[data-agent]").first().waitFor();
    await visit("#/policies", "page-policies");
    await w.page.getByText("No crypto mining").click();
    await w.page.getByText("mining rigs too").waitFor();
    // The refusal is in the analytics views too (policyDenials, constitutionalViolations).
    await w.page.getByTestId("policy-denials").waitFor({ timeout: 30_000 });
    await w.page.getByTestId("constitutional-violations").waitFor({ timeout: 30_000 });
    await screenshot(w.page, "policies");
    await visit("#/deadletters", "page-deadletters", "dead-letters");
    const shopGoal = await w.page.evaluate(async (token) => {
      const r = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({
          query: `{ goals(filter: { status: COMPLETED }, first: 20) { edges { node { id title } } } }`,
        }),
      });
      const body = (await r.json()) as { data: { goals: { edges: { node: { id: string; title: string } }[] } } };
      return body.data.goals.edges.find((e) => e.node.title === "Online shop")?.node.id;
    }, acme);
    assert.ok(shopGoal, "the shop goal of the live test is completed");
    await visit(`#/goals/${shopGoal}`, "page-goal");
    await w.page.getByTestId("timeline").waitFor({ timeout: 30_000 });
    await w.page.locator('[data-task="wire-up"]').click();
    await w.page.getByTestId("task-detail").waitFor();
    await screenshot(w.page, "goal");
    const project = await w.page.evaluate(async (token) => {
      const r = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: `{ projects(first: 5) { edges { node { id } } } }` }),
      });
      const body = (await r.json()) as { data: { projects: { edges: { node: { id: string } }[] } } };
      return body.data.projects.edges[0]?.node.id;
    }, acme);
    if (project) {
      await visit(`#/goals/${project}`, "page-goal");
      await w.page.getByTestId("timeline").waitFor({ timeout: 30_000 });
      await screenshot(w.page, "project");
    }
    await visit("#/submit", "page-submit");

    // GraphiQL, bundled: the schema loads and a query runs with the dashboard's token.
    await w.page.goto(`${rig.url}/graphql`);
    await w.page.waitForSelector(".graphiql-container", { timeout: 20_000 });
    await w.page.locator(".graphiql-execute-button").click();
    await w.page.waitForFunction(
      () => /tenantId/.test(document.querySelector(".result-window")?.textContent ?? ""),
      null,
      {
        timeout: 20_000,
      },
    );
    assert.match((await w.page.locator(".result-window").innerText()).replace(/\s+/g, " "), /"tenantId": "acme"/);
    await screenshot(w.page, "graphiql");

    // The OpenAPI document in Swagger UI.
    await w.page.goto(`${rig.url}/api-docs`);
    await w.page.waitForSelector(".swagger-ui .information-container .title", { timeout: 20_000 });
    assert.match(await w.page.locator(".swagger-ui .information-container .title").innerText(), /Polity/);
    await w.page.waitForSelector(".opblock", { timeout: 20_000 });
    await screenshot(w.page, "api-docs", false);

    assert.deepEqual(w.pageErrors, [], "uncaught errors");
    assert.deepEqual(w.consoleErrors, [], "console errors");
    assert.deepEqual(w.external, [], "requests that left the machine");
    for (const other of pages) assert.deepEqual(other.external, [], "requests that left the machine");
  });
});
