/**
 * One instance of scaled tiers for bench/scaling.ts, spawned as a child process: runs the roles of
 * BENCH_ROLES (by default only the worker role) on the bench's topics, each host in its tier's
 * consumer group (`<prefix>polity-<role>`) shared with the other instances, which split the
 * partitions between them, and reports its live partitions and counters to the parent over IPC
 * every 250 ms. Stops when the parent says so or goes away.
 *
 * Environment: the infrastructure URLs (KAFKA_BROKERS, ...), BENCH_PREFIX (topic prefix),
 * BENCH_TOPOLOGY (the topology, JSON), BENCH_INSTANCE (its number, for the client id), BENCH_ROLES.
 */
import { requireUrls } from "../lib/config.js";
import type { Role } from "../processors/domain/directory.js";
import { kafkaClient } from "../lib/kafka.js";
import { startHierarchy } from "../processors/hierarchy.js";
import type { TopologyConfig } from "../processors/topology.js";
import { Codec } from "../schemas/codec.js";

export interface InstanceReport {
  instance: number;
  /** Live partitions of every host of this instance. */
  live: number;
  liveByRole: Record<string, number>;
  inputs: number;
  decisions: number;
  transactions: number;
  /** Partitions restored from the log (each assignment, each failed transaction). */
  restores: number;
  /** CPU seconds this process has used (user + system). */
  cpuSeconds: number;
}

async function main(): Promise<void> {
  const urls = requireUrls();
  const prefix = process.env.BENCH_PREFIX ?? "";
  const instance = Number(process.env.BENCH_INSTANCE ?? 0);
  const topology = JSON.parse(process.env.BENCH_TOPOLOGY ?? "{}") as TopologyConfig;
  const kafka = kafkaClient(urls.kafkaBrokers, `polity-bench-worker-${instance}`, true);
  const log = (line: string) => {
    if (/fail|error|could not/i.test(line)) process.stderr.write(`[worker ${instance}] ${line}\n`);
  };
  const hierarchy = await startHierarchy({
    kafka,
    codec: Codec.forUrl(urls.schemaRegistryUrl),
    topology,
    roles: (process.env.BENCH_ROLES ?? "worker").split(",") as Role[],
    topicPrefix: prefix,
    heartbeats: false,
    log,
  });
  const report = () => {
    const cpu = process.cpuUsage();
    const total = (f: (h: (typeof hierarchy.hosts)[number]) => number) => hierarchy.hosts.reduce((n, h) => n + f(h), 0);
    const r: InstanceReport = {
      instance,
      live: total((h) => h.livePartitions),
      liveByRole: Object.fromEntries(hierarchy.hosts.map((h) => [h.role, h.livePartitions])),
      inputs: total((h) => h.stats.inputs),
      decisions: total((h) => h.stats.decisions),
      transactions: total((h) => h.stats.transactions),
      restores: total((h) => h.stats.restores),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
    process.send?.(r);
  };
  const timer = setInterval(report, 250);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    await hierarchy.stop().catch(() => undefined);
    process.exit(0);
  };
  process.on("message", (m) => void (m === "stop" && stop()));
  process.on("disconnect", () => void stop());
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  report();
}

main().catch((e: Error) => {
  process.stderr.write(`[worker instance] ${e.stack ?? e.message}\n`);
  process.exit(1);
});
