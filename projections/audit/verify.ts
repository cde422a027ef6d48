/**
 * `polity audit verify`: walks topics record by record and checks the hash chain every event
 * carries (producers/chain.ts). Per stream (one aggregate on one topic):
 *
 * - ALTERED: the stored hash is not the hash of the record's link, key and bytes (its payload, key
 *   or link was changed after it was written);
 * - GAP: a record links to an event that is not in the topic (deleted, or its hash was rewritten);
 * - REORDERED: a record links to an event that comes after it;
 * - DUPLICATE: the same event appears twice;
 * - UNSEALED: a record without chain headers (not written by Polity's writer, or stripped).
 *
 * The last event of a stream has no successor to vouch for it; an alteration of it that also
 * recomputes its hash is not detectable from the log alone (anchoring the heads elsewhere is the
 * remedy, see README).
 */
import type { Kafka } from "kafkajs";
import { CHAIN_HEADER, headerText, recordHash } from "../../producers/chain.js";
import { scanLog, type ScanProgress } from "./log.js";

export type ProblemKind = "ALTERED" | "GAP" | "REORDERED" | "DUPLICATE" | "UNSEALED";

export interface ChainProblem {
  kind: ProblemKind;
  topic: string;
  partition: number;
  offset: string;
  aggregate: string | null;
  detail: string;
}

export interface VerifyReport {
  topics: string[];
  records: number;
  /** Records that carry chain headers. */
  sealed: number;
  /** Records linked to an earlier event of their stream. */
  linked: number;
  streams: number;
  problems: ChainProblem[];
  ok: boolean;
}

interface Position {
  partition: number;
  offset: string;
}

interface Stream {
  /** Hash -> where that event is. */
  seen: Map<string, Position>;
  /** Hash of an event not seen yet -> the records that link to it. */
  waiting: Map<string, Position[]>;
}

const short = (hash: string) => hash.slice(0, 12);

export async function verifyTopics(
  kafka: Kafka,
  topics: string[],
  options: { onProgress?: (p: ScanProgress) => void } = {},
): Promise<VerifyReport> {
  const report: VerifyReport = { topics, records: 0, sealed: 0, linked: 0, streams: 0, problems: [], ok: true };
  for (const topic of topics) {
    const streams = new Map<string, Stream>();
    const problem = (kind: ProblemKind, pos: Position, aggregate: string | null, detail: string) =>
      report.problems.push({ kind, topic, ...pos, aggregate, detail });
    await scanLog(kafka, {
      topics: [topic],
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      onBatch: (records) => {
        for (const r of records) {
          report.records++;
          const pos = { partition: r.partition, offset: r.offset };
          const aggregate = headerText(r.headers, CHAIN_HEADER.aggregate) ?? null;
          const hash = headerText(r.headers, CHAIN_HEADER.hash);
          if (!aggregate || !hash) {
            problem("UNSEALED", pos, aggregate, "record carries no chain headers (not written by Polity, or stripped)");
            continue;
          }
          report.sealed++;
          const prev = headerText(r.headers, CHAIN_HEADER.prev) ?? "";
          const computed = recordHash(prev, r.key, r.value);
          if (computed !== hash) {
            problem(
              "ALTERED",
              pos,
              aggregate,
              `stored hash ${short(hash)} is not the hash of the record as it is (${short(computed)}): its payload, key or link was changed`,
            );
          }
          let stream = streams.get(aggregate);
          if (!stream) {
            stream = { seen: new Map(), waiting: new Map() };
            streams.set(aggregate, stream);
          }
          if (stream.seen.has(hash)) {
            const first = stream.seen.get(hash)!;
            problem("DUPLICATE", pos, aggregate, `same event as partition ${first.partition} offset ${first.offset}`);
            continue;
          }
          stream.seen.set(hash, pos);
          const forward = stream.waiting.get(hash);
          if (forward) {
            for (const w of forward)
              problem(
                "REORDERED",
                w,
                aggregate,
                `links to ${short(hash)}, which comes after it (partition ${pos.partition} offset ${pos.offset})`,
              );
            stream.waiting.delete(hash);
          }
          if (prev) {
            report.linked++;
            if (!stream.seen.has(prev)) {
              const linkers = stream.waiting.get(prev);
              if (linkers) linkers.push(pos);
              else stream.waiting.set(prev, [pos]);
            }
          }
        }
      },
    });
    for (const [aggregate, stream] of streams)
      for (const [missing, linkers] of stream.waiting)
        for (const w of linkers)
          problem(
            "GAP",
            w,
            aggregate,
            `links to ${short(missing)}, which is not in the topic: the event before it was deleted or rewritten`,
          );
    report.streams += streams.size;
  }
  report.problems.sort(
    (a, b) =>
      a.topic.localeCompare(b.topic) || a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)),
  );
  report.ok = report.problems.length === 0;
  return report;
}

export function verifyText(report: VerifyReport): string {
  const lines = [
    `verified ${report.records} record(s) on ${report.topics.length} topic(s): ${report.sealed} sealed, ${report.linked} linked, ${report.streams} stream(s)`,
  ];
  for (const p of report.problems)
    lines.push(`${p.kind.padEnd(9)} ${p.topic}[${p.partition}]@${p.offset} ${p.aggregate ?? "-"}: ${p.detail}`);
  lines.push(report.ok ? "OK: every hash and link checks" : `FAILED: ${report.problems.length} problem(s)`);
  return lines.join("\n");
}
