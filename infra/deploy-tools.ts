/**
 * The tools that check the deployment files (Dockerfile, docker-compose.yml, infra/helm/polity),
 * built once from the Go module proxy into <POLITY_CACHE_DIR>/tools (~/.cache/polity/tools), each
 * at a pinned version, like the native stack's servers (infra/native): idempotent, progress on
 * stderr, an install is renamed into place only once finished.
 *
 * - helm (helm.sh/helm/v3): `helm lint` and `helm template`;
 * - kubeconform (github.com/yannh/kubeconform): validates the rendered manifests. It downloads its
 *   schemas from GitHub by default, which these machines cannot reach, so the schemas are made here
 *   from the Kubernetes OpenAPI document in the k8s.io/kubernetes module (api/openapi-spec/
 *   swagger.json), in the layout and with the conversions of the schemas kubeconform publishes:
 *   one standalone file per kind and version, strict (no property the API does not know);
 * - deploy-check (infra/deploy-check, a Go program pinned by its go.mod and go.sum): BuildKit's
 *   Dockerfile checks (`docker build --check`) and the compose specification's schema with
 *   compose-go's loader (`docker compose config`).
 *
 * No Go toolchain: ensureDeployTools answers with the reason, so the tests can skip saying so.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { loadConfig, repoRoot } from "../lib/config.js";
import { installAtomically, run, say, StackError } from "./native/process.js";
import { DownloadProgress, watchDirectoryGrowth } from "./native/progress.js";

export const DEPLOY_TOOL_VERSIONS = {
  helm: "3.22.1",
  kubeconform: "0.8.0",
  /** The Kubernetes release whose API the chart is validated against. */
  kubernetes: "1.36.3",
} as const;

export const DEPLOY_CHECK_SOURCE = path.join(repoRoot, "infra", "deploy-check");

export interface DeployTools {
  helm: string;
  kubeconform: string;
  deployCheck: string;
  /** kubeconform's -schema-location for the generated schemas (a template over kind and version). */
  schemaLocation: string;
  kubernetesVersion: string;
}

export type DeployToolsResult = { tools: DeployTools } | { tools: null; reason: string };

function goOnPath(): boolean {
  return (process.env.PATH ?? "")
    .split(path.delimiter)
    .some((dir) => dir !== "" && fs.existsSync(path.join(dir, "go")));
}

/** Go prints no download progress: report the growth of its module cache while `work` runs. */
async function withGoProgress<T>(label: string, work: () => Promise<T>): Promise<T> {
  const modCache = (await run("go", ["env", "GOMODCACHE"], { what: "go env GOMODCACHE" })).trim();
  const stop = watchDirectoryGrowth(
    path.join(modCache, "cache", "download"),
    new DownloadProgress({ label: `[stack] ${label}: Go modules downloaded` }),
  );
  try {
    return await work();
  } finally {
    stop();
  }
}

// No VCS stamping: deploy-check is built inside this repository's work tree.
const GO_BUILD_ENV = { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-trimpath -buildvcs=false" };

async function goInstall(name: string, pkg: string, version: string, dir: string): Promise<string> {
  const binary = path.join(dir, name);
  if (fs.existsSync(binary)) return binary;
  await installAtomically(dir, async (tmp) => {
    say(`${name}: building ${pkg}@v${version} with Go (first time only)`);
    const started = Date.now();
    await withGoProgress(name, () =>
      run("go", ["install", "-ldflags=-s -w", `${pkg}@v${version}`], {
        what: `building ${name} v${version}`,
        cwd: tmp,
        env: { ...GO_BUILD_ENV, GOBIN: tmp },
      }),
    );
    say(`${name}: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });
  return binary;
}

/** The build of infra/deploy-check is keyed by its sources, so an edit there builds it again. */
async function deployCheck(toolsDir: string): Promise<string> {
  const hash = createHash("sha256");
  for (const file of ["go.mod", "go.sum", "main.go"])
    hash.update(file).update(fs.readFileSync(path.join(DEPLOY_CHECK_SOURCE, file)));
  const dir = path.join(toolsDir, `deploy-check-${hash.digest("hex").slice(0, 12)}`);
  const binary = path.join(dir, "deploy-check");
  if (fs.existsSync(binary)) return binary;
  await installAtomically(dir, async (tmp) => {
    say(
      "deploy-check: building infra/deploy-check (BuildKit's Dockerfile checks, compose-go) with Go (first time only)",
    );
    const started = Date.now();
    await withGoProgress("deploy-check", () =>
      run("go", ["build", "-ldflags=-s -w", "-o", path.join(tmp, "deploy-check"), "."], {
        what: "building infra/deploy-check",
        cwd: DEPLOY_CHECK_SOURCE,
        env: GO_BUILD_ENV,
      }),
    );
    say(`deploy-check: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });
  return binary;
}

// ---- Kubernetes JSON schemas from the OpenAPI document -----------------------------------------

type Schema = Record<string, unknown>;
interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

const REF_PREFIX = "#/definitions/";

/** The definitions a schema refers to, transitively. */
function reachable(name: string, definitions: Record<string, Schema>, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  seen.add(name);
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === "object") {
      for (const [key, value] of Object.entries(node)) {
        if (key === "$ref" && typeof value === "string" && value.startsWith(REF_PREFIX))
          reachable(value.slice(REF_PREFIX.length), definitions, seen);
        else visit(value);
      }
    }
  };
  visit(definitions[name]);
  return seen;
}

/**
 * The conversions kubeconform's published schemas make (openapi2jsonschema --kubernetes --strict):
 * int-or-string and quantities accept a number or a string, as the API server does, and every
 * object that lists its properties refuses others (the "-strict" variant).
 */
function convert(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convert);
  if (!node || typeof node !== "object") return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node as Schema)) out[key] = convert(value);
  if (out.format === "int-or-string") {
    delete out.type;
    delete out.format;
    out.oneOf = [{ type: "string" }, { type: "integer" }];
  }
  if (out.properties && typeof out.properties === "object" && out.additionalProperties === undefined)
    out.additionalProperties = false;
  return out;
}

const QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/** kubeconform's file name of a kind: `deployment-apps-v1.json`, `service-v1.json`. */
function schemaFileName({ group, version, kind }: GroupVersionKind): string {
  const groupPart = group === "" ? "" : `-${group.split(".")[0]!.toLowerCase()}`;
  return `${kind.toLowerCase()}${groupPart}-${version.toLowerCase()}.json`;
}

function writeSchemas(swaggerFile: string, outDir: string): number {
  const swagger = JSON.parse(fs.readFileSync(swaggerFile, "utf8")) as { definitions: Record<string, Schema> };
  const definitions = Object.fromEntries(
    Object.entries(swagger.definitions).map(([name, schema]) => [
      name,
      name === QUANTITY
        ? { description: schema.description, oneOf: [{ type: "string" }, { type: "number" }] }
        : (convert(schema) as Schema),
    ]),
  );
  fs.mkdirSync(outDir, { recursive: true });
  let written = 0;
  for (const [name, schema] of Object.entries(swagger.definitions)) {
    const gvks = schema["x-kubernetes-group-version-kind"] as GroupVersionKind[] | undefined;
    if (!gvks) continue;
    const used = [...reachable(name, definitions)].filter((n) => n !== name).sort();
    for (const gvk of gvks) {
      const standalone = {
        $schema: "http://json-schema.org/schema#",
        ...definitions[name],
        definitions: Object.fromEntries(used.map((n) => [n, definitions[n]])),
      };
      fs.writeFileSync(path.join(outDir, schemaFileName(gvk)), JSON.stringify(standalone));
      written++;
    }
  }
  return written;
}

async function kubernetesSchemas(toolsDir: string, version: string): Promise<string> {
  const dir = path.join(toolsDir, `kubernetes-json-schema-v${version}`);
  const location = path.join(
    dir,
    "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}",
    "{{ .ResourceKind }}{{ .KindSuffix }}.json",
  );
  if (fs.existsSync(dir)) return location;
  await installAtomically(dir, async (tmp) => {
    say(`kubernetes schemas: downloading k8s.io/kubernetes@v${version} for its OpenAPI document (first time only)`);
    const info = await withGoProgress("kubernetes schemas", async () =>
      JSON.parse(
        await run("go", ["mod", "download", "-json", `k8s.io/kubernetes@v${version}`], {
          what: `downloading k8s.io/kubernetes v${version}`,
          cwd: tmp,
        }),
      ),
    );
    const swagger = path.join((info as { Dir: string }).Dir, "api", "openapi-spec", "swagger.json");
    if (!fs.existsSync(swagger)) throw new StackError(`k8s.io/kubernetes v${version} has no ${swagger}`);
    const written = writeSchemas(swagger, path.join(tmp, `v${version}-standalone-strict`));
    say(`kubernetes schemas: ${written} kinds written from api/openapi-spec/swagger.json`);
  });
  return location;
}

/** Builds what is missing (pinned versions) and answers where each tool is; null with the reason without Go. */
export async function ensureDeployTools(cacheDir = loadConfig().native.cacheDir): Promise<DeployToolsResult> {
  if (!goOnPath())
    return {
      tools: null,
      reason:
        "no Go toolchain on the PATH: helm, kubeconform and deploy-check are built from the Go module proxy (install Go 1.26+)",
    };
  const toolsDir = path.join(cacheDir, "tools");
  const v = DEPLOY_TOOL_VERSIONS;
  const helm = await goInstall("helm", "helm.sh/helm/v3/cmd/helm", v.helm, path.join(toolsDir, `helm-v${v.helm}`));
  const kubeconform = await goInstall(
    "kubeconform",
    "github.com/yannh/kubeconform/cmd/kubeconform",
    v.kubeconform,
    path.join(toolsDir, `kubeconform-v${v.kubeconform}`),
  );
  const schemaLocation = await kubernetesSchemas(toolsDir, v.kubernetes);
  return {
    tools: {
      helm,
      kubeconform,
      deployCheck: await deployCheck(toolsDir),
      schemaLocation,
      kubernetesVersion: v.kubernetes,
    },
  };
}
