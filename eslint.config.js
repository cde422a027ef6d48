import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", ".polity/", "dist/", "bench/results/", "schemas/generated/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", ignoreRestSiblings: true }],
    },
  },
  {
    // The domain is pure: deciders fold and decide, and never talk to Kafka, a store, HTTP or a
    // host. Side effects run in processors/engine and processors/roles and come back as inputs.
    files: ["processors/domain/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: ["kafkajs", "mongodb", "pg", "express", "node:fs", "node:child_process", "node:http", "node:net"].map(
            (name) => ({ name, message: "processors/domain is pure: do I/O in processors/engine or processors/roles" }),
          ),
          patterns: [
            {
              group: [
                "**/engine/**",
                "**/roles/**",
                "**/host/**",
                "**/producers/**",
                "**/projections/**",
                "**/gateway/**",
                "**/lib/kafka*",
                "**/lib/mongo*",
              ],
              message:
                "processors/domain is pure: it may import schemas and its own modules, not hosts, adapters or I/O",
            },
          ],
        },
      ],
    },
  },
);
