/**
 * The one way long-running Polity processes open a MongoDB (FerretDB) client: a MongoClient with a
 * watchdog that reconnects it when it has lost the server for good.
 *
 * Why: after a FerretDB restart the fault suite once saw a projection's client never select the
 * server again. Every write waited the full server selection timeout (30 s) and failed with the
 * same stale "connection 7 ... closed" for minutes, while FerretDB answered every new connection
 * and logged none from that process: the driver's monitor had stopped checking. Nothing in the
 * driver's API restarts a monitor, but closing and connecting the client builds a new topology
 * (and monitor) under the same MongoClient, so every `Db` handed out keeps working.
 *
 * The rule: when the client has seen its server as unknown for `stuckAfterMs` and a fresh
 * connection to the same URL answers (infra/probes.ts `probeMongo`), the client is stuck, not the
 * server; it is closed and connected again. While the server really is down the probe fails too
 * and nothing is done: the driver's own reconnection is left to work.
 */
import { MongoClient, type MongoClientOptions } from "mongodb";
import { probeMongo } from "../infra/probes.js";

export interface WatchedMongo {
  client: MongoClient;
  /** How often the watchdog found the client stuck and reconnected it. */
  reconnects(): number;
  /** Stops the watchdog and closes the client. */
  close(): Promise<void>;
}

export interface WatchdogOptions {
  /** For log lines: "state projection", "gateway". */
  name: string;
  log?: (line: string) => void;
  /** A server unknown for this long is probed (default 15 s: well past a heartbeat, 10 s). */
  stuckAfterMs?: number;
  /** How often the watchdog looks (default 5 s). */
  everyMs?: number;
  /** Driver options (tests use them to make a stuck client on purpose). */
  clientOptions?: MongoClientOptions;
}

export function watchedMongoClient(url: string, options: WatchdogOptions): WatchedMongo {
  const log = options.log ?? console.error;
  const stuckAfterMs = options.stuckAfterMs ?? 15_000;
  const client = new MongoClient(url, options.clientOptions);

  // Public driver events only: when the server last turned unknown, and the monitor's last sign of life.
  let unknownSince: number | undefined;
  let unknownBecause = "";
  let lastHeartbeat = Date.now();
  client.on("serverDescriptionChanged", (e) => {
    if (e.newDescription.type === "Unknown") {
      unknownSince ??= Date.now();
      unknownBecause = e.newDescription.error?.message ?? unknownBecause;
    } else {
      unknownSince = undefined;
    }
  });
  for (const event of ["serverHeartbeatStarted", "serverHeartbeatSucceeded", "serverHeartbeatFailed"] as const)
    client.on(event, () => (lastHeartbeat = Date.now()));

  let reconnects = 0;
  let busy = false;
  let closed = false;
  const look = async () => {
    if (busy || closed || unknownSince === undefined || Date.now() - unknownSince < stuckAfterMs) return;
    busy = true;
    try {
      await probeMongo(url);
    } catch {
      return; // the server is down for everyone: the driver reconnects by itself once it is back
    } finally {
      busy = false;
    }
    if (closed || unknownSince === undefined) return;
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    log(
      `MongoDB (${options.name}): the server answers a new connection, but this client has seen it unknown for ` +
        `${s(Date.now() - unknownSince)} ("${unknownBecause}"; last heartbeat ${s(Date.now() - lastHeartbeat)} ago); reconnecting the client`,
    );
    busy = true;
    try {
      await client.close();
      unknownSince = undefined;
      lastHeartbeat = Date.now();
      await client.connect();
      reconnects++;
      log(`MongoDB (${options.name}): reconnected`);
    } catch (e) {
      log(`MongoDB (${options.name}): reconnecting failed (${(e as Error).message}); trying again shortly`);
      unknownSince ??= Date.now() - stuckAfterMs; // look again at the next tick
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void look(), options.everyMs ?? 5_000);
  timer.unref();

  return {
    client,
    reconnects: () => reconnects,
    async close() {
      closed = true;
      clearInterval(timer);
      await client.close();
    },
  };
}
