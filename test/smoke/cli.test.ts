// The `polity` CLI as a user meets it (node infra/bootstrap.mjs ...): help, version, per-command
// usage, unknown flags and bad values, all refused before any infrastructure is resolved, so no stack
// is needed. The download progress reporter is checked on its own, with a clock of its own.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { CliExit, defineCommand, parseCommandArgs } from "../../lib/cli-args.js";
import { repoRoot } from "../../lib/config.js";
import { aptProgress, DownloadProgress, mavenProgress } from "../../infra/native/progress.js";

function polity(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, "infra", "bootstrap.mjs"), ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    timeout: 60_000,
    // A stack elsewhere must not be reached: these commands all end before resolving one.
    env: { ...process.env, POLITY_INFRA: "env", KAFKA_BROKERS: "127.0.0.1:1" },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("polity --help and polity help list the commands and exit 0", () => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const r = polity(...args);
    assert.equal(r.code, 0, r.stderr);
    for (const command of ["start", "stack up", "token", "audit goal", "bench codec", "rebuild", "demo"])
      assert.match(r.stdout, new RegExp(`^  ${command} `, "m"), `${args.join(" ")} lists ${command}`);
  }
});

test("polity --version prints package.json's version", () => {
  const r = polity("--version");
  assert.equal(r.code, 0, r.stderr);
  const { version } = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
  assert.equal(r.stdout.trim(), version);
});

test("a command's --help prints its options with their defaults and exits 0", () => {
  const r = polity("token", "--help");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^usage: polity token \[options\]/);
  assert.match(r.stdout, /-r, --role <role> .*\(default operator\)/);
  assert.match(r.stdout, /--ttl <seconds> .*\(default 3600\)/);
  const logs = polity("stack", "logs", "-h");
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /-n, --lines <N>/);
  // A command needing the infrastructure answers --help without resolving it.
  const audit = polity("audit", "goal", "--help");
  assert.equal(audit.code, 0, audit.stderr);
  assert.match(audit.stdout, /usage: polity audit goal \[options\] <goalId>/);
  assert.doesNotMatch(audit.stderr, /\[stack\]/);
});

test("an unknown flag exits 2 and lists the known ones", () => {
  const r = polity("token", "--rol", "admin");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option --rol/);
  assert.match(r.stderr, /known options: --role \(-r\), --tenant \(-t\), --sub, --agent, --ttl, --help \(-h\)/);
  const rebuild = polity("rebuild", "--model", "state");
  assert.equal(rebuild.code, 2);
  assert.match(rebuild.stderr, /unknown option --model.*\n.*--models, --swap, --keep/);
  assert.doesNotMatch(rebuild.stderr, /\[stack\]/, "refused before the stack is resolved");
  const bench = polity("bench", "--quik");
  assert.equal(bench.code, 2);
  assert.match(bench.stderr, /unknown option --quik/);
});

test("the token command refuses a bad role, naming the roles", () => {
  const r = polity("token", "--role", "emperor");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--role emperor is not a role; give one of platform-admin, admin, operator, viewer, agent/);
  assert.equal(r.stdout, "");
});

test("unknown commands and subcommands, and a missing value, exit 2 with what to do", () => {
  const unknown = polity("launch");
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command launch; the commands are start, /);
  const sub = polity("stack", "restart");
  assert.equal(sub.code, 2);
  assert.match(sub.stderr, /unknown subcommand restart; one of:\n {2}stack up/);
  const missing = polity("stack", "logs", "-n");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /argument missing/);
  const state = polity("audit", "state");
  assert.equal(state.code, 2);
  assert.match(state.stderr, /needs --at <ISO-8601 time>/);
});

test("parseCommandArgs: defaults, booleans, repeatable options, positionals", () => {
  const spec = defineCommand({
    name: "example",
    summary: "an example",
    args: "[file...]",
    positionals: { max: 2 },
    options: {
      level: { type: "string", short: "l", default: "3", help: "a level" },
      pattern: { type: "string", multiple: true, help: "patterns" },
      dry: { type: "boolean", help: "dry run" },
    },
  });
  const parsed = parseCommandArgs(spec, ["-l", "5", "--pattern=a", "--pattern", "b", "x.ts"]);
  assert.deepEqual(parsed.values, { level: "5", pattern: ["a", "b"], dry: false });
  assert.deepEqual(parsed.positionals, ["x.ts"]);
  assert.deepEqual(parseCommandArgs(spec, []).values, { level: "3", pattern: [], dry: false });
  assert.throws(
    () => parseCommandArgs(spec, ["a", "b", "c"]),
    (e: unknown) => e instanceof CliExit && e.code === 2 && /at most 2/.test(e.message),
  );
  assert.throws(
    () => parseCommandArgs(spec, ["--dry=yes"]),
    (e: unknown) => e instanceof CliExit && e.code === 2,
  );
  assert.throws(
    () => parseCommandArgs(spec, ["--help"]),
    (e: unknown) => e instanceof CliExit && e.code === 0 && /usage: polity example/.test(e.message),
  );
});

test("download progress: bytes and percent, one line per update, every 10% or 2 s, no control characters off a terminal", () => {
  let now = 0;
  const lines: string[] = [];
  const progress = new DownloadProgress({
    label: "registry",
    write: (t) => lines.push(t),
    isTTY: false,
    now: () => now,
  });
  const maven = mavenProgress(progress);
  // Maven's console transfer listener: carriage-return separated updates of one 160 MB transfer.
  let out = "Downloading from central: https://repo/x.tar.gz\n";
  for (let mb = 1; mb <= 160; mb++) out += `Progress (1): ${mb}/160 MB\r`;
  maven.onOutput(out.slice(0, 500));
  now += 500;
  maven.onOutput(out.slice(500));
  maven.onOutput(" \rDownloaded from central: https://repo/x.tar.gz (160 MB at 9.8 MB/s)\n");
  progress.finish(maven.done());
  assert.ok(
    lines.every((l) => l.endsWith("\n") && !l.slice(0, -1).includes("\r") && !l.includes("\u001b")),
    lines.join(""),
  );
  assert.ok(lines.length >= 10 && lines.length <= 13, `one line per 10%: ${lines.join("")}`);
  assert.match(lines[0]!, /^registry: 1\.0 MB of 160\.0 MB \(0%\)\n$/);
  assert.ok(
    lines.some((l) => /: 80\.0 MB of 160\.0 MB \(50%\)/.test(l)),
    lines.join(""),
  );
  assert.match(lines.at(-1)!, /^registry: 160\.0 MB downloaded in \d+ s \(100%\)\n$/);

  // Without a 10% step, a line every 2 s at most.
  const apt: string[] = [];
  now = 0;
  const p2 = new DownloadProgress({ label: "apt", write: (t) => apt.push(t), isTTY: false, now: () => now });
  const a = aptProgress(p2);
  a.onOutput("Need to get 100 MB of archives.\n");
  for (let i = 0; i < 40; i++) {
    now += 100;
    a.onOutput(`Get:${i + 1} http://deb.debian.org/debian bookworm/main amd64 p${i} 1.0 [100 kB]\n`);
  }
  assert.equal(apt.length, 2, apt.join("")); // 0% at the first package, then 2 s later
  assert.match(apt[1]!, /^apt: 2\.1 MB of 100\.0 MB \(2%\)\n$/);
});
