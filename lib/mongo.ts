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
 * The rule: when the client has seen its server as unknown for `stuckAfterMs`, its monitor has
 * not started, passed or failed a check for as long (a live one checks at least every heartbeat,
 * 10 s), and a new connection to the same URL answers (infra/probes.ts `probeMongo`), the client
 * is stuck, not the server; it is closed and connected again. While the server really is down the
 * probe fails too, and a monitor still checking will find the server itself once it is back: in
 * both cases nothing is done.
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
  /** A server unknown, and a monitor silent, for this long is probed (default 15 s: past a heartbeat, 10 s). */
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
  /** Set when a reconnection failed: the next look tries again without waiting out the thresholds. */
  let retry = false;
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  /** Unknown and silent for long enough: worth a probe (asked again after it, as the monitor may wake). */
  const looksStuck = () => {
    if (closed) return false;
    if (retry) return true;
    const now = Date.now();
    return unknownSince !== undefined && now - unknownSince >= stuckAfterMs && now - lastHeartbeat >= stuckAfterMs;
  };

  const reconnectIfStuck = async () => {
    try {
      await probeMongo(url);
    } catch {
      return; // the server is down for everyone: the driver reconnects by itself once it is back
    }
    if (!looksStuck()) return;
    log(
      `MongoDB (${options.name}): the server answers a new connection, but this client has seen it unknown for ` +
        `${s(Date.now() - (unknownSince ?? Date.now()))} ("${unknownBecause}") and its monitor has not checked it for ` +
        `${s(Date.now() - lastHeartbeat)}; reconnecting the client`,
    );
    retry = false;
    try {
      await client.close();
      unknownSince = undefined;
      lastHeartbeat = Date.now();
      await client.connect();
      reconnects++;
      log(`MongoDB (${options.name}): reconnected`);
    } catch (e) {
      log(`MongoDB (${options.name}): reconnecting failed (${(e as Error).message}); trying again shortly`);
      retry = true;
    }
  };

  const look = async () => {
    if (busy || !looksStuck()) return;
    busy = true;
    try {
      await reconnectIfStuck();
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
