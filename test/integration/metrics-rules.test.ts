/**
 * The alert rules and the Grafana dashboard against the metrics Polity really exports:
 *
 * - promtool checks infra/prometheus/alerts.yml and prometheus.yml, and runs alerts.test.yml, in
 *   which every alert fires and resolves (checked here too, so a new alert cannot go untested);
 * - a whole platform (the hierarchy with heartbeats, both read models, a gateway, and the metrics
 *   port `npm start` serves) is scraped, and every metric name the rules' and the dashboard's
 *   PromQL use must be exported; the processors' liveness, lag, heartbeat and resource gauges must
 *   have samples, and a goal run through the gateway must show in the counters.
 *
 * promtool comes from Debian's prometheus package; `npm test` installs it when missing as root
 * (infra/native/promtool.ts), and the promtool checks skip, saying why, where it cannot.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { MongoClient, type Db } from "mongodb";
import pg from "pg";
import { Auth } from "../../gateway/auth.js";
import { ReadSide } from "../../gateway/read-side.js";
import { createGateway, type Gateway } from "../../gateway/server.js";
import { ensurePromtool, type Promtool } from "../../infra/native/promtool.js";
import { repoRoot } from "../../lib/config.js";
import { serveMetrics } from "../../lib/metrics.js";
import { ProjectionHost } from "../../projections/host.js";
import { StateStore } from "../../projections/mongo/state-store.js";
import { AnalyticsStore } from "../../projections/pg/analytics-store.js";
import { migrate } from "../../projections/pg/migrate.js";
import { PROJECTED_TOPICS } from "../../projections/run.js";
import { deployment, task, testTopology, TEN_TASK_DAG, type TestDeployment } from "../support/hierarchy.js";
import { urls } from "../support/infra.js";

const PROMETHEUS_DIR = path.join(repoRoot, "infra", "prometheus");
const RULES = path.join(PROMETHEUS_DIR, "alerts.yml");
const RULE_TESTS = path.join(PROMETHEUS_DIR, "alerts.test.yml");
const PROMETHEUS_CONFIG = path.join(PROMETHEUS_DIR, "prometheus.yml");
const DASHBOARD = path.join(repoRoot, "infra", "grafana", "polity-overview.json");
const SECRET = "polity-test-secret-0123456789abcdef0123456789";

/** The DGM design's alerts, and the ones Polity adds for its pipeline. */
const REQUIRED_ALERTS = [
  "MasterAgentDown",
  "WorkerAgentHighFailureRate",
  "TaskQueueBacklog",
  "AgentHighCPUUsage",
  "AgentHighMemoryUsage",
  "GoalExecutionTimeout",
  "ConstitutionalViolation",
  "ProjectionLag",
  "DeadLetters",
];

/** Series Prometheus makes itself; no target exports them. */
const PROMETHEUS_OWN = new Set([
  "up",
  "ALERTS",
  "ALERTS_FOR_STATE",
  "scrape_duration_seconds",
  "scrape_samples_scraped",
]);

// ---- reading the rules and the dashboard ---------------------------------------------------------

/**
 * The `expr` values of a rules file. The file keeps to a plain YAML subset (one key per line, an
 * expression inline or as a `|` block), which is all this reads; promtool reads the real YAML.
 */
export function ruleExpressions(yaml: string): string[] {
  const lines = yaml.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(?:- )?expr:\s*(.*)$/.exec(lines[i]!);
    if (!m) continue;
    const indent = m[1]!.length;
    const value = m[2]!.trim();
    if (/^[|>][-+]?$/.test(value)) {
      const block: string[] = [];
      while (i + 1 < lines.length && (lines[i + 1]!.trim() === "" || lines[i + 1]!.search(/\S/) > indent))
        block.push(lines[++i]!.trim());
      out.push(block.join(" ").trim());
    } else out.push(value.replace(/^(['"])(.*)\1$/, "$2"));
  }
  return out;
}

/** Alert names of a rules file. */
function alertNames(yaml: string): string[] {
  return [...yaml.matchAll(/^\s*- alert:\s*(\S+)\s*$/gm)].map((m) => m[1]!);
}

/** Which alerts a promtool unit-test file expects firing (a non-empty exp_alerts) and resolved (`exp_alerts: []`). */
function testedAlerts(yaml: string): { fires: Set<string>; resolves: Set<string> } {
  const fires = new Set<string>();
  const resolves = new Set<string>();
  let current: string | null = null;
  const lines = yaml.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const name = /^\s*(?:- )?alertname:\s*(\S+)\s*$/.exec(line);
    if (name) current = name[1]!;
    else if (current && /^\s*exp_alerts:\s*\[\]\s*$/.test(line)) resolves.add(current);
    else if (current && /^\s*exp_alerts:\s*$/.test(line) && /^\s*- exp_labels:/.test(lines[i + 1] ?? ""))
      fires.add(current);
  }
  return { fires, resolves };
}

interface DashboardPanel {
  id?: number;
  type: string;
  title?: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: { expr?: string }[];
  panels?: DashboardPanel[];
}

interface Dashboard {
  title: string;
  uid: string;
  panels: DashboardPanel[];
  templating?: { list: { type: string; query?: string | { query?: string } }[] };
}

function allPanels(panels: DashboardPanel[]): DashboardPanel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every PromQL expression of a dashboard: its panels' targets and its query variables. */
function dashboardExpressions(d: Dashboard): string[] {
  const exprs = allPanels(d.panels).flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ""));
  for (const v of d.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : (v.query?.query ?? "");
    // label_values(metric, label) and query_result(expr) name metrics too.
    exprs.push(q.replace(/^label_values\((.*),\s*\w+\)$/, "$1").replace(/^query_result\((.*)\)$/, "$1"));
  }
  return exprs.filter((e) => e.trim() !== "");
}

const PROMQL_WORDS = new Set([
  "and",
  "or",
  "unless",
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "offset",
  "inf",
  "nan",
]);

/**
 * The metric names a PromQL expression selects: what is left once strings, label matchers, ranges,
 * grouping clauses, numbers and Grafana variables are taken out, minus functions (a name followed
 * by a parenthesis) and keywords.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\boffset\s+-?\w+/g, " ")
    .replace(/\$\{?\w+\}?/g, " ")
    .replace(/(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w:])/gi, " ");
  const names = new Set<string>();
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(after) || PROMQL_WORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

// ---- reading a scrape ------------------------------------------------------------------------------

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Scrape {
  /** Declared names (# TYPE), with the sample names a histogram or summary adds. */
  names: Set<string>;
  samples: Sample[];
}

function parseExposition(text: string): Scrape {
  const names = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type) {
      names.add(type[1]!);
      if (type[2] === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(type[1]! + s);
      if (type[2] === "summary") for (const s of ["_sum", "_count"]) names.add(type[1]! + s);
      continue;
    }
    if (line.startsWith("#") || line.trim() === "") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
    names.add(m[1]!);
  }
  return { names, samples };
}

async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}: ${res.status}`);
  return parseExposition(await res.text());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the tests -------------------------------------------------------------------------------------

describe("metric name extraction", () => {
  it("finds the metrics of an expression and nothing else", () => {
    assert.deepEqual(
      metricNames(
        'max by (agent_id, tier) (polity_agent_up{tier=~"PRESIDENT|MASTER"}) == 0 or absent(polity_agent_up{tier="X"})',
      ),
      ["polity_agent_up"],
    );
    assert.deepEqual(
      metricNames(
        "histogram_quantile(0.95, sum by (le, route) (rate(polity_gateway_request_duration_seconds_bucket[$__rate_interval])))",
      ),
      ["polity_gateway_request_duration_seconds_bucket"],
    );
    assert.deepEqual(metricNames("topk(10, max by (agent_id) (rate(a_total[5m] offset 1h))) / on (x) group_left b"), [
      "a_total",
      "b",
    ]);
    assert.deepEqual(metricNames("sum(x) or vector(0) > 1e3"), ["x"]);
  });

  it("reads every expression of the rules file", () => {
    const exprs = ruleExpressions(fs.readFileSync(RULES, "utf8"));
    assert.equal(exprs.length, alertNames(fs.readFileSync(RULES, "utf8")).length, "one expression per alert");
    assert.ok(exprs.every((e) => e.length > 0 && !e.includes("expr:")));
    assert.ok(exprs.some((e) => e.includes("absent(polity_agent_up")));
  });
});

describe("alert rules and dashboard", () => {
  let promtool: Promtool;
  const rulesText = fs.readFileSync(RULES, "utf8");
  const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, "utf8")) as Dashboard;

  before(async () => {
    promtool = await ensurePromtool();
  });

  function runPromtool(args: string[]): string {
    assert.ok(promtool.path !== null);
    const r = spawnSync(promtool.path, args, { cwd: PROMETHEUS_DIR, encoding: "utf8" });
    const output = `${r.stdout ?? ""}${r.stderr ?? ""}`;
    assert.equal(r.status, 0, `promtool ${args.join(" ")} exited ${r.status}:\n${output}`);
    return output;
  }

  it("has the DGM design's alerts, plus projection lag and dead letters", () => {
    const names = alertNames(rulesText);
    for (const a of REQUIRED_ALERTS) assert.ok(names.includes(a), `alerts.yml has no alert ${a}`);
    assert.equal(new Set(names).size, names.length, "alert names are unique");
  });

  it("passes promtool check rules and check config", (t) => {
    if (promtool.path === null) return t.skip(promtool.reason);
    const rules = runPromtool(["check", "rules", RULES]);
    assert.match(rules, new RegExp(`SUCCESS: ${alertNames(rulesText).length} rules found`));
    runPromtool(["check", "config", PROMETHEUS_CONFIG]);
  });

  it("passes promtool test rules, in which every alert fires and resolves", (t) => {
    const tested = testedAlerts(fs.readFileSync(RULE_TESTS, "utf8"));
    for (const a of alertNames(rulesText)) {
      assert.ok(tested.fires.has(a), `alerts.test.yml has no case where ${a} fires`);
      assert.ok(tested.resolves.has(a), `alerts.test.yml has no case where ${a} is resolved`);
    }
    if (promtool.path === null) return t.skip(promtool.reason);
    assert.match(runPromtool(["test", "rules", RULE_TESTS]), /SUCCESS/);
  });

  it("has a well-formed Grafana dashboard with the DGM overview's panels", () => {
    assert.equal(dashboard.uid, "polity-overview");
    const panels = allPanels(dashboard.panels);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
    for (const p of panels) {
      assert.ok(p.gridPos && p.gridPos.x + p.gridPos.w <= 24, `panel ${p.title} fits the 24-column grid`);
      if (p.type !== "row" && p.type !== "alertlist")
        assert.ok((p.targets ?? []).length > 0 && p.targets!.every((t) => t.expr), `panel ${p.title} has queries`);
    }
    const exprs = dashboardExpressions(dashboard).join("\n");
    for (const metric of [
      "polity_agent_up",
      "task_completions_total",
      "worker_agent_task_failures_total",
      "task_queue_length",
      "agent_cpu_usage_percent",
      "agent_memory_usage_percent",
      "goal_execution_time_hours",
      "constitutional_violations_total",
      "polity_projection_lag_events",
      "polity_processor_dead_letters_total",
      "polity_model_tokens_total",
    ])
      assert.ok(exprs.includes(metric), `the dashboard shows ${metric}`);
  });

  describe("on a running platform", () => {
    let d: TestDeployment;
    let pool: pg.Pool;
    let mongo: MongoClient;
    let db: Db;
    let schema: string;
    let projections: ProjectionHost[] = [];
    let gateway: Gateway;
    let gatewayUrl: string;
    let metricsServer: http.Server;
    let metricsUrl: string;
    let auth: Auth;

    before(async () => {
      // Heartbeats on: the heartbeat-age gauges need them (and the health monitor runs with them).
      d = await deployment(testTopology(), "metrics", "all", { heartbeats: true });
      pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 5 });
      mongo = new MongoClient(urls.mongoUrl);
      await mongo.connect();
      db = mongo.db(`metrics_${randomUUID().slice(0, 8)}`);
      schema = `analytics_metrics_${randomUUID().slice(0, 8)}`;
      await migrate(pool, schema);
      const state = new StateStore(db);
      await state.ensureIndexes();
      const common = { kafka: d.kafka, codec: d.codec, topicPrefix: d.prefix };
      projections = [
        new ProjectionHost({
          ...common,
          store: new AnalyticsStore(pool, { schema }),
          topics: [...PROJECTED_TOPICS.analytics],
        }),
        new ProjectionHost({ ...common, store: state, topics: [...PROJECTED_TOPICS.state] }),
      ];
      for (const p of projections) await p.start();
      auth = new Auth(SECRET);
      gateway = await createGateway({
        kafka: d.kafka,
        codec: d.codec,
        writer: d.writer,
        read: new ReadSide(db, pool, { analyticsSchema: schema }),
        auth,
        registryUrl: urls.schemaRegistryUrl,
        topicPrefix: d.prefix,
        projectionWaitMs: 20_000,
      });
      gatewayUrl = await gateway.listen(0);
      // What `npm start` serves on POLITY_METRICS_PORT (infra/cli.ts start), on a free port.
      metricsServer = await serveMetrics(0);
      metricsUrl = `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}/metrics`;
    });

    after(async () => {
      metricsServer?.close();
      await gateway?.stop().catch(() => undefined);
      for (const p of projections) await p.stop().catch(() => undefined);
      await d?.stop().catch(() => undefined);
      await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool?.end().catch(() => undefined);
      await db?.dropDatabase().catch(() => undefined);
      await mongo?.close().catch(() => undefined);
    });

    /** Both endpoints, merged: npm start serves one registry on both, a gateway run apart only its own. */
    async function scrapeBoth(): Promise<Scrape> {
      const [a, b] = await Promise.all([scrape(metricsUrl), scrape(`${gatewayUrl}/metrics`)]);
      return { names: new Set([...a.names, ...b.names]), samples: [...a.samples, ...b.samples] };
    }

    /** Scrapes until `done` holds, or fails with what it last saw. */
    async function scrapeUntil(what: string, done: (s: Scrape) => boolean, ms = 60_000): Promise<Scrape> {
      const deadline = Date.now() + ms;
      let last: Scrape = { names: new Set(), samples: [] };
      while (Date.now() < deadline) {
        last = await scrape(metricsUrl);
        if (done(last)) return last;
        await sleep(500);
      }
      const shown = last.samples.filter((s) => what.split(",").some((n) => s.name.startsWith(n.trim())));
      assert.fail(`${what}: not reached in ${ms} ms; last samples:\n${JSON.stringify(shown.slice(0, 30), null, 1)}`);
    }

    const of = (s: Scrape, name: string, labels: Record<string, string> = {}) =>
      s.samples.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));

    it("exports every metric the alert rules and the dashboard use", async () => {
      const used = new Map<string, string[]>();
      const note = (expr: string, where: string) => {
        for (const name of metricNames(expr)) used.set(name, [...(used.get(name) ?? []), where]);
      };
      for (const e of ruleExpressions(rulesText)) note(e, "alerts.yml");
      for (const e of dashboardExpressions(dashboard)) note(e, "polity-overview.json");
      assert.ok(used.size >= 20, `names found: ${[...used.keys()].join(", ")}`);
      const exported = await scrapeBoth();
      const missing = [...used]
        .filter(([name]) => !exported.names.has(name) && !PROMETHEUS_OWN.has(name))
        .map(([name, where]) => `${name} (used in ${[...new Set(where)].join(", ")})`);
      assert.deepEqual(missing, [], `metrics used but not exported:\n${missing.join("\n")}`);
    });

    it("reports the processors' liveness, lag, heartbeats and the hosting process's CPU and memory", async () => {
      const s = await scrapeUntil(
        "polity_agent_up, polity_agent_heartbeat_age_seconds, polity_processor_",
        (s) =>
          of(s, "polity_agent_up", { tier: "PRESIDENT" }).some((x) => x.value === 1) &&
          of(s, "polity_agent_up", { tier: "MASTER" }).some((x) => x.value === 1) &&
          of(s, "polity_agent_heartbeat_age_seconds", { tier: "WORKER" }).length > 0 &&
          of(s, "polity_processor_live_partitions").every((x) => x.value > 0),
      );
      for (const processor of ["president", "governor", "mayor", "worker", "policy", "health", "resources", "scaler"]) {
        assert.deepEqual(
          of(s, "polity_processor_up", { processor }).map((x) => x.value),
          [1],
          `polity_processor_up{processor="${processor}"}`,
        );
        const lag = of(s, "polity_processor_consumer_lag_events", { processor });
        assert.ok(lag.length > 0, `consumer lag of ${processor}`);
        assert.ok(
          lag.every((x) => x.labels.group === `${d.prefix}polity-${processor}` && x.value >= 0),
          JSON.stringify(lag[0]),
        );
      }
      const agents = of(s, "polity_agent_up");
      assert.ok(agents.length > 20, `agents reported: ${agents.length}`);
      const tiers = new Set(agents.map((a) => a.labels.tier));
      for (const tier of ["PRESIDENT", "GOVERNOR", "MAYOR", "WORKER", "MASTER", "SUB_MASTER"])
        assert.ok(tiers.has(tier), `an agent of tier ${tier} is reported`);
      const ages = of(s, "polity_agent_heartbeat_age_seconds");
      assert.ok(
        ages.every((a) => a.value >= 0 && a.value < 60),
        `heartbeats are recent: ${JSON.stringify(ages.slice(0, 3))}`,
      );
      const cpu = of(s, "agent_cpu_usage_percent");
      const memory = of(s, "agent_memory_usage_percent");
      assert.equal(cpu.length, agents.length, "a CPU figure per hosted agent");
      assert.equal(memory.length, agents.length, "a memory figure per hosted agent");
      assert.ok(cpu.every((x) => x.value >= 0 && Number.isFinite(x.value)));
      assert.ok(memory.every((x) => x.value > 0 && x.value < 100));
      assert.deepEqual(
        of(s, "constitutional_validations_total")
          .map((x) => x.labels.decision)
          .sort(),
        ["ALLOW", "DENY", "WARN"],
      );
    });

    it("shows a goal's tasks in the throughput counters and an open project's age", async () => {
      const token = await auth.mint({
        subject: "metrics-test",
        role: "operator",
        tenantId: "acme",
        agentId: null,
      });
      const post = async (route: string, body: unknown) => {
        const res = await fetch(`${gatewayUrl}/api/v1${route}?wait=true`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify(body),
        });
        const json = (await res.json()) as { aggregateId?: string };
        assert.equal(res.status, 202, JSON.stringify(json));
        return json.aggregateId!;
      };
      // A project behind a manual phase gate stays open after its first phase.
      const project = await post("/projects", {
        title: "metrics project",
        constraints: { phaseGate: "manual" },
        tasks: [
          task("charter", "backend", "api", [], { phase: "INITIATION" }),
          task("study", "frontend", "react", [], { phase: "FEASIBILITY" }),
        ],
      });
      const goal = await post("/goals", { title: "metrics goal", tasks: TEN_TASK_DAG });
      assert.equal((await d.watch.final(goal, 90_000)).type, "GoalCompleted");

      const s = await scrapeUntil(
        "task_completions_total, polity_processor_messages_written_total, goal_execution_time_hours",
        (s) =>
          of(s, "task_completions_total", { tier: "WORKER" }).some((x) => x.value >= 11) &&
          of(s, "goal_execution_time_hours", { goal_id: project }).length === 1 &&
          // The analytics model applies the goal's end a moment after the log has it.
          of(s, "goal_execution_time_hours", { goal_id: goal }).length === 0 &&
          (of(s, "polity_goals", { status: "COMPLETED" })[0]?.value ?? 0) >= 1,
      );
      const written = of(s, "polity_processor_messages_written_total", { processor: "worker", type: "TaskCompleted" });
      assert.ok((written[0]?.value ?? 0) >= 11, `TaskCompleted written by the worker tier: ${written[0]?.value}`);
      const age = of(s, "goal_execution_time_hours", { goal_id: project })[0]!;
      assert.equal(age.labels.tenant_id, "acme");
      assert.ok(age.value >= 0 && age.value < 1, `the project is minutes old: ${age.value} h`);
      assert.equal(of(s, "polity_goals", { status: "RUNNING" })[0]?.value, 1, "the project is the one open goal");
      assert.equal(of(s, "task_queue_length").length, 1);
    });
  });
});
