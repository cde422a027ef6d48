/**
 * The schema commands: `npm run schemas:check` (refuses an incompatible change, naming the
 * field), `npm run schemas:register` (the admin step: topics, schemas, compatibility levels) and
 * `npm run schemas:gen` (TypeScript types and the AsyncAPI document from the .avsc files).
 */
import { logLevel } from "kafkajs";
import type { InfraUrls } from "../lib/config.js";
import { kafkaClient } from "../lib/kafka.js";
import { ensureTopics, registerSchemas } from "../producers/admin.js";
import { parseWriterSchema, registrySchema } from "./avro-types.js";
import { Codec } from "./codec.js";
import { backwardProblems } from "./compatibility.js";

export interface CheckResult {
  subject: string;
  status: "new" | "unchanged" | "compatible" | "incompatible";
  problems: string[];
}

/** Compares every working schema with the latest registered version of its subject. */
export async function checkSchemas(codec: Codec): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const [type, entry] of codec.schemas.messages) {
    const subject = codec.subjectOf(type);
    const latest = await codec.registry.latest(subject);
    if (!latest) {
      results.push({ subject, status: "new", problems: [] });
      continue;
    }
    const working = registrySchema(entry.type);
    const registered = parseWriterSchema(latest.schema);
    if (JSON.stringify(registered.schema()) === JSON.stringify(entry.type.schema())) {
      results.push({ subject, status: "unchanged", problems: [] });
      continue;
    }
    const local = backwardProblems(entry.type, registered).map((p) => `${type}.${p.field}: ${p.problem}`);
    const remote = await codec.registry.isCompatible(subject, working);
    const problems = [...local];
    if (!remote.compatible && local.length === 0) {
      problems.push(`the registry refuses the change: ${remote.messages.join("; ") || "incompatible"}`);
    }
    results.push({ subject, status: problems.length > 0 ? "incompatible" : "compatible", problems });
  }
  return results;
}

export async function runSchemaCommand(command: string, urls: InfraUrls): Promise<number> {
  const codec = Codec.forUrl(urls.schemaRegistryUrl);
  if (command === "check") {
    const results = await checkSchemas(codec);
    const counts = new Map<string, number>();
    for (const r of results) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    for (const r of results.filter((r) => r.status === "incompatible")) {
      console.error(`✖ ${r.subject}\n    ${r.problems.join("\n    ")}`);
    }
    console.log(`schemas: ${[...counts].map(([s, n]) => `${n} ${s}`).join(", ")}`);
    return counts.get("incompatible") ? 1 : 0;
  }
  if (command === "register") {
    const kafka = kafkaClient(urls.kafkaBrokers, "polity-admin", { logLevel: logLevel.WARN });
    const created = await ensureTopics(kafka);
    console.log(`topics: ${created.length} created${created.length ? ` (${created.join(", ")})` : ""}`);
    const registered = await registerSchemas(codec);
    console.log(`schemas: ${registered.length} subjects registered`);
    return 0;
  }
  throw new Error(`unknown schemas command "${command}"; use check or register`);
}
