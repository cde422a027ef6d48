/**
 * What a host has seen committed, so that a restore can refuse a view of the log from before it.
 *
 * A restore reads a partition's state topics "to their end", asking the partition's leader where
 * the end is (its high watermark, host.ts). Right after a broker comes back from a stall (a GC
 * pause, a frozen VM), it may answer from what it knew before the stall, before the cluster moved
 * its partitions to other brokers and before it learned so: an end offset (and records) from
 * before transactions the cluster committed meanwhile. kafkajs sends no leader epoch with its
 * requests, so nothing in the protocol stops that answer. A restore that believed it would fold a
 * state without this host's own latest decisions and decide them again. (The double TaskCompleted once seen in the fault suite's "broker frozen
 * 20 s" round is more likely the other way to read too little, a last stable offset taken for the
 * end, which host.ts now avoids by reading to the high watermark; this guard is for the stale
 * broker, which no test reproduces.)
 *
 * The host knows a lower bound: every transaction it committed put records at known offsets of
 * known partitions, and a committed record never leaves the log. So a view whose end is at or
 * before one of those offsets is stale, and the restore asks again.
 */
import type { LogPosition } from "../../producers/writer.js";

export class CommittedFloor {
  /** Slot partition -> physical topic -> the least end offset the log can have there. */
  private readonly ends = new Map<number, Map<string, bigint>>();

  /** Records a committed transaction of the slot `partition`: what it wrote to that partition. */
  noteCommitted(partition: number, written: readonly LogPosition[]): void {
    for (const w of written) {
      if (w.partition !== partition || w.offset < 0n) continue;
      let topics = this.ends.get(partition);
      if (!topics) this.ends.set(partition, (topics = new Map()));
      // The record at `offset` is in the log, so the end is after it.
      const least = w.offset + 1n;
      if (least > (topics.get(w.topic) ?? 0n)) topics.set(w.topic, least);
    }
  }

  /**
   * Where a view of the slot's state topics (physical topic -> end offset) ends before what this
   * host saw committed: one line per such topic, none when the view is not behind.
   */
  behind(partition: number, ends: ReadonlyMap<string, bigint>): string[] {
    const least = this.ends.get(partition);
    if (!least) return [];
    const lines: string[] = [];
    for (const [topic, end] of ends) {
      const floor = least.get(topic);
      if (floor !== undefined && end < floor)
        lines.push(`${topic}-${partition} ends at ${end}, but this process committed a record at ${floor - 1n}`);
    }
    return lines;
  }
}
