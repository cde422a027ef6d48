/**
 * Tamper evidence: every event written through the EventWriter carries, in its headers, a hash of
 * itself that covers the hash of the event before it in the same stream. A stream is one aggregate
 * (envelope.aggregate, e.g. `TASK:g1/api`) on one topic; every event of a stream has the same key,
 * so a stream lives in one partition and its order is the offset order.
 *
 *   polity-aggregate  `<type>:<id>`, the stream the event belongs to
 *   polity-prev       hash of the previous event of the stream as the writer knew it; absent when
 *                     the writer knew none (the stream's first event, or a writer that had not read
 *                     the stream, such as the gateway relaying an external agent's report)
 *   polity-hash       sha256(prev, key, value bytes), hex
 *
 * Writers learn a stream's latest hash from what they write and from what they read (tier hosts
 * feed every record they consume to `observe`), so a stream is a chain as long as one writer holds
 * it at a time, and otherwise a graph whose every link points backwards. `polity audit verify`
 * (projections/audit/verify.ts) recomputes every hash and follows every link: an altered payload,
 * key or link, a missing event that a later one links to, and events out of order are reported
 * with their position.
 */
import { createHash } from "node:crypto";
import type { IHeaders } from "kafkajs";

export const CHAIN_HEADER = {
  aggregate: "polity-aggregate",
  prev: "polity-prev",
  hash: "polity-hash",
} as const;

/** The hash of an event: its predecessor's hash, its key and its bytes as written (schema id included). */
export function recordHash(prev: string, key: Buffer | string | null, value: Buffer | null): string {
  const h = createHash("sha256");
  h.update(prev);
  h.update("\n");
  h.update(key ?? "");
  h.update("\n");
  if (value) h.update(value);
  return h.digest("hex");
}

export function aggregateLabel(aggregate: { type: string; id: string }): string {
  return `${aggregate.type}:${aggregate.id}`;
}

/** A header's value as text, or undefined. */
export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (v === undefined) return undefined;
  const first = Array.isArray(v) ? v[0] : v;
  return first === undefined ? undefined : Buffer.isBuffer(first) ? first.toString() : String(first);
}

/**
 * The latest hash of each stream a writer knows, grouped by the records' key (the goal id on every
 * goal-keyed topic), so a host can let a finished goal's streams go with `retainGroups`. Bounded
 * as well: the least recently touched streams are forgotten past `limit`. The next event of a
 * forgotten stream is written without a link (verify checks it for its own content only).
 */
export class HashChain {
  private readonly heads = new Map<string, { hash: string; group: string }>();
  private readonly groups = new Map<string, Set<string>>();

  constructor(private readonly limit = 20_000) {}

  private static stream(topic: string, aggregate: string): string {
    return `${topic}|${aggregate}`;
  }

  /** Streams known, for tests and metrics. */
  get size(): number {
    return this.heads.size;
  }

  head(topic: string, aggregate: string): string | undefined {
    return this.heads.get(HashChain.stream(topic, aggregate))?.hash;
  }

  /** Records that `hash` is now the latest event of the stream; `group` is the record's key. */
  advance(topic: string, aggregate: string, hash: string, group = ""): void {
    const stream = HashChain.stream(topic, aggregate);
    this.drop(stream);
    this.heads.set(stream, { hash, group });
    let members = this.groups.get(group);
    if (!members) this.groups.set(group, (members = new Set()));
    members.add(stream);
    if (this.heads.size > this.limit) this.drop(this.heads.keys().next().value!);
  }

  /** Forgets the streams of every group `keep` refuses (e.g. goals their host has let go). */
  retainGroups(keep: (group: string) => boolean): void {
    for (const [group, members] of this.groups) {
      if (keep(group)) continue;
      for (const stream of members) this.heads.delete(stream);
      this.groups.delete(group);
    }
  }

  private drop(stream: string): void {
    const known = this.heads.get(stream);
    if (!known) return;
    this.heads.delete(stream);
    const members = this.groups.get(known.group);
    members?.delete(stream);
    if (members?.size === 0) this.groups.delete(known.group);
  }

  /**
   * Follows a record read from the log: it becomes the stream's head when it extends the head this
   * writer knows (or the writer knows none). The writer's own records read back, and records of a
   * writer that had not seen the head, extend an older event and are passed over, so the head only
   * moves forward.
   */
  observe(topic: string, headers: IHeaders | undefined, key: Buffer | string | null = null): void {
    const aggregate = headerText(headers, CHAIN_HEADER.aggregate);
    const hash = headerText(headers, CHAIN_HEADER.hash);
    if (!aggregate || !hash) return;
    const head = this.head(topic, aggregate);
    if (head === undefined || head === (headerText(headers, CHAIN_HEADER.prev) ?? ""))
      this.advance(topic, aggregate, hash, key === null ? "" : key.toString());
  }
}
