/**
 * The `incremental` pair of `deno task bench`: a lake of the e-commerce
 * example at the bench's scale, then a 1% increment (one new landing file
 * of `scale / 100` orders). Side A is Sluice's full run over the lake's
 * files plus the increment (a fresh lake); side B is Sluice's incremental
 * run: the lake as it was before the increment, then the increment. A
 * no-op run (nothing new landed) right after each incremental run is
 * measured too. All three are `sluice run` subprocesses with the example's
 * checks and full profiling, the way a nightly cron runs it; wall time from
 * spawn to exit.
 *
 * The landing folder is the cached demo data hard-linked into the work
 * folder (no copy), so the increment file never touches the cache.
 *
 * @module
 */
import { join } from "node:path";
import { measure, type Measured, median } from "./_measure.ts";
import { writeProject } from "./_project.ts";

/**
 * What {@linkcode incrementalPair} needs from the bench.
 *
 * @example
 * ```ts ignore
 * const r = await incrementalPair({ dataDir, work, scale, runs: 3, cli, log, engine });
 * ```
 */
export interface IncrementalOptions {
  /** Cached demo data folder (holds `landing/`). */
  dataDir: string;
  /** Scratch folder for this pair (removed first). */
  work: string;
  /** Orders in the lake before the increment. */
  scale: number;
  /** Runs per side. */
  runs: number;
  /** `deno` arguments that run `cli.ts` with the given arguments. */
  cli: (args: string[]) => string[];
  /** Progress lines (stderr). */
  log: (text: string) => void;
  /** Overrides of `engine:` shared with the other pairs. */
  engine?: Record<string, unknown>;
  /** Repository folder (the subprocesses' working folder). */
  cwd: string;
}

/** Hard-links every file of `from` into `to` (folders made), recursively. */
async function linkTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory) await linkTree(src, dst);
    else if (e.isFile) await Deno.link(src, dst);
  }
}

/** Copies a lake folder: files copied, symbolic links recreated as links. */
async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isSymlink) await Deno.symlink(await Deno.readLink(src), dst);
    else if (e.isDirectory) await copyTree(src, dst);
    else if (e.isFile) await Deno.copyFile(src, dst);
  }
}

async function rmrf(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/**
 * Writes `orders_increment.csv`: the first `rows` orders of the orders
 * files (in name order, as many files as it takes) with new order ids
 * (above every id of the lake), same dates, customers and products, so the
 * increment lands in existing partitions the way a night's orders do.
 * Returns how many orders it wrote.
 */
async function writeIncrement(
  landing: string,
  options: { rows: number; idOffset: number },
): Promise<number> {
  const files = (await Array.fromAsync(Deno.readDir(join(landing, "orders"))))
    .map((e) => e.name).filter((n) => n.startsWith("orders_") && n.endsWith(".csv")).sort();
  let header: string | undefined;
  const out: string[] = [];
  for (const file of files) {
    const lines = (await Deno.readTextFile(join(landing, "orders", file))).split("\n");
    header ??= lines[0];
    for (let i = 1; i < lines.length && out.length < options.rows; i++) {
      const line = lines[i];
      if (line === "") continue;
      const comma = line.indexOf(",");
      out.push(`${options.idOffset + out.length + 1}${line.slice(comma)}`);
    }
    if (out.length >= options.rows) break;
  }
  await Deno.writeTextFile(
    join(landing, "orders", "orders_increment.csv"),
    [header ?? "", ...out].join("\n") + "\n",
  );
  return out.length;
}

/** Median of a side's wall times. */
function med(runs: Measured[]): number {
  return median(runs.map((r) => r.seconds));
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function check(m: Measured, what: string): void {
  if (m.code !== 0) {
    throw new Error(`${what} exited with ${m.code}:\n${m.stderr}\n${m.stdout.slice(-2000)}`);
  }
}

/**
 * Runs the pair and returns its entry for `results.json` (`pairs.incremental`).
 *
 * @example
 * ```ts ignore
 * pairs.incremental = await incrementalPair({ dataDir, work, scale, runs, cli, log, cwd });
 * ```
 */
export async function incrementalPair(o: IncrementalOptions): Promise<Record<string, unknown>> {
  await rmrf(o.work);
  const data = join(o.work, "data");
  await linkTree(join(o.dataDir, "landing"), join(data, "landing"));
  const project = join(o.work, "project");
  const config = await writeProject({
    dataDir: data,
    dir: project,
    checks: true,
    profiling: true,
    engine: o.engine,
  });
  const lake = join(project, "lake");
  const snapshot = join(o.work, "lake_before_increment");
  const run = async (what: string) => {
    const m = await measure(Deno.execPath(), o.cli(["run", "-c", config]), {
      scratch: o.work,
      cwd: o.cwd,
    });
    check(m, what);
    return m;
  };
  o.log(`incremental: building the lake at ${o.scale.toLocaleString("en-US")} orders`);
  const built = await run("incremental: first run");
  await copyTree(lake, snapshot);
  const rows = await writeIncrement(join(data, "landing"), {
    rows: Math.max(1, Math.round(o.scale / 100)),
    idOffset: 10 * o.scale + 10,
  });
  o.log(`  lake built in ${built.seconds.toFixed(2)} s; increment: ${rows} orders (1%)`);

  const full: Measured[] = [];
  const incremental: Measured[] = [];
  const noop: Measured[] = [];
  const line = (side: string, i: number, m: Measured) =>
    o.log(
      `  incremental ${side} run ${i + 1}/${o.runs}: ${m.seconds.toFixed(2)} s` +
        (m.cpuSeconds !== undefined ? `, ${m.cpuSeconds.toFixed(2)} s CPU` : ""),
    );
  for (let i = 0; i < o.runs; i++) {
    await rmrf(lake);
    full.push(await run("incremental: full run"));
    line("full (fresh lake)", i, full[i]);
    await rmrf(lake);
    await copyTree(snapshot, lake);
    incremental.push(await run("incremental: incremental run"));
    line("1% increment", i, incremental[i]);
    noop.push(await run("incremental: no-op run"));
    line("no-op", i, noop[i]);
  }
  const a = med(full);
  const b = med(incremental);
  const n = med(noop);
  const side = (name: string, runs: Measured[]) => ({
    name,
    command: "deno run ... cli.ts run -c pipeline.yaml (example checks and profiling on)",
    median_seconds: round(median(runs.map((r) => r.seconds))),
    runs_seconds: runs.map((r) => round(r.seconds)),
    ...(runs.every((r) => r.cpuSeconds !== undefined)
      ? { median_cpu_seconds: round(median(runs.map((r) => r.cpuSeconds!))) }
      : {}),
  });
  const target = o.scale >= 10_000_000 ? 0.05 : 0.15;
  const result = {
    scale: o.scale,
    increment_orders: rows,
    a: side("full run (fresh lake, lake + increment)", full),
    b: side("incremental run (1% increment on the lake)", incremental),
    noop: side("no-op run (nothing new landed)", noop),
    ratio: round(b / a),
    target_ratio: target,
    met: b / a <= target,
    noop_target_seconds: 0.5,
    noop_met: n <= 0.5,
  };
  await rmrf(o.work);
  return result;
}
