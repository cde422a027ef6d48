// The topology file's model settings are checked at start: an unknown backend, model or planner
// stops the start with an error naming the key and the allowed values.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ModelRegistry } from "../../processors/ai/models.js";
import { loadTopology, planningConfigOf, topologyProblems, type TopologyConfig } from "../../processors/topology.js";

const base = (extra: Partial<TopologyConfig>, group: Record<string, unknown> = { count: 1, capacity: 1 }) => ({
  simulated: { seed: 1, meanDurationMs: 0, failureRate: 0 },
  ...extra,
  topologies: {
    aamas: {
      ...(extra.topologies?.aamas ?? {}),
      domains: { backend: { workers: { api: group } } },
    },
  },
});

describe("topology: models, planner and model workers", () => {
  it("names an unknown backend and its allowed values", () => {
    assert.deepEqual(topologyProblems(base({ models: { m: { backend: "gpt" } as never } })), [
      'models.m.backend must be one of openai, embedded, got "gpt"',
    ]);
  });

  it("wants an endpoint URL and model for openai, a file for embedded, and a variable NAME for the key", () => {
    const problems = topologyProblems(
      base({
        models: {
          a: { backend: "openai", baseUrl: "localhost:11434", model: "", apiKeyEnv: "sk-123" } as never,
          b: { backend: "embedded" } as never,
        },
      }),
    );
    assert.deepEqual(problems, [
      "models.a.baseUrl must be an http(s) URL such as http://127.0.0.1:11434/v1",
      "models.a.model must name the served model",
      "models.a.apiKeyEnv must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key",
      "models.b.file must be the path of a GGUF model file",
    ]);
  });

  it("names an unknown planner kind, a planner model that is not configured, and a model worker without a model", () => {
    const problems = topologyProblems(
      base(
        { topologies: { aamas: { planner: { kind: "oracle" as never, model: "nope" }, domains: {} } } },
        { count: 1, capacity: 1, executor: "model" },
      ),
    );
    assert.deepEqual(problems, [
      'topologies.aamas.planner.kind must be one of template, model, got "oracle"',
      'topologies.aamas.planner.model "nope" is not in models (configured: none)',
      "topologies.aamas.domains.backend.workers.api.model is required for the model executor: give { model: <name in models> }",
    ]);
  });

  it("takes the first configured model for the model planner when none is named", () => {
    const config = base({
      models: { local: { backend: "embedded", file: "x.gguf" } },
      topologies: { aamas: { planner: { kind: "model" }, domains: {} } },
    }) as unknown as TopologyConfig;
    assert.deepEqual(topologyProblems(config), []);
    assert.deepEqual(planningConfigOf(config, "aamas"), {
      planner: "model",
      model: "local",
      maxAttempts: 3,
      models: ["local"],
    });
  });

  it("resolves a model file relative to the topology file, and refuses a missing file or an unset key variable at start", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "polity-topology-"));
    try {
      const file = path.join(dir, "t.json");
      fs.writeFileSync(file, JSON.stringify(base({ models: { local: { backend: "embedded", file: "m/x.gguf" } } })));
      const config = loadTopology(file);
      const local = config.models!.local!;
      assert.equal(local.backend === "embedded" && local.file, path.join(dir, "m", "x.gguf"));
      assert.throws(() => new ModelRegistry(config.models!, dir), /models\.local\.file: no GGUF file at .*m\/x\.gguf/);
      assert.throws(
        () =>
          new ModelRegistry(
            {
              hosted: {
                backend: "openai",
                baseUrl: "http://127.0.0.1:9/v1",
                model: "m",
                apiKeyEnv: "POLITY_UNSET_KEY",
              },
            },
            dir,
            {},
          ),
        /POLITY_UNSET_KEY/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
