/**
 * The restore's floor (processors/engine/floor.ts): a view of the log that ends at or before a
 * record this host committed is behind; one that ends after it is not. Given commits, when a
 * restore reads end offsets, then these are the complaints.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CommittedFloor } from "../../processors/engine/floor.js";

const at = (topic: string, partition: number, offset: number) => ({ topic, partition, offset: BigInt(offset) });

describe("the floor a restore's view of the log must reach", () => {
  it("knows nothing before a commit, so any view passes", () => {
    assert.deepEqual(new CommittedFloor().behind(2, new Map([["tasks", 0n]])), []);
  });

  it("refuses a view that ends at or before this host's last committed record of the partition", () => {
    const floor = new CommittedFloor();
    floor.noteCommitted(2, [at("tasks", 2, 180)]);
    floor.noteCommitted(2, [at("tasks", 2, 186), at("goals", 2, 40)]);
    // The record at 186 is in the log: an end of 186 does not include it.
    assert.deepEqual(
      floor.behind(
        2,
        new Map([
          ["tasks", 186n],
          ["goals", 41n],
        ]),
      ),
      ["tasks-2 ends at 186, but this process committed a record at 186"],
    );
    assert.deepEqual(
      floor.behind(
        2,
        new Map([
          ["tasks", 190n],
          ["goals", 40n],
        ]),
      ),
      ["goals-2 ends at 40, but this process committed a record at 40"],
    );
    assert.deepEqual(
      floor.behind(
        2,
        new Map([
          ["tasks", 187n],
          ["goals", 41n],
        ]),
      ),
      [],
    );
  });

  it("keeps the highest offset, whatever order commits are noted in", () => {
    const floor = new CommittedFloor();
    floor.noteCommitted(0, [at("tasks", 0, 50)]);
    floor.noteCommitted(0, [at("tasks", 0, 20)]);
    assert.equal(floor.behind(0, new Map([["tasks", 30n]])).length, 1);
  });

  it("counts only what the slot wrote to its own partition, and only known offsets", () => {
    const floor = new CommittedFloor();
    // An agent's event keyed elsewhere, and a dead letter whose offset the broker did not say.
    floor.noteCommitted(1, [at("agents", 4, 900), at("tasks", 1, -1)]);
    assert.deepEqual(
      floor.behind(
        1,
        new Map([
          ["agents", 0n],
          ["tasks", 0n],
        ]),
      ),
      [],
    );
    assert.deepEqual(floor.behind(4, new Map([["agents", 0n]])), []);
  });

  it("holds per partition: one slot's commits say nothing of another's", () => {
    const floor = new CommittedFloor();
    floor.noteCommitted(3, [at("tasks", 3, 10)]);
    assert.deepEqual(floor.behind(5, new Map([["tasks", 0n]])), []);
    assert.equal(floor.behind(3, new Map([["tasks", 0n]])).length, 1);
  });
});
