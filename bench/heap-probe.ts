/**
 * Preloaded into the soak's children (`node --expose-gc --import ./bench/heap-probe.ts ...`) so the
 * soak can tell a leak from the garbage collector's schedule. RSS alone cannot: V8 lets its heap grow
 * before it collects, so a process that retains nothing extra can still show RSS rising for minutes.
 *
 * On SIGUSR2 the process runs a full collection and writes what is still alive to
 * `$POLITY_HEAP_PROBE_DIR/<pid>.json`: heapUsed (JavaScript objects reachable after the collection),
 * external and arrayBuffers (Buffers and other memory held by JavaScript objects outside the heap),
 * heapTotal (what V8 keeps committed for its heap after that collection) and rss, in bytes, with the
 * time, and malloced (what V8 itself holds from malloc outside its heap). RSS minus heapTotal is what
 * the process holds outside V8's heap (native memory). A retained-memory leak shows as heapUsed +
 * external growing from one probe to the next; what V8 frees in a full collection does not count.
 *
 * Nothing here runs in production: `npm start` never loads this file.
 */
import fs from "node:fs";
import path from "node:path";
import v8 from "node:v8";

const dir = process.env.POLITY_HEAP_PROBE_DIR;
const gc = (globalThis as { gc?: () => void }).gc;

if (dir && gc) {
  process.on("SIGUSR2", () => {
    const started = performance.now();
    gc();
    const m = process.memoryUsage();
    const file = path.join(dir, `${process.pid}.json`);
    const line = JSON.stringify({
      at: Date.now(),
      gcMs: Math.round(performance.now() - started),
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      // What V8 itself holds from malloc outside its heap (compiler zones and the like).
      malloced: v8.getHeapStatistics().malloced_memory,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      rss: m.rss,
    });
    // Written aside and renamed, so the soak never reads half a file.
    fs.writeFileSync(`${file}.tmp`, line);
    fs.renameSync(`${file}.tmp`, file);
  });
} else if (dir) {
  console.error("heap-probe: start node with --expose-gc, or the probe cannot collect before it measures");
}
