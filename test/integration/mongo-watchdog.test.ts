/**
 * lib/mongo.ts: a MongoDB client whose monitor stopped checking is reconnected by the watchdog,
 * and a server that answers nobody is left to the driver. Real FerretDB behind a TCP proxy that
 * makes the failure seen in the fault suite on purpose:
 *
 *   1. the monitor's connection is cut, and its new one is left hanging (connectTimeoutMS 0:
 *      the driver waits on it for ever, as the stuck monitor did);
 *   2. the pool's connection is cut under a write, so the write fails and the driver marks the
 *      server unknown with "connection N ... closed" and asks the (hung) monitor to check it.
 *
 * A control without the watchdog shows that this client really stays stuck.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { MongoClient } from "mongodb";
import { watchedMongoClient, type WatchedMongo } from "../../lib/mongo.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { unique, urls } from "../support/infra.js";

const target = new URL(urls.mongoUrl);
const database = unique("watchdog").replace(/-/g, "_");

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Connects `mongo` through `proxy`, then leaves its monitor hung and its server unknown (see above). */
async function strandClient(proxy: TcpProxy, mongo: WatchedMongo): Promise<void> {
  const docs = mongo.client.db(database).collection<{ _id: string; n: number }>("docs");
  await mongo.client.connect();
  assert.equal(proxy.accepted, 1, "connect opens the monitor's connection only");
  await docs.updateOne({ _id: "a" }, { $set: { n: 1 } }, { upsert: true });
  assert.equal(proxy.accepted, 2, "the first write opens one pool connection");

  proxy.hangNext(1);
  proxy.cut(1); // the monitor's connection
  await until("the monitor to open its next connection (which hangs)", () => proxy.accepted === 3);
  proxy.failOnNextRequest(2); // the pool's connection, under the next write
  // A standalone server gets no retryable writes: the write fails at once.
  await assert.rejects(docs.updateOne({ _id: "a" }, { $set: { n: 2 } }, { upsert: true }), {
    name: "MongoNetworkError",
    message: /connection \d+ to 127\.0\.0\.1:\d+ closed/,
  });
}

describe("MongoDB client watchdog (lib/mongo.ts)", () => {
  const proxies: TcpProxy[] = [];
  const clients: WatchedMongo[] = [];
  const newProxy = async () => {
    const p = await TcpProxy.start({ host: target.hostname, port: Number(target.port) });
    proxies.push(p);
    return p;
  };
  const newClient = (proxy: TcpProxy, stuckAfterMs: number, lines: string[] = [], appName = "watchdog-test") => {
    const m = watchedMongoClient(`mongodb://127.0.0.1:${proxy.port}/${database}`, {
      name: "test",
      log: (line) => lines.push(line),
      stuckAfterMs,
      everyMs: 200,
      clientOptions: { appName, connectTimeoutMS: 0, heartbeatFrequencyMS: 500, serverSelectionTimeoutMS: 4_000 },
    });
    clients.push(m);
    return m;
  };

  before(async () => {
    const direct = new MongoClient(urls.mongoUrl);
    await direct.connect();
    await direct.db(database).collection("docs").deleteMany({});
    await direct.close();
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const p of proxies) await p.stop();
    const direct = new MongoClient(urls.mongoUrl);
    await direct.connect();
    await direct
      .db(database)
      .dropDatabase()
      .catch(() => undefined);
    await direct.close();
  });

  it("control: without the watchdog the stranded client never selects the server again", async () => {
    const proxy = await newProxy();
    const mongo = newClient(proxy, Number.POSITIVE_INFINITY);
    await strandClient(proxy, mongo);
    // Every later operation waits out server selection and fails with the stale error, though
    // the server answers new connections all along (the other test's probe uses one).
    for (let i = 0; i < 2; i++) {
      await assert.rejects(mongo.client.db(database).collection<{ _id: string }>("docs").findOne({ _id: "a" }), {
        name: "MongoServerSelectionError",
        message: /connection \d+ to 127\.0\.0\.1:\d+ closed/,
      });
    }
    assert.equal(proxy.accepted, 3, "the client opened no connection after the hung one");
  });

  it("a stranded client is reconnected once a new connection to the server answers", async () => {
    const proxy = await newProxy();
    const lines: string[] = [];
    const mongo = newClient(proxy, 1_000, lines);
    await strandClient(proxy, mongo);
    await until("the watchdog to reconnect", () => mongo.reconnects() === 1);
    const docs = mongo.client.db(database).collection<{ _id: string; n: number }>("docs");
    await docs.updateOne({ _id: "a" }, { $set: { n: 3 } }, { upsert: true });
    assert.deepEqual(await docs.findOne({ _id: "a" }), { _id: "a", n: 3 });
    assert.match(
      lines.join("\n"),
      /seen it unknown for \d+\.\d s \("connection \d+ to 127\.0\.0\.1:\d+ closed"\) and its monitor has not checked it for \d+\.\d s/,
    );
    assert.match(lines.join("\n"), /reconnected/);
  });

  it("a server that answers nobody is left to the driver: no reconnection while it is away", async () => {
    const proxy = await newProxy();
    const lines: string[] = [];
    const mongo = newClient(proxy, 500, lines);
    const docs = mongo.client.db(database).collection<{ _id: string; n: number }>("docs");
    await mongo.client.connect();
    await docs.updateOne({ _id: "b" }, { $set: { n: 1 } }, { upsert: true });
    // Every new connection hangs: the monitor's, the pool's and the watchdog's probe alike.
    proxy.hangNext(1_000);
    proxy.cut(1);
    proxy.cut(2);
    await assert.rejects(docs.updateOne({ _id: "b" }, { $set: { n: 2 } }), /closed|timed out/);
    await sleep(4_000); // several watchdog looks, each probe failing after its 2 s timeout
    assert.equal(mongo.reconnects(), 0, lines.join("\n"));
  });

  it("a client whose monitor is still checking is left to the driver, though a new connection answers", async () => {
    const proxy = await newProxy();
    const lines: string[] = [];
    const mongo = newClient(proxy, 1_000, lines, "still-checking");
    const docs = mongo.client.db(database).collection<{ _id: string; n: number }>("docs");
    await mongo.client.connect();
    await docs.updateOne({ _id: "c" }, { $set: { n: 1 } }, { upsert: true });
    // Every connection of this client (its appName is in its handshake) is closed from now on, so
    // its monitor fails a check every 0.5 s; the watchdog's probe (no appName) gets through.
    proxy.refuse("still-checking");
    proxy.cut(1);
    proxy.cut(2);
    await assert.rejects(docs.updateOne({ _id: "c" }, { $set: { n: 2 } }), /closed/);
    await sleep(4_000);
    assert.equal(mongo.reconnects(), 0, lines.join("\n"));
    proxy.refuse(undefined);
    await docs.updateOne({ _id: "c" }, { $set: { n: 3 } }); // the driver found the server by itself
    assert.equal(mongo.reconnects(), 0);
  });
});
