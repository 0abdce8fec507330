/**
 * Runs a benchmark subprocess and measures it: wall time from outside, peak
 * resident memory and CPU time (`/usr/bin/time -f "%M %U %S"`, when it
 * exists; Deno cannot read `/proc/<pid>/status` without `--allow-all`), and
 * the last JSON line it printed on stdout.
 *
 * @module
 */
import { join } from "node:path";

/**
 * What one measured subprocess did.
 *
 * @example
 * ```ts ignore
 * const m: Measured = await measure("deno", ["eval", "0"], { scratch: "/tmp" });
 * ```
 */
export interface Measured {
  /** Wall time in seconds, from spawn to exit. */
  seconds: number;
  /** Peak resident set size in bytes (0 without `/usr/bin/time`). */
  peakRssBytes: number;
  /** User + system CPU seconds (only with `/usr/bin/time`). */
  cpuSeconds?: number;
  /** Exit code. */
  code: number;
  /** Captured stdout. */
  stdout: string;
  /** Captured stderr (last 4000 characters). */
  stderr: string;
  /** The last stdout line that parses as a JSON object, if any. */
  json?: Record<string, unknown>;
}

const TIME_BIN = "/usr/bin/time";

let timeAvailable: boolean | undefined;

async function hasTimeBinary(): Promise<boolean> {
  if (timeAvailable === undefined) {
    try {
      timeAvailable = (await Deno.stat(TIME_BIN)).isFile;
    } catch {
      timeAvailable = false;
    }
  }
  return timeAvailable;
}

/**
 * Runs `cmd args...` and measures it. `scratch` is a folder for the
 * `/usr/bin/time` report.
 *
 * @example
 * ```ts ignore
 * const m = await measure(Deno.execPath(), ["run", "cli.ts", "--version"], { scratch: "/tmp" });
 * console.log(m.seconds, m.peakRssBytes);
 * ```
 */
export async function measure(
  cmd: string,
  args: string[],
  options: { scratch: string; cwd?: string; env?: Record<string, string> },
): Promise<Measured> {
  const useTime = await hasTimeBinary();
  const report = join(options.scratch, `time_${crypto.randomUUID()}.txt`);
  const argv = useTime ? ["-f", "%M %U %S", "-o", report, cmd, ...args] : args;
  const t0 = performance.now();
  const child = new Deno.Command(useTime ? TIME_BIN : cmd, {
    args: argv,
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = await child.output();
  const seconds = (performance.now() - t0) / 1000;
  let peakRssBytes = 0;
  let cpuSeconds: number | undefined;
  if (useTime) {
    try {
      const text = await Deno.readTextFile(report);
      const last = text.trim().split("\n").pop() ?? "";
      const [kb, user, sys] = last.split(" ").map(Number);
      peakRssBytes = kb * 1024;
      cpuSeconds = user + sys;
      await Deno.remove(report);
    } catch { /* report missing: leave 0 */ }
  }
  const dec = new TextDecoder();
  const stdout = dec.decode(out.stdout);
  const stderr = dec.decode(out.stderr);
  let json: Record<string, unknown> | undefined;
  for (const line of stdout.trim().split("\n").reverse()) {
    if (!line.startsWith("{")) continue;
    try {
      json = JSON.parse(line);
      break;
    } catch { /* not JSON */ }
  }
  return {
    seconds,
    peakRssBytes,
    cpuSeconds,
    code: out.code,
    stdout,
    stderr: stderr.slice(-4000),
    json,
  };
}

/**
 * The median of a list of numbers (mean of the middle two for an even count).
 *
 * @example
 * ```ts ignore
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
