/**
 * Progress of the native stack's downloads (Maven's ~160 MB of Kafka and registry jars, apt-get
 * packages, Go modules) on stderr: bytes and percent, one line per update, at most one every ~2 s
 * or each further 10 %. On a terminal each line overwrites the last; elsewhere (a log, CI) it is a
 * plain line, with no control characters.
 */
import fs from "node:fs";
import path from "node:path";

const UNITS: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9 };

/** "12.3 MB" (decimal units, as Maven and apt-get print them). */
export function formatBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(0)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

function bytesOf(amount: string, unit: string): number {
  return Math.round(Number(amount) * (UNITS[unit] ?? 1));
}

export interface ProgressOptions {
  /** Starts every line: "[stack] kafka: downloading". */
  label: string;
  /** Expected size when the tool does not say (Kafka's jars); the percent is capped at 99 until done. */
  expectedBytes?: number;
  intervalMs?: number;
  write?: (text: string) => void;
  isTTY?: boolean;
  now?: () => number;
}

export class DownloadProgress {
  private lastAt: number;
  private lastDecile = -1;
  private lastLine = "";
  private readonly started: number;
  private readonly write: (text: string) => void;
  private readonly tty: boolean;
  private readonly now: () => number;

  constructor(private readonly options: ProgressOptions) {
    this.now = options.now ?? Date.now;
    this.write = options.write ?? ((text) => process.stderr.write(text));
    this.tty = options.isTTY ?? process.stderr.isTTY === true;
    this.started = this.now();
    this.lastAt = this.started;
  }

  /** `done` bytes so far; `total` when known (else expectedBytes). Prints when due. */
  update(done: number, total?: number): void {
    const expected = total ?? this.options.expectedBytes;
    const pct = expected ? Math.min(total ? 100 : 99, Math.floor((done * 100) / expected)) : undefined;
    const decile = pct === undefined ? -1 : Math.floor(pct / 10);
    const now = this.now();
    const due = now - this.lastAt >= (this.options.intervalMs ?? 2000) || decile > this.lastDecile;
    if (!due) return;
    this.lastAt = now;
    this.lastDecile = Math.max(decile, this.lastDecile);
    const of = expected ? ` of ${total ? "" : "about "}${formatBytes(expected)}` : "";
    this.print(`${this.options.label}: ${formatBytes(done)}${of}${pct === undefined ? "" : ` (${pct}%)`}`);
  }

  /** The closing line: what came down and how long it took. */
  finish(done: number): void {
    const seconds = ((this.now() - this.started) / 1000).toFixed(0);
    this.print(`${this.options.label}: ${formatBytes(done)} downloaded in ${seconds} s (100%)`, true);
  }

  private print(line: string, last = false): void {
    if (line === this.lastLine) return;
    this.lastLine = line;
    // A terminal gets one line rewritten in place; anything else a plain line per update.
    if (this.tty) this.write(`\r\x1b[K${line}${last ? "\n" : ""}`);
    else this.write(`${line}\n`);
  }
}

/**
 * Follows Maven's transfer output (mvn without -q and without -B prints `Progress (n): 4.1/160 MB`
 * lines separated by carriage returns, then `Downloaded from central: URL (160 MB at 9.8 MB/s)`).
 * Returns the output handler and the total downloaded so far.
 */
export function mavenProgress(progress: DownloadProgress): { onOutput: (text: string) => void; done: () => number } {
  let completed = 0;
  let pending = "";
  const onOutput = (text: string) => {
    pending += text;
    const pieces = pending.split(/[\r\n]/);
    pending = pieces.pop() ?? "";
    for (const piece of pieces) {
      const finished = /^Downloaded from [^:]+: \S+ \(([\d.]+) (B|kB|MB|GB)/.exec(piece.trim());
      if (finished) {
        completed += bytesOf(finished[1]!, finished[2]!);
        progress.update(completed);
        continue;
      }
      const inFlight = /^Progress \(\d+\): (.*)$/.exec(piece.trim());
      if (!inFlight) continue;
      // "4.1/160 MB | 12/34 kB": each transfer's done/total; a finished one shows "34 kB".
      let done = 0;
      let total = 0;
      let known = true;
      for (const part of inFlight[1]!.split("|")) {
        const m = /([\d.]+)(?:\/([\d.]+))? (B|kB|MB|GB)/.exec(part);
        if (!m) continue;
        done += bytesOf(m[1]!, m[3]!);
        if (m[2] === undefined) known = false;
        else total += bytesOf(m[2], m[3]!);
      }
      const single = inFlight[1]!.split("|").length === 1 && known && completed === 0;
      // One transfer of known size (the registry's archive) has an exact total; many use the estimate.
      progress.update(completed + done, single ? total : undefined);
    }
  };
  return { onOutput, done: () => completed };
}

/**
 * Follows `apt-get install -q` output without a terminal: "Need to get 17.2 MB of archives." and
 * one "Get:N url ... [190 kB]" line per package as its download starts.
 */
export function aptProgress(progress: DownloadProgress): { onOutput: (text: string) => void; done: () => number } {
  let total: number | undefined;
  let fetched = 0;
  let pending = "";
  const onOutput = (text: string) => {
    pending += text;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const need = /Need to get ([\d.,]+) (B|kB|MB|GB)/.exec(line);
      if (need) total = bytesOf(need[1]!.replace(/,/g, ""), need[2]!);
      const get = /^Get:\d+ .*\[([\d.,]+) (B|kB|MB|GB)\]/.exec(line);
      if (get) {
        fetched += bytesOf(get[1]!.replace(/,/g, ""), get[2]!);
        progress.update(fetched, total);
      }
    }
  };
  return { onOutput, done: () => fetched };
}

/** Bytes under `dir` (files only; a vanished file is skipped). */
export function directoryBytes(dir: string): number {
  let sum = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) sum += directoryBytes(full);
    else if (e.isFile()) {
      try {
        sum += fs.statSync(full).size;
      } catch {
        // removed between readdir and stat
      }
    }
  }
  return sum;
}

/**
 * For a tool that prints no transfer progress (the Go module downloads): the growth of the folder
 * it downloads into, sampled every 2 s until stopped. Returns the stop function (it prints the total).
 */
export function watchDirectoryGrowth(dir: string, progress: DownloadProgress): () => void {
  const before = directoryBytes(dir);
  const timer = setInterval(() => progress.update(Math.max(0, directoryBytes(dir) - before)), 2000);
  timer.unref();
  return () => {
    clearInterval(timer);
    progress.finish(Math.max(0, directoryBytes(dir) - before));
  };
}
