/**
 * `deno task bench`: measures Sluice against the same work done by plain
 * DuckDB SQL, in one invocation, and writes `bench/results.json`.
 *
 * Pairs (each side a fresh subprocess; the sides of a pair run alternately,
 * A B A B ..., `--runs` times each; medians and the ratio B/A are reported):
 *
 * 1. `batch`: the e-commerce example as hand-written SQL
 *    (`bench/baseline_sql.ts`) vs `sluice run` (the CLI) with checks and
 *    profiling off. Wall time of the subprocess, so both sides pay Deno's
 *    start and module loading.
 * 2. `quality`: `sluice run` with the example's checks and full profiling vs
 *    without.
 * 3. `streaming`: the same micro-batch work as plain SQL
 *    (`bench/baseline_stream.ts`) vs Sluice's stream
 *    (`bench/_stream_sluice.ts`: `runStreamPipeline`, trigger
 *    available-now, checkpoint + watermark + DLQ), plus a bulk `read_json`
 *    load of the same files as the floor. Events per second over the time
 *    each process measures from opening its database to closing it.
 * 4. `memory`: peak resident memory (`/usr/bin/time -f %M`; Deno cannot read
 *    `/proc/<pid>/status` without `--allow-all`) of the `sluice run`
 *    subprocesses of pair 1, with the configured
 *    `memory_limit`.
 * 5. `cold_start`: wall time of `sluice --version` and `sluice validate`.
 * 6. `incremental` (`bench/_incremental.ts`): a lake at the bench's scale
 *    plus a 1% increment: Sluice's full run on a fresh lake vs Sluice's
 *    incremental run on the lake as it was, plus a no-op run.
 * 8. Shapes (`bench/_shapes.ts`): `parquet_star` (a 3M-row native-typed
 *    Parquet fact table and a 3,400-row CSV dimension), `wide_ndjson` (50
 *    keys, nested objects and arrays, 100k records) and `many_files` (2,000
 *    CSV files of 50 rows): the shape's work as hand-written SQL
 *    (`bench/baseline_shapes.ts`) vs `sluice run`, checks and profiling off.
 *    `--shape-factor` scales their sizes (independent of `--scale`).
 *
 * Demo and stream data are generated once per seed and scale under
 * `bench/data/` (gitignored). Timing never decides a test; this is a report.
 *
 *   deno task bench [--scale 10000000] [--runs 3] [--pairs batch,quality,streaming,memory,cold_start]
 *     [--pairs parquet_star,wide_ndjson,many_files --shape-factor 0.1]
 *
 * @module
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { join } from "node:path";
import { openEngine, SLUICE_VERSION } from "../mod.ts";
import { incrementalPair } from "./_incremental.ts";
import {
  generateShape,
  type ShapeName,
  shapePipelineYaml,
  SHAPES,
  shapeSize,
  shapeSpec,
} from "./_shapes.ts";
import { jetstreamPair } from "./jetstream.ts";
import { measure, type Measured, median } from "./_measure.ts";
import {
  BENCH_DATA_DIR,
  demoData,
  exampleEngine,
  QUALITY_SWITCHES_EXIST,
  REPO_DIR,
  writeBaselineSpec,
  writeProject,
} from "./_project.ts";
import { STREAM_DELAY_SECONDS, streamData, writeStreamProject } from "./_stream_data.ts";

const PAIRS = [
  "batch",
  "quality",
  "streaming",
  "memory",
  "cold_start",
  "incremental",
  ...SHAPES,
] as const;
type PairName = (typeof PAIRS)[number];

const ENV_ALLOW = "--allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM";

/** Deno arguments that run a repository script the way the `sluice` task does. */
function denoRun(script: string, args: string[], options: { env?: boolean } = {}): string[] {
  return [
    "run",
    `--allow-ffi=${join(REPO_DIR, "node_modules")}`,
    "--allow-read",
    "--allow-write",
    ...(options.env === false ? [] : [ENV_ALLOW]),
    join(REPO_DIR, script),
    ...args,
  ];
}

function log(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${text}\n`));
}

const fmt = (s: number) => s.toFixed(2);

/** One side of a pair: its runs and their median. */
interface Side {
  name: string;
  command: string;
  runs: Measured[];
}

function sideSummary(side: Side, extra: Record<string, unknown> = {}) {
  const secs = side.runs.map((r) => r.seconds);
  const cpu = side.runs.map((r) => r.cpuSeconds).filter((c): c is number => c !== undefined);
  return {
    name: side.name,
    command: side.command,
    median_seconds: round(median(secs)),
    runs_seconds: secs.map((x) => round(x)),
    ...(cpu.length ? { median_cpu_seconds: round(median(cpu)) } : {}),
    peak_rss_bytes: Math.max(...side.runs.map((r) => r.peakRssBytes)),
    ...extra,
  };
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

async function rmrf(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

function failIfBad(m: Measured, what: string): void {
  if (m.code !== 0) {
    throw new Error(`${what} exited with ${m.code}:\n${m.stderr}\n${m.stdout.slice(-2000)}`);
  }
}

/** Stage durations (seconds) and silver counts of the one run in a lake's ledger. */
async function lakeFacts(
  lake: string,
  counted: string[] = ["bronze.orders", "silver.orders", "silver.orders__quarantine"],
): Promise<{ stages: Record<string, number>; runSeconds: number; counts: Record<string, number> }> {
  const db = await openEngine(join(lake, "sluice.duckdb"), { allowedDirectories: [lake] });
  try {
    const stages: Record<string, number> = {};
    for (
      const r of await db.all<{ stage: string; ms: number }>(
        `SELECT stage, max(duration_ms) AS ms FROM _sluice.stage_tables GROUP BY stage`,
      )
    ) stages[r.stage] = r.ms / 1000;
    const run = await db.one<{ ms: number }>(
      `SELECT duration_ms AS ms FROM _sluice.runs WHERE command = 'run' ORDER BY started_at DESC
       LIMIT 1`,
    );
    const counts: Record<string, number> = {};
    for (const t of counted) {
      counts[t] = (await db.one<{ n: number }>(`SELECT count(*) AS n FROM ${t}`))?.n ?? 0;
    }
    return { stages, runSeconds: (run?.ms ?? 0) / 1000, counts };
  } finally {
    db.close();
  }
}

async function duckdbVersion(): Promise<string> {
  const db = await openEngine(":memory:", { allowedDirectories: [BENCH_DATA_DIR] });
  try {
    return String((await db.one<{ v: string }>("SELECT version() AS v"))?.v);
  } finally {
    db.close();
  }
}

function machine(): Record<string, unknown> {
  // /proc files need --allow-all in Deno; --allow-sys gives the same facts.
  return {
    cpus: navigator.hardwareConcurrency,
    cpu_model: os.cpus()[0]?.model?.trim() ?? "unknown",
    memory_bytes: Deno.systemMemoryInfo().total,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    load_average_at_start: Deno.loadavg().map((x) => round(x, 2)),
  };
}

/** Runs `sides` alternately `runs` times each; a side's `args()` resets its state first. */
async function alternate(
  label: string,
  runs: number,
  sides: {
    side: Side;
    args: () => Promise<[string, string[]]>;
    after?: (m: Measured) => Promise<void>;
  }[],
  scratch: string,
): Promise<void> {
  for (let i = 0; i < runs; i++) {
    for (const s of sides) {
      const [cmd, args] = await s.args();
      const m = await measure(cmd, args, { scratch, cwd: REPO_DIR });
      failIfBad(m, `${label}: ${s.side.name}`);
      s.side.runs.push(m);
      log(
        `  ${label} ${s.side.name} run ${i + 1}/${runs}: ${fmt(m.seconds)} s` +
          (m.cpuSeconds !== undefined ? `, ${fmt(m.cpuSeconds)} s CPU` : "") +
          `, peak ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
      );
      await s.after?.(m);
    }
  }
}

/** Row counts of `tables` in a DuckDB file (either side's). */
async function tableCounts(file: string, tables: string[]): Promise<Record<string, number>> {
  const db = await openEngine(file, { allowedDirectories: [BENCH_DATA_DIR] });
  try {
    const counts: Record<string, number> = {};
    for (const t of tables) {
      counts[t] = (await db.one<{ n: number }>(`SELECT count(*)::DOUBLE AS n FROM ${t}`))?.n ?? 0;
    }
    return counts;
  } finally {
    db.close();
  }
}

/** Data of one shape, generated once per seed and size under `bench/data/`. */
async function shapeData(shape: ShapeName, factor: number, seed: number): Promise<string> {
  const size = shapeSize(shape, factor);
  const dir = join(BENCH_DATA_DIR, `${shape}_s${seed}_r${size.rows}_f${size.files}`);
  const marker = join(dir, ".complete");
  if (await Deno.stat(marker).then(() => true, () => false)) return dir;
  await rmrf(dir);
  const t0 = performance.now();
  await generateShape(shape, dir, { size, seed });
  await Deno.writeTextFile(marker, new Date().toISOString());
  log(`  generated ${shape} data in ${fmt((performance.now() - t0) / 1000)} s: ${dir}`);
  return dir;
}

/**
 * One shape pair: the shape's hand-written SQL vs `sluice run` (checks and
 * profiling off), alternating, whole subprocesses; ratio of the medians.
 */
async function shapePair(
  shape: ShapeName,
  o: { factor: number; seed: number; runs: number; work: string },
): Promise<Record<string, unknown>> {
  const size = shapeSize(shape, o.factor);
  log(`${shape}: raw-SQL baseline vs sluice run (${JSON.stringify(size)})`);
  const data = await shapeData(shape, o.factor, o.seed);
  const baseDir = join(o.work, "baseline");
  const projDir = join(o.work, "sluice");
  await Deno.mkdir(projDir, { recursive: true });
  const config = join(projDir, "pipeline.yaml");
  await Deno.writeTextFile(config, shapePipelineYaml(shape, data, projDir));
  const spec = shapeSpec(shape);
  const counted = [...spec.counted, ...spec.gold.map((g) => `gold.${g.name}`)];
  const baseline: Side = {
    name: "raw SQL baseline",
    command: `deno run bench/baseline_shapes.ts --shape ${shape}`,
    runs: [],
  };
  const sluice: Side = { name: "sluice run", command: "deno run ... cli.ts run", runs: [] };
  const stages: Record<string, number>[] = [];
  let sluiceCounts: Record<string, number> | undefined;
  await alternate(shape, o.runs, [
    {
      side: baseline,
      args: async () => {
        await rmrf(baseDir);
        return [
          Deno.execPath(),
          denoRun("bench/baseline_shapes.ts", [
            "--shape",
            shape,
            "--data",
            data,
            "--work",
            baseDir,
          ], { env: false }),
        ];
      },
    },
    {
      side: sluice,
      args: async () => {
        await rmrf(join(projDir, "lake"));
        return [Deno.execPath(), denoRun("cli.ts", ["run", "-c", config])];
      },
      after: async () => {
        const lake = join(projDir, "lake");
        stages.push((await lakeFacts(lake, [])).stages);
        sluiceCounts ??= await tableCounts(join(lake, "sluice.duckdb"), counted);
      },
    },
  ], o.work);
  const a = median(baseline.runs.map((r) => r.seconds));
  const b = median(sluice.runs.map((r) => r.seconds));
  const baseCounts = baseline.runs[0].json?.counts as Record<string, number> | undefined;
  const same = JSON.stringify(baseCounts) === JSON.stringify(sluiceCounts);
  if (!same) {
    log(
      `  WARNING: ${shape} counts differ: ${JSON.stringify(baseCounts)} vs ${
        JSON.stringify(sluiceCounts)
      }`,
    );
  }
  const steps = baseline.runs.map((r) => (r.json?.steps ?? {}) as Record<string, number>);
  const names = [...new Set(stages.flatMap((s) => Object.keys(s)))];
  return {
    size,
    a: sideSummary(baseline, {
      median_steps_seconds: Object.fromEntries(
        Object.keys(steps[0] ?? {}).map((k) => [k, round(median(steps.map((s) => s[k])))]),
      ),
    }),
    b: sideSummary(sluice, {
      median_stage_seconds: Object.fromEntries(
        names.map((n) => [n, round(median(stages.map((s) => s[n] ?? 0)))]),
      ),
    }),
    ratio: round(b / a),
    // CPU seconds (user + system) are the steadier figure on a shared machine.
    cpu_ratio: round(
      median(sluice.runs.map((r) => r.cpuSeconds ?? NaN)) /
        median(baseline.runs.map((r) => r.cpuSeconds ?? NaN)),
    ),
    peak_rss_ratio: round(
      Math.max(...sluice.runs.map((r) => r.peakRssBytes)) /
        Math.max(1, ...baseline.runs.map((r) => r.peakRssBytes)),
    ),
    target_ratio: 1.15,
    met: b / a <= 1.15,
    same_rows: same,
    counts: sluiceCounts,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scale: { type: "string", default: "1000000" },
      seed: { type: "string", default: "42" },
      runs: { type: "string", default: "3" },
      pairs: { type: "string", default: PAIRS.join(",") },
      "stream-events": { type: "string" },
      "stream-files": { type: "string", default: "50" },
      "files-per-batch": { type: "string", default: "5" },
      "memory-limit": { type: "string" },
      "jetstream-events": { type: "string", default: "50000" },
      "shape-factor": { type: "string", default: "1" },
      out: { type: "string", default: join(REPO_DIR, "bench", "results.json") },
    },
  });
  const scale = Number(values.scale);
  const seed = Number(values.seed);
  const runs = Math.max(1, Number(values.runs));
  const chosen = new Set(values.pairs!.split(",").map((p) => p.trim()) as PairName[]);
  for (const p of chosen) {
    // jetstream (a real 3-node nats-server cluster) runs only when asked for.
    if (!PAIRS.includes(p) && (p as string) !== "jetstream") {
      throw new Error(`unknown pair "${p}" (valid: ${PAIRS.join(", ")}, jetstream)`);
    }
  }
  const streamEvents = Number(values["stream-events"] ?? scale);
  const memoryLimit = values["memory-limit"] ?? exampleEngine().memory_limit;
  const work = join(BENCH_DATA_DIR, "work");
  await rmrf(work);
  await Deno.mkdir(work, { recursive: true });
  const started = performance.now();

  log(`sluice bench: scale ${scale.toLocaleString("en-US")} orders, seed ${seed}, ${runs} runs`);
  const needsDemo = [...chosen].some((p) => !(SHAPES as readonly string[]).includes(p));
  const demo = needsDemo
    ? await demoData({ scale, seed })
    : { dir: "", generatedSeconds: undefined };
  if (demo.generatedSeconds !== undefined) {
    log(`  generated demo data in ${fmt(demo.generatedSeconds)} s: ${demo.dir}`);
  }

  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    scale,
    seed,
    runs_per_side: runs,
    machine: machine(),
    versions: {
      sluice: SLUICE_VERSION,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      duckdb: await duckdbVersion(),
    },
    data: demo.dir,
    pairs: {} as Record<string, unknown>,
  };
  const pairs = results.pairs as Record<string, unknown>;
  const engine = { memory_limit: memoryLimit };

  // Projects: off = checks and profiling off; on = the example's checks and full profiling.
  const offDir = join(work, "sluice_off");
  const onDir = join(work, "sluice_on");
  const offConfig = await writeProject({
    dataDir: demo.dir,
    dir: offDir,
    checks: false,
    profiling: false,
    engine,
  });
  const onConfig = await writeProject({
    dataDir: demo.dir,
    dir: onDir,
    checks: true,
    profiling: true,
    engine,
  });
  const sluiceRun = (config: string, dir: string) => async (): Promise<[string, string[]]> => {
    await rmrf(join(dir, "lake"));
    return [Deno.execPath(), denoRun("cli.ts", ["run", "-c", config])];
  };
  const stageRuns: Record<string, Record<string, number>[]> = { off: [], on: [] };
  const inProcess: Record<string, number[]> = { off: [], on: [] };
  let sluiceCounts: Record<string, number> | undefined;
  const collect = (key: "off" | "on", dir: string) => async () => {
    const facts = await lakeFacts(join(dir, "lake"));
    stageRuns[key].push(facts.stages);
    inProcess[key].push(facts.runSeconds);
    sluiceCounts ??= facts.counts;
  };
  const stageMedians = (key: "off" | "on") => {
    const names = [...new Set(stageRuns[key].flatMap((s) => Object.keys(s)))];
    return Object.fromEntries(
      names.map((n) => [n, round(median(stageRuns[key].map((s) => s[n] ?? 0)))]),
    );
  };

  if (chosen.has("cold_start")) {
    log("cold start: sluice --version, sluice validate");
    const version: Side = {
      name: "sluice --version",
      command: "deno run ... cli.ts --version",
      runs: [],
    };
    const validate: Side = {
      name: "sluice validate",
      command: "deno run ... cli.ts validate -c pipeline.yaml",
      runs: [],
    };
    const floor: Side = { name: "deno floor", command: "deno eval 0", runs: [] };
    const coldRuns = Math.max(5, runs);
    await alternate("cold_start", coldRuns, [
      { side: floor, args: () => Promise.resolve([Deno.execPath(), ["eval", "0"]]) },
      {
        side: version,
        args: () => Promise.resolve([Deno.execPath(), denoRun("cli.ts", ["--version"])]),
      },
      {
        side: validate,
        args: () =>
          Promise.resolve([Deno.execPath(), denoRun("cli.ts", ["validate", "-c", offConfig])]),
      },
    ], work);
    const v = median(version.runs.map((r) => r.seconds));
    pairs.cold_start = {
      deno_floor: sideSummary(floor),
      version: sideSummary(version),
      validate: sideSummary(validate),
      target_version_seconds: 0.3,
      met: v <= 0.3,
    };
  }

  if (chosen.has("batch") || chosen.has("memory")) {
    log("batch: raw-SQL baseline vs sluice run (checks and profiling off)");
    const spec = await writeBaselineSpec(join(work, "baseline_spec.json"), { memoryLimit });
    const baseDir = join(work, "baseline");
    const baseline: Side = {
      name: "raw SQL baseline",
      command: "deno run bench/baseline_sql.ts",
      runs: [],
    };
    const sluice: Side = {
      name: "sluice run",
      command: "deno run ... cli.ts run -c pipeline.yaml (quality.checks/profiling false)",
      runs: [],
    };
    await alternate("batch", runs, [
      {
        side: baseline,
        args: async () => {
          await rmrf(baseDir);
          return [
            Deno.execPath(),
            denoRun("bench/baseline_sql.ts", [
              "--data",
              demo.dir,
              "--work",
              baseDir,
              "--spec",
              spec,
            ], {
              env: false,
            }),
          ];
        },
      },
      { side: sluice, args: sluiceRun(offConfig, offDir), after: collect("off", offDir) },
    ], work);
    const a = median(baseline.runs.map((r) => r.seconds));
    const b = median(sluice.runs.map((r) => r.seconds));
    const baseSteps = baseline.runs.map((r) => (r.json?.steps ?? {}) as Record<string, number>);
    const baseCounts = baseline.runs[0].json?.counts as Record<string, number> | undefined;
    const consistent = baseCounts !== undefined && sluiceCounts !== undefined &&
      ["bronze.orders", "silver.orders", "silver.orders__quarantine"].every((t) =>
        baseCounts[t] === sluiceCounts![t]
      );
    if (!consistent) {
      log(
        `  WARNING: row counts differ: baseline ${JSON.stringify(baseCounts)}, sluice ${
          JSON.stringify(sluiceCounts)
        }`,
      );
    }
    pairs.batch = {
      a: sideSummary(baseline, {
        median_steps_seconds: Object.fromEntries(
          Object.keys(baseSteps[0] ?? {}).map((
            k,
          ) => [k, round(median(baseSteps.map((s) => s[k])))]),
        ),
      }),
      b: sideSummary(sluice, {
        median_in_process_seconds: round(median(inProcess.off)),
        median_stage_seconds: stageMedians("off"),
      }),
      ratio: round(b / a),
      target_ratio: 1.15,
      met: b / a <= 1.15,
      same_rows: consistent,
      counts: sluiceCounts,
    };
    if (chosen.has("memory")) {
      const limit = memoryLimit ?? "none";
      const peak = Math.max(...sluice.runs.map((r) => r.peakRssBytes));
      pairs.memory = {
        memory_limit: limit,
        scale,
        peak_rss_bytes: peak,
        peak_rss_gib: round(peak / 2 ** 30),
        baseline_peak_rss_gib: round(
          Math.max(...baseline.runs.map((r) => r.peakRssBytes)) / 2 ** 30,
        ),
        method: "/usr/bin/time %M (max RSS) of each sluice run subprocess of pair batch",
        target_gib: 2.5,
        target_applies_at_scale: 10_000_000,
        met: peak / 2 ** 30 <= 2.5,
      };
    }
  }

  if (chosen.has("quality")) {
    log("quality: sluice run with checks and full profiling vs without");
    const off: Side = { name: "sluice run, checks+profiling off", command: "cli.ts run", runs: [] };
    const on: Side = { name: "sluice run, checks+profiling on", command: "cli.ts run", runs: [] };
    await alternate("quality", runs, [
      { side: off, args: sluiceRun(offConfig, offDir), after: collect("off", offDir) },
      { side: on, args: sluiceRun(onConfig, onDir), after: collect("on", onDir) },
    ], work);
    const a = median(off.runs.map((r) => r.seconds));
    const b = median(on.runs.map((r) => r.seconds));
    pairs.quality = {
      a: sideSummary(off, { median_stage_seconds: stageMedians("off") }),
      b: sideSummary(on, {
        median_in_process_seconds: round(median(inProcess.on)),
        median_stage_seconds: stageMedians("on"),
      }),
      ratio: round(b / a),
      target_ratio: 1.25,
      met: b / a <= 1.25,
      quality_switches_in_schema: QUALITY_SWITCHES_EXIST,
    };
  }

  if (chosen.has("streaming")) {
    const files = Number(values["stream-files"]);
    const perBatch = Number(values["files-per-batch"]);
    log(
      `streaming: ${
        streamEvents.toLocaleString("en-US")
      } events in ${files} files, ${perBatch} per batch`,
    );
    const data = await streamData({ events: streamEvents, files, seed });
    const baseDir = join(work, "stream_baseline");
    const bulkDir = join(work, "stream_bulk");
    const sluiceDir = join(work, "stream_sluice");
    const baseline: Side = {
      name: "plain-SQL micro-batches",
      command: "deno run bench/baseline_stream.ts",
      runs: [],
    };
    const sluice: Side = {
      name: "sluice stream (available-now)",
      command: "deno run bench/_stream_sluice.ts (runStreamPipeline)",
      runs: [],
    };
    const bulk: Side = {
      name: "bulk read_json (floor)",
      command: "deno run bench/baseline_stream.ts --bulk",
      runs: [],
    };
    const baseArgs = (dir: string, extra: string[]) => async (): Promise<[string, string[]]> => {
      await rmrf(dir);
      return [
        Deno.execPath(),
        denoRun("bench/baseline_stream.ts", [
          "--landing",
          data.landing,
          "--work",
          dir,
          "--files-per-batch",
          String(perBatch),
          "--delay-seconds",
          String(STREAM_DELAY_SECONDS),
          ...extra,
        ], { env: false }),
      ];
    };
    await alternate("streaming", runs, [
      { side: baseline, args: baseArgs(baseDir, []) },
      {
        side: sluice,
        args: async () => {
          await rmrf(sluiceDir);
          const config = await writeStreamProject({
            landing: data.landing,
            dir: sluiceDir,
            filesPerBatch: perBatch,
          });
          return [Deno.execPath(), denoRun("bench/_stream_sluice.ts", ["--config", config])];
        },
      },
      { side: bulk, args: baseArgs(bulkDir, ["--bulk"]) },
    ], work);
    const rate = (s: Side) => {
      const inner = s.runs.map((r) => Number(r.json?.seconds ?? r.seconds));
      return { seconds: median(inner), eps: data.events / median(inner) };
    };
    const a = rate(baseline);
    const b = rate(sluice);
    const f = rate(bulk);
    const outcome = (side: Side) => {
      const j = side.runs[0].json ?? {};
      const reasons = Object.entries((j.by_reason ?? {}) as Record<string, number>).sort();
      return JSON.stringify({ read: j.read, written: j.written, reasons });
    };
    const sameRows = outcome(baseline) === outcome(sluice);
    if (!sameRows) log("  WARNING: the two streams wrote different rows");
    pairs.streaming = {
      events: data.events,
      files: data.files,
      files_per_batch: perBatch,
      a: sideSummary(baseline, {
        median_work_seconds: round(a.seconds),
        events_per_second: Math.round(a.eps),
        outcome: baseline.runs[0].json,
      }),
      b: sideSummary(sluice, {
        median_work_seconds: round(b.seconds),
        events_per_second: Math.round(b.eps),
        outcome: sluice.runs[0].json,
      }),
      floor: sideSummary(bulk, {
        median_work_seconds: round(f.seconds),
        events_per_second: Math.round(f.eps),
      }),
      ratio: round(b.eps / a.eps),
      target_ratio: 0.8,
      met: b.eps / a.eps >= 0.8,
      same_rows: sameRows,
    };
  }

  if (chosen.has("incremental")) {
    pairs.incremental = await incrementalPair({
      dataDir: demo.dir,
      work: join(work, "incremental"),
      scale,
      runs,
      cli: (args) => denoRun("cli.ts", args),
      log,
      engine,
      cwd: REPO_DIR,
    });
  }

  for (const shape of SHAPES) {
    if (!chosen.has(shape)) continue;
    pairs[shape] = await shapePair(shape, {
      factor: Number(values["shape-factor"]),
      seed,
      runs,
      work: join(work, shape),
    });
  }

  if ((chosen as Set<string>).has("jetstream")) {
    pairs.jetstream = await jetstreamPair({
      work: join(work, "jetstream"),
      messages: Number(values["jetstream-events"]),
      batch: 1000,
      rounds: runs,
      log,
    });
  }

  results.load_average_at_end = Deno.loadavg().map((x) => round(x, 2));
  results.total_seconds = round((performance.now() - started) / 1000, 1);
  await Deno.writeTextFile(values.out!, JSON.stringify(results, null, 2) + "\n");
  console.log(formatTable(results));
  log(`wrote ${values.out} in ${fmt((performance.now() - started) / 1000)} s`);
  await rmrf(work);
}

/**
 * The results as a Markdown table (the one kept in BENCHMARKS.md).
 *
 * @example
 * ```ts ignore
 * console.log(formatTable(JSON.parse(await Deno.readTextFile("bench/results.json"))));
 * ```
 */
export function formatTable(results: Record<string, unknown>): string {
  // deno-lint-ignore no-explicit-any
  const p = results.pairs as Record<string, any>;
  const rows: string[][] = [["pair", "A", "B", "ratio B/A", "target", "met"]];
  const s = (x: number | undefined) => x === undefined ? "" : `${x.toFixed(2)} s`;
  const eps = (x: number | undefined) =>
    x === undefined ? "" : `${Math.round(x / 1000).toLocaleString("en-US")}k ev/s`;
  if (p.batch) {
    rows.push([
      "1 batch end to end",
      `raw SQL ${s(p.batch.a.median_seconds)}`,
      `sluice run ${s(p.batch.b.median_seconds)}`,
      p.batch.ratio.toFixed(2),
      "≤ 1.15",
      p.batch.met ? "yes" : "no",
    ]);
  }
  if (p.quality) {
    rows.push([
      "2 checks + profiling",
      `off ${s(p.quality.a.median_seconds)}`,
      `on ${s(p.quality.b.median_seconds)}`,
      p.quality.ratio.toFixed(2),
      "≤ 1.25",
      p.quality.met ? "yes" : "no",
    ]);
  }
  if (p.streaming) {
    rows.push([
      "3 streaming",
      `plain SQL ${eps(p.streaming.a.events_per_second)}`,
      `sluice ${eps(p.streaming.b.events_per_second)}`,
      p.streaming.ratio.toFixed(2),
      "≥ 0.80",
      p.streaming.met ? "yes" : "no",
    ]);
    rows.push([
      "3 streaming floor",
      `bulk read_json ${eps(p.streaming.floor.events_per_second)}`,
      "",
      "",
      "",
      "",
    ]);
  }
  if (p.jetstream) {
    for (const w of p.jetstream.workers) {
      rows.push([
        `7 jetstream ${w.workers} worker${w.workers === 1 ? "" : "s"}`,
        `pull-insert-ack ${eps(p.jetstream.plain.events_per_second)}`,
        `sluice ${eps(w.events_per_second)}`,
        w.ratio.toFixed(2),
        w.workers === 1 ? "≥ 0.80" : "",
        w.workers === 1 ? (p.jetstream.met ? "yes" : "no") : "",
      ]);
    }
    const one = p.jetstream.workers[0];
    rows.push([
      "7 jetstream 1 worker, reference",
      `unconfirmed acks ${eps(p.jetstream.plain_unconfirmed.events_per_second)}`,
      `sluice ${eps(one.events_per_second)}`,
      one.ratio_unconfirmed.toFixed(2),
      "",
      "",
    ]);
    const rss = p.jetstream.rss;
    if (rss) {
      rows.push([
        `7 jetstream peak RSS, ${rss.backlog.toLocaleString("en-US")} backlog`,
        `V8 defaults ${rss.v8_defaults.peak_rss_mib.toFixed(0)} MiB`,
        `bounded heap ${rss.peak_rss_mib.toFixed(0)} MiB`,
        "",
        "≤ 300 MiB",
        rss.met ? "yes" : "no",
      ]);
    }
  }
  for (const shape of SHAPES) {
    if (!p[shape]) continue;
    rows.push([
      `8 ${shape}`,
      `raw SQL ${s(p[shape].a.median_seconds)}`,
      `sluice run ${s(p[shape].b.median_seconds)}`,
      p[shape].ratio.toFixed(2),
      "≤ 1.15",
      p[shape].met ? "yes" : "no",
    ]);
  }
  if (p.memory) {
    rows.push([
      "4 peak RSS",
      `memory_limit ${p.memory.memory_limit}`,
      `sluice run ${p.memory.peak_rss_gib.toFixed(2)} GiB`,
      "",
      "≤ 2.5 GiB at 10M",
      p.memory.met ? "yes" : "no",
    ]);
  }
  if (p.cold_start) {
    rows.push([
      "5 cold start",
      `--version ${s(p.cold_start.version.median_seconds)}`,
      `validate ${s(p.cold_start.validate.median_seconds)}`,
      "",
      "--version ≤ 0.30 s",
      p.cold_start.met ? "yes" : "no",
    ]);
  }
  if (p.incremental) {
    rows.push([
      "6 incremental (1%)",
      `full ${s(p.incremental.a.median_seconds)}`,
      `increment ${s(p.incremental.b.median_seconds)}`,
      p.incremental.ratio.toFixed(2),
      `≤ ${p.incremental.target_ratio.toFixed(2)}`,
      p.incremental.met ? "yes" : "no",
    ]);
    rows.push([
      "6 no-op run",
      "",
      `no-op ${s(p.incremental.noop.median_seconds)}`,
      "",
      "≤ 0.50 s",
      p.incremental.noop_met ? "yes" : "no",
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [
    line(rows[0]),
    `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`,
    ...rows.slice(1).map(line),
  ].join("\n");
}

if (import.meta.main) await main();
