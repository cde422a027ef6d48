/** Valid sample values for any Avro type, so every catalog type can be round-tripped in tests. */
import { randomUUID } from "node:crypto";
import type avsc from "avsc";

export function sampleValue(type: avsc.Type, depth = 0): unknown {
  const name = type.typeName;
  if (name === "logical:timestamp-millis") return new Date(1_700_000_000_000 + depth);
  if (name === "logical:uuid") return randomUUID();
  if (name === "logical:decimal") return "1234.5000";
  switch (name) {
    case "null":
      return null;
    case "boolean":
      return true;
    case "int":
    case "long":
      return 7;
    case "float":
    case "double":
      return 0.5;
    case "string":
      return `sample-${type.name ?? "text"}`;
    case "bytes":
      return Buffer.from("sample");
    case "fixed":
      return Buffer.alloc((type as avsc.types.FixedType).size, 1);
    case "enum":
      return (type as avsc.types.EnumType).symbols.at(-1);
    case "array":
      return [sampleValue((type as avsc.types.ArrayType).itemsType, depth + 1)];
    case "map":
      return { key: sampleValue((type as avsc.types.MapType).valuesType, depth + 1) };
    case "record": {
      const out: Record<string, unknown> = {};
      for (const f of (type as avsc.types.RecordType).fields) out[f.name] = sampleValue(f.type, depth + 1);
      return out;
    }
    default: {
      if (name.startsWith("union")) {
        const branches = (type as avsc.types.UnwrappedUnionType).types;
        // The non-null branch exercises more of the codec than null does.
        const branch = branches.find((b) => b.typeName !== "null") ?? branches[0]!;
        const value = sampleValue(branch, depth + 1);
        // avsc wraps ambiguous unions: the value names its branch.
        return name === "union:wrapped" && value !== null
          ? { [(branch as { branchName?: string }).branchName ?? branch.typeName]: value }
          : value;
      }
      throw new Error(`no sample for Avro type ${name}`);
    }
  }
}
