/**
 * Fault injection, servers of the (fault suite's own) stack: the Kafka broker restarted, PostgreSQL
 * and the Mongo-wire store (FerretDB on it) stopped for 20 s, the schema registry stopped for 20 s.
 * Runs through `npm run test:faults` only: it stops servers.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { faultRound, Platform, SKIP, startServers, stopServers } from "./support.js";

const OUTAGE_MS = 20_000;

describe("faults: servers stopped mid-run", { skip: SKIP }, () => {
  let p: Platform;
  before(async () => {
    p = await Platform.start("servers");
  });
  after(async () => {
    // Whatever happened, leave every server of the fault stack running for the next file.
    await startServers(["postgres", "kafka", "registry", "mongo"]).catch(() => undefined);
    await p?.stop();
  });

  it("Kafka broker restarted", async () => {
    await faultRound(p, {
      fault: "Kafka broker restart",
      async inject() {
        await stopServers(["kafka"]);
        await startServers(["kafka"]);
      },
    });
  });

  it("PostgreSQL and FerretDB stopped for 20 s", async () => {
    await faultRound(p, {
      fault: "PostgreSQL + FerretDB down 20 s",
      async inject() {
        await stopServers(["mongo", "postgres"]);
        await sleep(OUTAGE_MS);
        await startServers(["postgres", "mongo"]);
      },
    });
  });

  it("schema registry stopped for 20 s", async () => {
    await faultRound(p, {
      fault: "registry down 20 s",
      async inject() {
        await stopServers(["registry"]);
        await sleep(OUTAGE_MS);
        await startServers(["registry"]);
      },
    });
  });
});
