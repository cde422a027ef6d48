/** How Polity's long-running entry points start, log and stop, written once. */
import { pathToFileURL } from "node:url";

/** A timestamped log line on stdout. */
export function logLine(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}

/** Runs `main` when `moduleUrl` is the script node was started with; a failure prints its message and exits 1. */
export function runIfMain(moduleUrl: string, main: () => Promise<void>): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? "").href) return;
  main().catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  });
}

/** Stops cleanly on SIGINT or SIGTERM, then exits. */
export function stopOnSignal(stop: () => Promise<unknown>): void {
  const once = async () => {
    logLine("stopping");
    await stop();
    process.exit(0);
  };
  process.once("SIGINT", () => void once());
  process.once("SIGTERM", () => void once());
}
