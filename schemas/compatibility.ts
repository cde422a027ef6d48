/**
 * The local schema-evolution check: can a new (reader) schema read data written with an old one?
 * Answers field by field, so a refusal names the field and what is wrong with it, before anything
 * reaches the registry.
 */
import type avsc from "avsc";

export interface EvolutionProblem {
  field: string;
  problem: string;
}

function canRead(reader: avsc.Type, writer: avsc.Type): string | null {
  try {
    reader.createResolver(writer);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const typeText = (t: avsc.Type) => JSON.stringify(t.schema()).slice(0, 120);

/** Problems that stop `reader` (new) from reading data written with `writer` (old); empty when compatible. */
export function backwardProblems(reader: avsc.Type, writer: avsc.Type, prefix = ""): EvolutionProblem[] {
  if (reader.typeName !== "record" || writer.typeName !== "record") {
    const why = canRead(reader, writer);
    return why
      ? [{ field: prefix || "(root)", problem: `type changed from ${typeText(writer)} to ${typeText(reader)}` }]
      : [];
  }
  const problems: EvolutionProblem[] = [];
  const readerRecord = reader as avsc.types.RecordType;
  const writerRecord = writer as avsc.types.RecordType;
  for (const field of readerRecord.fields) {
    const path = prefix ? `${prefix}.${field.name}` : field.name;
    const names = [field.name, ...field.aliases];
    const old = writerRecord.fields.find((f) => names.includes(f.name));
    if (!old) {
      if (field.defaultValue() === undefined) {
        problems.push({
          field: path,
          problem:
            "added without a default, so data written with the old schema has no value for it; give it a default (e.g. null in a union with null)",
        });
      }
      continue;
    }
    if (field.type.typeName === "record" && old.type.typeName === "record") {
      problems.push(...backwardProblems(field.type, old.type, path));
      continue;
    }
    const why = canRead(field.type, old.type);
    if (why) {
      problems.push({
        field: path,
        problem: `type changed from ${typeText(old.type)} to ${typeText(field.type)}, which cannot read old data (${why})`,
      });
    }
  }
  return problems;
}
