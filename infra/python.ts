/**
 * The Python the example agent (examples/python-kafka-agent) runs on: a virtual environment in
 * .polity/py with its requirements installed, made when a test needs it and remade when
 * requirements.txt changes (a hash stamp says which requirements it holds). Nothing is installed
 * by hand: on a fresh Debian machine python3 and its venv module come from apt-get when we are
 * root (as infra/chromium.ts does for the browser), the packages from PyPI through pip.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { repoRoot } from "../lib/config.js";
import { aptInstall, isRoot, onPath } from "./native/apt.js";
import { run, StackError } from "./native/process.js";

export const PYTHON_AGENT_DIR = path.join(repoRoot, "examples", "python-kafka-agent");
const REQUIREMENTS = path.join(PYTHON_AGENT_DIR, "requirements.txt");

function say(line: string): void {
  process.stderr.write(`[python] ${line}\n`);
}

async function installFromDebian(packages: string[], why: string): Promise<void> {
  if (!isRoot() || !onPath("apt-get"))
    throw new StackError(
      `${why}. Install Debian's ${packages.join(" ")} (\`sudo apt-get install ${packages.join(" ")}\`) and run the tests again.`,
    );
  say(`${why}: installing Debian's ${packages.join(" ")} (apt-get)`);
  await aptInstall(packages, "[python] apt-get downloading");
}

/** Where the environment lives; POLITY_HOME moves it with the rest of .polity. */
export function venvDir(): string {
  return path.join(process.env.POLITY_HOME ?? path.join(repoRoot, ".polity"), "py");
}

/**
 * The venv's python, with the agent's requirements installed; creates or refreshes the venv first
 * when it is missing or holds other requirements. A pip that cannot install them fails with pip's
 * own error.
 */
export async function ensurePythonAgentEnv(): Promise<string> {
  const dir = venvDir();
  const python = path.join(dir, "bin", "python");
  const stamp = path.join(dir, ".requirements.sha256");
  const wanted = createHash("sha256").update(fs.readFileSync(REQUIREMENTS)).digest("hex");
  if (fs.existsSync(python) && fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8").trim() === wanted) return python;

  let python3 = onPath("python3");
  if (!python3) {
    await installFromDebian(["python3", "python3-venv"], "python3 is not installed");
    python3 = onPath("python3");
    if (!python3) throw new StackError("apt-get installed python3 but no python3 appeared on the PATH");
  }
  say(`creating ${path.relative(repoRoot, dir)} with ${python3} -m venv`);
  const venv = () => run(python3!, ["-m", "venv", "--clear", dir], { what: `${python3} -m venv ${dir}` });
  try {
    await venv();
  } catch (e) {
    // Debian splits ensurepip out of python3 into python3-venv.
    if (!/ensurepip|python3(\.\d+)?-venv/.test((e as Error).message)) throw e;
    await installFromDebian(["python3-venv"], "python3 has no venv module with pip (Debian's python3-venv)");
    await venv();
  }
  say(`pip install -r ${path.relative(repoRoot, REQUIREMENTS)} (from PyPI)`);
  await run(
    python,
    ["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", "-r", REQUIREMENTS],
    { what: "pip install of the Python agent's requirements", echo: true },
  );
  fs.writeFileSync(stamp, `${wanted}\n`);
  say("the Python agent's environment is ready");
  return python;
}
