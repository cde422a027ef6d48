/**
 * GraphQL cost limits against aliasing: every field is priced (root fields by what they do), an
 * operation has at most MAX_ROOT_FIELDS root fields and MAX_ALIASES aliases, and a refusal comes
 * before anything runs, with the computed cost and the limit in its message. systemHealth is
 * computed once per request however many aliases ask for it. Every query of the dashboard (ui/)
 * stays within the limits.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, specifiedRules, validate } from "graphql";
import { repoRoot } from "../../lib/config.js";
import { limitsRule, MAX_ALIASES, MAX_COST, MAX_ROOT_FIELDS } from "../../gateway/graphql/limits.js";
import { gatewaySchema } from "../../gateway/graphql/schema.js";
import { gatewayRig, type GatewayRig } from "../support/gateway.js";

const aliasesOf = (n: number, field = "systemHealth { status totalAgents completedTasks }") =>
  `query { ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(" ")} }`;

/**
 * Every GraphQL operation written in ui/src: the `/* GraphQL *\/` literals (with the overview's
 * GOAL_FIELDS and counts() expanded as the page does) and the inline `query Name { ... }` strings.
 */
function dashboardOperations(): { where: string; query: string }[] {
  const dir = path.join(repoRoot, "ui", "src");
  const files = [
    ...fs.readdirSync(dir).map((f) => path.join(dir, f)),
    ...fs.readdirSync(path.join(dir, "pages")).map((f) => path.join(dir, "pages", f)),
  ].filter((f) => /\.tsx?$/.test(f));
  const out: { where: string; query: string }[] = [];
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    const goalFields = /const GOAL_FIELDS = `([^`]*)`/.exec(text)?.[1];
    const statuses = /const STATUSES = \[([^\]]*)\]/
      .exec(text)?.[1]
      ?.match(/"(\w+)"/g)
      ?.map((s) => s.slice(1, -1));
    const expand = (src: string) =>
      src
        .replace(/\$\{GOAL_FIELDS\}/g, () => goalFields ?? "${GOAL_FIELDS}")
        .replace(/\$\{counts\("(\w+)"\)\}/g, (_m, field: string) =>
          (statuses ?? [])
            .map((s) => `${field}_${s}: ${field}(filter: { status: ${s} }, first: 1) { totalCount }`)
            .join("\n"),
        );
    for (const m of text.matchAll(/\/\* GraphQL \*\/ `([^`]*)`/g))
      out.push({ where: path.relative(repoRoot, file), query: expand(m[1]!) });
    for (const m of text.matchAll(/"((?:query|subscription)(?: \w+)? ?\{[^"]*\})"/g))
      out.push({ where: path.relative(repoRoot, file), query: m[1]! });
  }
  return out;
}

describe("GraphQL cost limits", () => {
  it("let every dashboard query through and price aliases of costly fields", () => {
    const schema = gatewaySchema();
    const rules = [...specifiedRules, limitsRule()];
    const operations = dashboardOperations();
    assert.ok(operations.length >= 10, `found only ${operations.length} dashboard operations in ui/src`);
    for (const { where, query } of operations) {
      assert.ok(!query.includes("${"), `${where}: an interpolation this test does not expand: ${query.slice(0, 200)}`);
      const errors = validate(schema, parse(query), rules);
      assert.deepEqual(
        errors.map((e) => e.message),
        [],
        `${where}: ${query.slice(0, 120)}`,
      );
    }
    const statusCounts = operations.find((o) => o.query.includes("StatusCounts"));
    assert.ok(statusCounts && statusCounts.query.includes("goals_RUNNING"), "the overview's ten aliased counts");

    const messages = (q: string) => validate(schema, parse(q), rules).map((e) => e.message);
    // Forty aliases of systemHealth stay under the root-field cap but not under the cost limit.
    assert.match(messages(aliasesOf(40)).join(), new RegExp(`query cost \\d+ is above the limit ${MAX_COST}`));
    // Cheap fields: the caps on root fields and aliases, with the cost stated.
    const many = messages(aliasesOf(MAX_ROOT_FIELDS + 1, "me { role }")).join();
    assert.match(many, new RegExp(`query cost \\d+ \\(limit ${MAX_COST}\\); ${MAX_ROOT_FIELDS + 1} root fields`));
    const nested = `query { me { ${Array.from({ length: MAX_ALIASES + 1 }, (_, i) => `r${i}: role`).join(" ")} } }`;
    assert.match(messages(nested).join(), new RegExp(`${MAX_ALIASES + 1} aliases are more than the ${MAX_ALIASES}`));
    assert.deepEqual(messages(aliasesOf(2)), []);
    // Fragments spread several times count each time.
    const spread = `query { me { ...F ...F } } fragment F on Me { ${Array.from({ length: 101 }, (_, i) => `r${i}: role`).join(" ")} }`;
    assert.match(messages(spread).join(), /202 aliases/);
  });

  describe("over HTTP", () => {
    let rig: GatewayRig;
    let operator: string;
    let reports = 0;
    let counts = 0;

    before(async () => {
      rig = await gatewayRig("gw-limits");
      operator = await rig.token("operator");
      // Count the work systemHealth does: one probe of the servers and one count of the read model.
      const health = rig.gateway.health;
      const report = health.report.bind(health);
      health.report = () => {
        reports++;
        return report();
      };
      const read = rig.read;
      const count = read.counts.bind(read);
      read.counts = (tenantId) => {
        counts++;
        return count(tenantId);
      };
    });
    after(async () => {
      await rig?.stop();
    });

    it("refuses 500 aliases of systemHealth at once, stating the cost and the limit, having run nothing", async () => {
      reports = 0;
      const started = Date.now();
      const r = await rig.graphql(aliasesOf(500), {}, operator);
      const took = Date.now() - started;
      assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 500));
      const error = r.body.errors![0]!;
      assert.equal(error.extensions?.code, "INVALID_INPUT");
      assert.match(error.message, new RegExp(`query cost (\\d+) is above the limit ${MAX_COST}`));
      assert.ok(Number(/query cost (\d+)/.exec(error.message)![1]) > MAX_COST);
      assert.match(error.message, /500 root fields are more than the 50 allowed; 500 aliases are more than the 200/);
      assert.equal(reports, 0, "refused before any resolver ran");
      assert.ok(took < 3_000, `refused in ${took} ms`);
      const huge = await rig.graphql(aliasesOf(2000), {}, operator);
      assert.equal(huge.status, 400);
      assert.equal(reports, 0);
    });

    it("computes systemHealth once for two aliases in one request, and again for the next request", async () => {
      reports = 0;
      counts = 0;
      const r = await rig.graphql(
        `query { a: systemHealth { status totalAgents components { name up } } b: systemHealth { status completedTasks checkedAt } }`,
        {},
        operator,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 500));
      assert.equal(r.body.errors, undefined);
      const { a, b } = r.body.data as { a: { status: string }; b: { status: string } };
      assert.equal(a.status, b.status);
      assert.deepEqual([reports, counts], [1, 1], "one probe and one count for both aliases");
      await rig.graphql(`query { systemHealth { status } }`, {}, operator);
      assert.deepEqual([reports, counts], [2, 2], "a new request computes it again");
    });

    it("answers the dashboard's operations query", async () => {
      const ops = dashboardOperations().find((o) => o.query.includes("query Operations"));
      assert.ok(ops, "ui/src/pages/overview.tsx has the Operations query");
      reports = 0;
      const r = await rig.graphql(ops.query, {}, operator);
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 500));
      assert.equal(r.body.errors, undefined, JSON.stringify(r.body.errors));
      assert.equal(reports, 1);
      const counts = dashboardOperations().find((o) => o.query.includes("query StatusCounts"))!;
      const c = await rig.graphql(counts.query, {}, operator);
      assert.equal(c.status, 200, JSON.stringify(c.body).slice(0, 500));
      assert.equal(c.body.errors, undefined);
    });
  });
});
