/**
 * Polity's exactly-once story rests on read-committed consumers never seeing a record of an aborted
 * transaction. kafkajs 2.2.4 (its last release) broke that when a fetch starts inside the aborted
 * transactions of more than one producer, which is what a broker restart leaves behind: it entered
 * at most one aborted transaction per record, in the broker's order rather than by first offset.
 * `npm ci` / `npm install` fix it through patches/kafkajs+2.2.4.patch (patch-package, run as the
 * postinstall script). This module checks, once per process, that the fix is in place, so that a
 * copy of node_modules installed without scripts fails at start instead of doubling work later.
 * test/contract/aborted-transactions.test.ts shows the leak and the fix on the real broker.
 */
import { createRequire } from "node:module";

type Filter = (input: {
  messages: {
    offset: string;
    key: Buffer | null;
    isControlRecord: boolean;
    batchContext: { producerId: string; inTransaction: boolean };
  }[];
  abortedTransactions: { firstOffset: string; producerId: string }[];
}) => { offset: string }[];

let checked = false;

/** Throws, saying how to fix it, when kafkajs's read-committed filter lets an aborted record through. */
export function assertReadCommittedFilter(): void {
  if (checked) return;
  const filter = createRequire(import.meta.url)("kafkajs/src/consumer/filterAbortedMessages.js") as Filter;
  const record = (offset: string, producerId: string) => ({
    offset,
    key: Buffer.from("k"),
    isControlRecord: false,
    batchContext: { producerId, inTransaction: true },
  });
  // Producers 1 and 2 each began a transaction (at offsets 0 and 1) and aborted it. A fetch from
  // offset 3 starts inside both; and the broker may list producer 2's before producer 1's.
  const kept = [
    ...filter({
      messages: [record("3", "2"), record("4", "1")],
      abortedTransactions: [
        { firstOffset: "0", producerId: "1" },
        { firstOffset: "1", producerId: "2" },
      ],
    }),
    ...filter({
      messages: [record("0", "1"), record("1", "2")],
      abortedTransactions: [
        { firstOffset: "1", producerId: "2" },
        { firstOffset: "0", producerId: "1" },
      ],
    }),
  ];
  if (kept.length > 0)
    throw new Error(
      "kafkajs is installed without Polity's fix to its read-committed filter (patches/kafkajs+2.2.4.patch), " +
        "so consumers would read records of aborted transactions: run `npm ci` (or `npx patch-package`) " +
        "with install scripts enabled",
    );
  checked = true;
}
