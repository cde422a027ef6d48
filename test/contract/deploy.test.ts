/**
 * The deployment files, checked by real tools (infra/deploy-tools.ts builds them once into
 * ~/.cache/polity/tools from the Go module proxy) and against what the code really runs:
 *
 * - Dockerfile: BuildKit's Dockerfile checks (`docker build --check`), and the image's shape
 *   (multi-stage, npm ci, a non-root user, a health check, the ports the processes listen on);
 * - docker-compose.yml: the compose specification's JSON schema and compose-go's loader, then the
 *   loaded project: a service per tier and read model, the gateway on 127.0.0.1, Kafka's log on
 *   its volume, every Polity service waiting for healthy servers;
 * - infra/helm/polity: `helm lint --strict`, `helm template | kubeconform -strict` against schemas
 *   made from the Kubernetes OpenAPI document (default values and a second set exercising the
 *   options), then the manifests: a Deployment per tier and read model, probes on /health and
 *   /ready, an autoscaling/v2 HPA on task_queue_length, the credentials from one Secret;
 * - the role commands the image, compose and the chart run exist in the CLI.
 *
 * No Go toolchain: everything here is skipped with the reason.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { ensureDeployTools } from "../../infra/deploy-tools.js";
import { repoRoot } from "../../lib/config.js";
import { ROLES } from "../../processors/hierarchy.js";
import { PROJECTED_TOPICS } from "../../projections/run.js";

const DOCKERFILE = path.join(repoRoot, "Dockerfile");
const COMPOSE = path.join(repoRoot, "docker-compose.yml");
const CHART = path.join(repoRoot, "infra", "helm", "polity");
const READ_MODELS = Object.keys(PROJECTED_TOPICS);
const SECRET = "0123456789abcdef0123456789abcdef-for-the-check";

const started = Date.now();
const ensured = await ensureDeployTools();
const skip = ensured.tools === null ? ensured.reason : false;
if (ensured.tools) process.stderr.write(`deploy tools ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

function exec(command: string, args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(command, args, { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, cwd: repoRoot });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
}

/** Runs a checker; fails the test with its output unless it exits 0. */
function check(command: string, args: string[], input?: string): string {
  const r = exec(command, args, input);
  assert.equal(r.code, 0, `${path.basename(command)} ${args.join(" ")} exited ${r.code}:\n${r.out}\n${r.err}`);
  return r.out;
}

// ---- shapes of what the tools hand back ------------------------------------------------------

interface ComposeService {
  command?: string[];
  image?: string;
  build?: { context: string };
  environment?: Record<string, string | null>;
  ports?: { target: number; published?: string; host_ip?: string }[];
  volumes?: { type: string; source?: string; target: string }[];
  depends_on?: Record<string, { condition: string }>;
  user?: string;
}
interface ComposeProject {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: {
    replicas?: number;
    template?: { spec: { containers: Container[]; securityContext?: { runAsNonRoot?: boolean } } };
    scaleTargetRef?: { kind: string; name: string };
    minReplicas?: number;
    maxReplicas?: number;
    metrics?: {
      type: string;
      external?: { metric: { name: string }; target: { type: string; averageValue?: string } };
      pods?: { metric: { name: string }; target: { type: string; averageValue?: string } };
    }[];
  };
}

describe("deployment files", { skip }, () => {
  const tools = ensured.tools!;

  describe("Dockerfile", () => {
    it("passes BuildKit's Dockerfile checks (docker build --check)", () => {
      check(tools.deployCheck, ["dockerfile", DOCKERFILE]);
    });

    it("builds one image in stages with npm ci, runs as a non-root user, exposes and checks its ports", () => {
      const text = fs.readFileSync(DOCKERFILE, "utf8");
      const instructions = text
        .replace(/\\\n/g, " ")
        .split("\n")
        .filter((l) => l.trim() && !l.trim().startsWith("#"));
      const of = (word: string) => instructions.filter((l) => l.trim().toUpperCase().startsWith(`${word} `));
      assert.match(of("ARG")[0] ?? "", /^ARG NODE_VERSION=24$/, "ARG NODE_VERSION=24 before the first FROM");
      const froms = of("FROM");
      assert.ok(froms.length >= 2, "a multi-stage build");
      for (const from of froms.filter((f) => !/FROM (deps|build)\b/.test(f)))
        assert.match(from, /^FROM node:\$\{NODE_VERSION\}-/, `${from}: the Node version comes from the ARG`);
      assert.ok(
        of("RUN").some((r) => /\bnpm ci\b/.test(r)),
        "installs with npm ci (the lockfile)",
      );
      const user = of("USER").at(-1);
      assert.ok(user && !/\broot\b|\b0\b/.test(user), `the final stage runs as a non-root user (${user})`);
      const exposed = of("EXPOSE").flatMap((l) => l.split(/\s+/).slice(1));
      for (const port of ["4000", "9464"]) assert.ok(exposed.includes(port), `EXPOSE ${port}`);
      assert.equal(of("HEALTHCHECK").length, 1, "a HEALTHCHECK");
      assert.match(of("HEALTHCHECK")[0]!, /\/health/);
      assert.match(of("ENTRYPOINT")[0] ?? "", /infra\/cli\.ts/, "the role is a command of the one CLI");
      for (const env of [
        "POLITY_INFRA=env",
        "POLITY_PROBE_PORT=9464",
        "POLITY_PROBE_HOST=0.0.0.0",
        "POLITY_GATEWAY_HOST=0.0.0.0",
      ])
        assert.ok(text.includes(env), `ENV ${env}`);
      // Every folder the final stage copies exists (a rename would otherwise only fail in docker build).
      for (const m of text.matchAll(/^COPY --from=build \/app\/(\S+) /gm))
        if (m[1] !== "dist") assert.ok(fs.existsSync(path.join(repoRoot, m[1]!)), `COPY of a missing ${m[1]}`);
    });

    it("has a .dockerignore that keeps local state out of the build context", () => {
      const ignored = fs.readFileSync(path.join(repoRoot, ".dockerignore"), "utf8").split("\n");
      for (const entry of ["**/node_modules", ".git", ".polity", "dist"]) assert.ok(ignored.includes(entry), entry);
    });
  });

  describe("docker-compose.yml", () => {
    it("refuses to load without POLITY_JWT_SECRET, naming it", () => {
      const r = exec(tools.deployCheck, ["compose", COMPOSE]);
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.out, /POLITY_JWT_SECRET/);
    });

    it("passes the compose specification's schema and compose-go's loader; its services fit the code", () => {
      const project = JSON.parse(
        check(tools.deployCheck, ["compose", COMPOSE, "--json", `POLITY_JWT_SECRET=${SECRET}`]),
      ) as ComposeProject;
      const services = project.services;
      for (const server of ["kafka", "schema-registry", "mongo", "postgres"]) assert.ok(services[server], server);

      // Kafka writes its log where its volume is mounted.
      const kafka = services.kafka!;
      const logDir = kafka.environment?.KAFKA_LOG_DIRS;
      assert.ok(logDir, "KAFKA_LOG_DIRS is set");
      assert.ok(
        kafka.volumes?.some((v) => v.type === "volume" && v.source === "kafka-data" && v.target === logDir),
        `the kafka-data volume is mounted at KAFKA_LOG_DIRS (${logDir})`,
      );

      const polity = Object.entries(services).filter(([, s]) => s.build !== undefined);
      const expected = [
        ...ROLES.map((role) => [`processors-${role}`, ["processors", "--tiers", role]] as const),
        ...READ_MODELS.map((model) => [`projections-${model}`, ["projections", "--models", model]] as const),
        ["gateway", ["gateway"]] as const,
        ["polity-init", ["schemas", "register"]] as const,
      ];
      for (const [name, command] of expected) {
        assert.ok(services[name], `service ${name}`);
        assert.deepEqual(services[name]!.command, command, `${name} runs \`polity ${command.join(" ")}\``);
        assert.ok(services[name]!.build, `${name} is built from the Dockerfile`);
      }
      assert.equal(polity.length, expected.length, "no Polity service beyond the expected ones");
      assert.equal(new Set(polity.map(([, s]) => s.image)).size, 1, "one image for every role");

      for (const [name, service] of polity) {
        const env = service.environment ?? {};
        assert.equal(env.KAFKA_BROKERS, "kafka:9092", `${name}: KAFKA_BROKERS`);
        assert.equal(env.SCHEMA_REGISTRY_URL, "http://schema-registry:8081", `${name}: SCHEMA_REGISTRY_URL`);
        assert.match(env.MONGO_URL ?? "", /^mongodb:\/\/mongo:27017\//, `${name}: MONGO_URL`);
        assert.match(env.DATABASE_URL ?? "", /^postgres:\/\/polity@postgres:5432\//, `${name}: DATABASE_URL`);
        for (const server of ["kafka", "schema-registry", "mongo", "postgres"])
          assert.equal(service.depends_on?.[server]?.condition, "service_healthy", `${name} waits for ${server}`);
        if (name !== "polity-init")
          assert.equal(service.depends_on?.["polity-init"]?.condition, "service_completed_successfully", name);
      }
      assert.equal(services.gateway!.environment?.POLITY_JWT_SECRET, SECRET);

      // Nothing is published beyond the loopback interface.
      for (const [name, service] of Object.entries(services))
        for (const port of service.ports ?? [])
          assert.equal(port.host_ip, "127.0.0.1", `${name} publishes ${port.target} on 127.0.0.1 only`);
      assert.ok(services.gateway!.ports?.some((p) => p.target === 4000 && p.published === "4000"));
    });
  });

  describe("Helm chart infra/helm/polity", () => {
    const helm = (args: string[]) => check(tools.helm, args);
    const kube = ["--kube-version", tools.kubernetesVersion];
    const kubeconform = (manifests: string) =>
      check(
        tools.kubeconform,
        [
          "-strict",
          "-summary",
          "-kubernetes-version",
          tools.kubernetesVersion,
          "-schema-location",
          tools.schemaLocation,
        ],
        manifests,
      );
    const OPTIONS = [
      "--set",
      "existingSecret=polity-credentials",
      "--set",
      "processors.defaults.autoscaling.metric.type=Pods",
      "--set",
      "processors.defaults.autoscaling.targetCPUUtilizationPercentage=70",
      "--set",
      "processors.tiers.scaler.enabled=false",
      "--set",
      "extraEnv.POLITY_CLIENT_ID=polity-k8s",
      "--set-json",
      'topology={"topologies":{"dgm":{"domains":{"backend":{"workers":{"api":{"count":1,"capacity":2}}}}}}}',
      "--set",
      "gateway.ui=false",
      "--set",
      "image.tag=1.2.3",
    ];
    const render = (args: string[]) =>
      parseAllDocuments(helm(["template", "polity", CHART, "--namespace", "polity", ...kube, ...args]))
        .map((d) => d.toJSON() as Manifest | null)
        .filter((m): m is Manifest => m !== null);

    it("passes helm lint --strict, with the default values and with the options set", () => {
      helm(["lint", "--strict", CHART, ...kube]);
      helm(["lint", "--strict", CHART, ...kube, ...OPTIONS]);
    });

    it("renders manifests kubeconform -strict accepts against the Kubernetes API's schemas", () => {
      const defaults = helm(["template", "polity", CHART, ...kube]);
      assert.match(kubeconform(defaults), /Invalid: 0, Errors: 0, Skipped: 0/);
      const options = helm(["template", "polity", CHART, ...kube, ...OPTIONS]);
      assert.match(kubeconform(options), /Invalid: 0, Errors: 0, Skipped: 0/);
    });

    it("runs a Deployment per tier and read model and the gateway, each probed on /health and /ready", () => {
      const manifests = render([]);
      const deployments = new Map(
        manifests.filter((m) => m.kind === "Deployment").map((m) => [m.metadata.name, m] as const),
      );
      const services = new Set(manifests.filter((m) => m.kind === "Service").map((m) => m.metadata.name));
      const expected = [
        ...ROLES.map((role) => [`polity-processors-${role}`, ["processors", "--tiers", role]] as const),
        ...READ_MODELS.map((model) => [`polity-read-model-${model}`, ["projections", "--models", model]] as const),
        ["polity-gateway", ["gateway"]] as const,
      ];
      assert.deepEqual([...deployments.keys()].sort(), expected.map(([name]) => name).sort());
      for (const [name, args] of expected) {
        const pod = deployments.get(name)!.spec!.template!.spec;
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${name}: runAsNonRoot`);
        const [container] = pod.containers;
        assert.deepEqual(container!.args, args, `${name} runs \`polity ${args.join(" ")}\``);
        const ports = new Map((container!.ports ?? []).map((p) => [p.name, p.containerPort]));
        const expectedPort = name === "polity-gateway" ? 4000 : 9464;
        for (const [probe, route] of [
          ["livenessProbe", "/health"],
          ["readinessProbe", "/ready"],
          ["startupProbe", "/health"],
        ] as const) {
          const get = container![probe]?.httpGet;
          assert.equal(get?.path, route, `${name}: ${probe} on ${route}`);
          assert.equal(ports.get(String(get?.port)), expectedPort, `${name}: ${probe} on a declared port`);
        }
        assert.ok(services.has(name), `${name} has a Service`);
        assert.equal(container!.securityContext?.readOnlyRootFilesystem, true);
        const from = container!.envFrom ?? [];
        assert.ok(
          from.some((e) => e.secretRef?.name === "polity-credentials"),
          `${name}: credentials from the Secret`,
        );
        assert.ok(
          from.some((e) => e.configMapRef?.name === "polity-config"),
          `${name}: settings from the ConfigMap`,
        );
      }
      const secret = manifests.find((m) => m.kind === "Secret");
      assert.equal(secret?.metadata.name, "polity-credentials");
      assert.ok(
        manifests.some(
          (m) => m.kind === "Job" && m.spec?.template?.spec.containers[0]?.args?.join(" ") === "schemas register",
        ),
      );
    });

    it("scales the worker tier with an autoscaling/v2 HPA on task_queue_length", () => {
      const assertHpa = (manifests: Manifest[], type: "External" | "Pods") => {
        const hpa = manifests.find(
          (m) => m.kind === "HorizontalPodAutoscaler" && m.metadata.name === "polity-processors-worker",
        );
        assert.ok(hpa, "an HPA for the worker tier");
        assert.equal(hpa.apiVersion, "autoscaling/v2");
        assert.deepEqual(hpa.spec!.scaleTargetRef, {
          apiVersion: "apps/v1",
          kind: "Deployment",
          name: "polity-processors-worker",
        });
        const metric = hpa.spec!.metrics!.find((m) => m.type === type);
        const spec = type === "External" ? metric?.external : metric?.pods;
        assert.equal(spec?.metric.name, "task_queue_length");
        assert.equal(spec?.target.type, "AverageValue");
        assert.ok(hpa.spec!.maxReplicas! > hpa.spec!.minReplicas!);
        // An autoscaled Deployment leaves its replica count to the HPA.
        const deployment = manifests.find(
          (m) => m.kind === "Deployment" && m.metadata.name === "polity-processors-worker",
        );
        assert.equal(deployment?.spec?.replicas, undefined);
      };
      assertHpa(render([]), "External");
      const options = render(OPTIONS);
      assertHpa(options, "Pods");
      assert.equal(
        options.find((m) => m.kind === "Secret"),
        undefined,
        "existingSecret: no Secret is rendered",
      );
      assert.ok(
        options
          .filter((m) => m.kind === "Deployment")
          .every((m) =>
            m.spec!.template!.spec.containers[0]!.envFrom!.some((e) => e.secretRef?.name === "polity-credentials"),
          ),
      );
      assert.ok(!options.some((m) => m.metadata.name === "polity-processors-scaler"), "a tier can be turned off");
    });
  });

  describe("the role commands exist in the CLI", () => {
    for (const command of [["processors"], ["projections"], ["gateway"], ["schemas", "register"]])
      it(`polity ${command.join(" ")} --help`, () => {
        const out = check(process.execPath, [
          "--import",
          "tsx",
          path.join(repoRoot, "infra", "cli.ts"),
          ...command,
          "--help",
        ]);
        assert.match(out, new RegExp(`polity ${command.join(" ")}`));
      });
  });
});
