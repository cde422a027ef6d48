/**
 * The writer's memory of stream heads (producers/chain.ts) stays bounded: a host lets the streams
 * of settled goals go by their record key, and past its limit the least recently touched stream is
 * forgotten. The soak found tier processes growing by the heads of every goal they had ever read.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CHAIN_HEADER, HashChain } from "../../producers/chain.js";

const headers = (aggregate: string, hash: string, prev?: string) => ({
  [CHAIN_HEADER.aggregate]: aggregate,
  [CHAIN_HEADER.hash]: hash,
  ...(prev ? { [CHAIN_HEADER.prev]: prev } : {}),
});

describe("HashChain heads", () => {
  test("retainGroups forgets every stream of the refused keys and keeps the others", () => {
    const chain = new HashChain();
    chain.advance("tasks", "TASK:g1/a", "h1", "g1");
    chain.advance("tasks", "TASK:g1/b", "h2", "g1");
    chain.observe("goals", headers("GOAL:g1", "h3"), Buffer.from("g1"));
    chain.advance("tasks", "TASK:g2/a", "h4", "g2");
    chain.observe("agents", headers("AGENT:w1", "h5"), "w1");
    assert.equal(chain.size, 5);

    chain.retainGroups((key) => key !== "g1");

    assert.equal(chain.size, 2);
    assert.equal(chain.head("tasks", "TASK:g1/a"), undefined);
    assert.equal(chain.head("goals", "GOAL:g1"), undefined);
    assert.equal(chain.head("tasks", "TASK:g2/a"), "h4");
    assert.equal(chain.head("agents", "AGENT:w1"), "h5");
  });

  test("a stream that moves on stays in its group; a forgotten stream starts again unlinked", () => {
    const chain = new HashChain();
    chain.advance("tasks", "TASK:g1/a", "h1", "g1");
    chain.observe("tasks", headers("TASK:g1/a", "h2", "h1"), "g1");
    assert.equal(chain.head("tasks", "TASK:g1/a"), "h2");
    chain.retainGroups(() => false);
    assert.equal(chain.size, 0);
    // A late event of the forgotten stream becomes its head again (written without a link).
    chain.observe("tasks", headers("TASK:g1/a", "h3", "h2"), "g1");
    assert.equal(chain.head("tasks", "TASK:g1/a"), "h3");
  });

  test("past its limit the least recently touched stream goes first", () => {
    const chain = new HashChain(3);
    chain.advance("t", "A", "a1", "g");
    chain.advance("t", "B", "b1", "g");
    chain.advance("t", "C", "c1", "h");
    chain.advance("t", "A", "a2", "g"); // A touched again: B is now the oldest
    chain.advance("t", "D", "d1", "h");
    assert.equal(chain.size, 3);
    assert.equal(chain.head("t", "B"), undefined);
    assert.deepEqual(
      ["A", "C", "D"].map((s) => chain.head("t", s)),
      ["a2", "c1", "d1"],
    );
    // The evicted stream left its group too: forgetting group g removes A only.
    chain.retainGroups((key) => key !== "g");
    assert.equal(chain.size, 2);
  });
});
