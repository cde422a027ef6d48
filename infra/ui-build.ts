/**
 * Builds the web dashboard (ui/) into dist/ui/, which the gateway serves at /ui: the React app and
 * a locally bundled GraphiQL (esbuild, every asset in the bundle, nothing from a CDN), and the
 * Swagger UI files for the OpenAPI page. `npm start` and `npm test` call `ensureUi`, which builds
 * only when the sources (or the packages bundled) changed since the last build; the key of the
 * build is kept in dist/ui/build.json. `npm run ui:build [-- --force] [--check]` runs it by hand
 * (`--check` also typechecks ui/ with its own tsconfig, as `npm test` does).
 *
 * The output is written to a fresh folder and swapped in whole, so a gateway serving the old build
 * never sees half of the new one.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { repoRoot } from "../lib/config.js";

export const UI_SOURCE = path.join(repoRoot, "ui");
/** Where the gateway serves the dashboard from (git-ignored, like every dist/). */
export const UI_DIST = path.join(repoRoot, "dist", "ui");

const require = createRequire(import.meta.url);
/** Packages whose code ends up in the bundle: a new version makes the build stale. */
const BUNDLED = ["react", "react-dom", "graphiql", "@graphiql/react", "@graphiql/toolkit", "graphql", "graphql-ws"];
const SWAGGER_FILES = ["swagger-ui-bundle.js", "swagger-ui.css"];

export interface UiBuild {
  /** False when the build on disk was fresh and nothing was done. */
  built: boolean;
  dir: string;
  ms: number;
  /** Bytes of each file written, by name relative to dist/ui. */
  files: Record<string, number>;
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`), "utf8")) as { version: string })
      .version;
  } catch {
    // A package without an exported package.json: find its folder from its entry point.
    let dir = path.dirname(require.resolve(name));
    while (!fs.existsSync(path.join(dir, "package.json")) && dir !== path.dirname(dir)) dir = path.dirname(dir);
    return (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string }).version;
  }
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else out.push(full);
    }
  };
  walk(dir);
  return out.sort();
}

/** What the build depends on: every file under ui/, this script, and the bundled packages' versions. */
export function buildKey(): string {
  const hash = createHash("sha256");
  for (const file of [...sourceFiles(UI_SOURCE), fileURLToPath(import.meta.url)]) {
    hash.update(path.relative(repoRoot, file)).update("\0").update(fs.readFileSync(file)).update("\0");
  }
  for (const name of [...BUNDLED, "esbuild", "swagger-ui-dist"]) hash.update(`${name}@${packageVersion(name)}\0`);
  return hash.digest("hex").slice(0, 16);
}

export function builtKey(dir = UI_DIST): string | null {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, "build.json"), "utf8")) as { key: string }).key;
  } catch {
    return null;
  }
}

export function uiIsStale(): boolean {
  return builtKey() !== buildKey();
}

const html = (title: string, css: string[], js: string[], body: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
${css.map((href) => `<link rel="stylesheet" href="${href}">`).join("\n")}
</head>
<body>
${body}
${js.map((src) => `<script type="module" src="${src}"></script>`).join("\n")}
</body>
</html>
`;

/** Builds dist/ui now (whatever its state). */
export async function buildUi(log: (line: string) => void = () => undefined): Promise<UiBuild> {
  const started = Date.now();
  const key = buildKey();
  const { build } = await import("esbuild");
  const parent = path.dirname(UI_DIST);
  fs.mkdirSync(parent, { recursive: true });
  const work = fs.mkdtempSync(path.join(parent, ".ui-build-"));
  fs.chmodSync(work, 0o755);
  try {
    const result = await build({
      entryPoints: {
        app: path.join(UI_SOURCE, "src", "main.tsx"),
        graphiql: path.join(UI_SOURCE, "graphiql", "main.tsx"),
      },
      outdir: path.join(work, "assets"),
      entryNames: "[name]-[hash]",
      assetNames: "[name]-[hash]",
      bundle: true,
      splitting: false,
      format: "esm",
      platform: "browser",
      target: ["chrome110", "firefox110", "safari16"],
      minify: true,
      sourcemap: false,
      metafile: true,
      jsx: "automatic",
      tsconfig: path.join(UI_SOURCE, "tsconfig.json"),
      define: { "process.env.NODE_ENV": '"production"' },
      // Fonts and images referenced by a stylesheet become files next to it (never a URL elsewhere).
      loader: { ".woff": "file", ".woff2": "file", ".ttf": "file", ".svg": "file", ".png": "file" },
      legalComments: "none",
      logLevel: "silent",
    });
    for (const w of result.warnings) log(`ui build warning: ${w.text}`);
    const outputs = Object.keys(result.metafile.outputs).map((f) => path.relative(work, path.resolve(f)));
    const find = (name: string, ext: string) =>
      outputs.filter((f) => f.startsWith(`assets/${name}-`) && f.endsWith(ext));
    const url = (files: string[]) => files.map((f) => `/ui/${f}`);
    fs.writeFileSync(
      path.join(work, "index.html"),
      html("Polity", url(find("app", ".css")), url(find("app", ".js")), '<div id="root"></div>'),
    );
    fs.writeFileSync(
      path.join(work, "graphiql.html"),
      html(
        "Polity GraphiQL",
        url(find("graphiql", ".css")),
        url(find("graphiql", ".js")),
        '<div id="graphiql" style="height:100vh"></div>',
      ),
    );
    // The OpenAPI page: Swagger UI's own prebuilt bundle, served from here like everything else.
    const docs = path.join(work, "api-docs");
    fs.mkdirSync(docs);
    const swagger = path.dirname(require.resolve("swagger-ui-dist/package.json"));
    for (const f of SWAGGER_FILES) fs.copyFileSync(path.join(swagger, f), path.join(docs, f));
    for (const f of fs.readdirSync(path.join(UI_SOURCE, "api-docs")))
      fs.copyFileSync(path.join(UI_SOURCE, "api-docs", f), path.join(docs, f));

    const files: Record<string, number> = {};
    for (const f of sourceFiles(work)) files[path.relative(work, f)] = fs.statSync(f).size;
    fs.writeFileSync(
      path.join(work, "build.json"),
      JSON.stringify({ key, builtAt: new Date().toISOString(), files }, null, 2) + "\n",
    );
    // Swap the new build in whole.
    const old = `${UI_DIST}.old-${process.pid}`;
    if (fs.existsSync(UI_DIST)) fs.renameSync(UI_DIST, old);
    fs.renameSync(work, UI_DIST);
    fs.rmSync(old, { recursive: true, force: true });
    const ms = Date.now() - started;
    const kb = (n: number) => `${Math.round(n / 1024)} KiB`;
    const main = Object.entries(files).filter(([f]) => f.startsWith("assets/"));
    log(
      `dashboard built into dist/ui in ${ms} ms (${main.map(([f, n]) => `${path.basename(f)} ${kb(n)}`).join(", ")})`,
    );
    return { built: true, dir: UI_DIST, ms, files };
  } catch (e) {
    fs.rmSync(work, { recursive: true, force: true });
    const errors = (e as { errors?: { text: string; location?: { file: string; line: number } }[] }).errors;
    if (errors?.length)
      throw new Error(
        `the dashboard (ui/) does not build:\n${errors
          .map((x) => `  ${x.location ? `${x.location.file}:${x.location.line}: ` : ""}${x.text}`)
          .join("\n")}`,
        { cause: e },
      );
    throw e;
  }
}

/** Builds the dashboard when the build on disk is missing or stale; otherwise does nothing. */
export async function ensureUi(log: (line: string) => void = () => undefined): Promise<UiBuild> {
  if (!uiIsStale()) return { built: false, dir: UI_DIST, ms: 0, files: {} };
  log("the dashboard (ui/) changed since its last build: building it");
  return buildUi(log);
}

/** Typechecks ui/ with its own tsconfig (DOM, JSX); resolves with tsc's exit code. */
export function typecheckUi(): Promise<number> {
  const tsc = path.join(repoRoot, "node_modules", ".bin", "tsc");
  return new Promise((resolve) => {
    const child = spawn(tsc, ["--noEmit", "-p", path.join(UI_SOURCE, "tsconfig.json")], { stdio: "inherit" });
    child.on("error", () => resolve(1));
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

/** `npm run ui:build [-- --force] [--check]`. */
export async function runUiBuild(args: string[]): Promise<number> {
  const log = (line: string) => process.stderr.write(`[ui] ${line}\n`);
  if (args.includes("--check")) {
    log("typecheck (tsc -p ui)");
    const rc = await typecheckUi();
    if (rc !== 0) return rc;
  }
  const r = args.includes("--force") ? await buildUi(log) : await ensureUi(log);
  if (!r.built) log("dist/ui is up to date");
  return 0;
}
