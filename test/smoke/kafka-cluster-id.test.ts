/**
 * The native Kafka's cluster id never starts with "-" (infra/native/kafka.ts newClusterId): the
 * storage tool would read it as an option, and one fresh stack in 64 failed to format (a CI run did).
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { newClusterId } from "../../infra/native/kafka.js";

it("draws KRaft cluster ids the storage tool accepts: 22 base64url characters, never a leading -", () => {
  // 5,000 draws: a generator that let "-" lead would show it about 78 times.
  for (let i = 0; i < 5_000; i++) {
    const id = newClusterId();
    assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/, id);
    assert.equal(Buffer.from(id, "base64url").length, 16);
  }
});
