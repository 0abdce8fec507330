/**
 * Where a `sluice run` spends its time: runs the e-commerce example once
 * in-process on cached demo data with every SQL statement timed, then prints
 * the per-stage durations and the slowest statements. With `--explain N`,
 * the N slowest statements that are queries are re-run under
 * `EXPLAIN ANALYZE` on the finished database.
 *
 *   deno run --allow-ffi=./node_modules --allow-read --allow-write \
 *     --allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM bench/profile.ts --scale 1000000
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  type Engine,
  loadConfig,
  type Row,
  type RunContext,
  runPipeline,
  type SqlParam,
  withRun,
} from "../mod.ts";
import { BENCH_DATA_DIR, demoData, writeProject } from "./_project.ts";

/**
 * One timed statement.
 *
 * @example
 * ```ts ignore
 * const slowest = log.sort((a: StatementTiming, b: StatementTiming) => b.cpuMs - a.cpuMs)[0];
 * ```
 */
export interface StatementTiming {
  /** The SQL, whitespace collapsed. */
  sql: string;
  /** Wall time in milliseconds. */
  ms: number;
  /** CPU time of the whole process (all DuckDB threads) in milliseconds. */
  cpuMs: number;
  /** When it finished, `performance.now()` milliseconds. */
  endMs: number;
}

/**
 * Wraps an engine so every `run`, `all`, `one`, `checkpoint` and the COMMIT
 * of every outermost transaction is timed into `log`; everything else passes
 * through to the engine.
 *
 * @example
 * ```ts ignore
 * const log: StatementTiming[] = [];
 * const db = timedEngine(ctx.db, log);
 * ```
 */
export function timedEngine(db: Engine, log: StatementTiming[]): Engine {
  const time = async <T>(sql: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    try {
      return await fn();
    } finally {
      const c = process.cpuUsage(c0);
      log.push({
        sql: sql.replace(/\s+/g, " ").trim(),
        ms: performance.now() - t0,
        cpuMs: (c.user + c.system) / 1000,
        endMs: performance.now(),
      });
    }
  };
  let depth = 0;
  const timed: Record<string, unknown> = {
    run: (sql: string, params?: Record<string, SqlParam>) => time(sql, () => db.run(sql, params)),
    all: <T extends Row = Row>(sql: string, params?: Record<string, SqlParam>) =>
      time(sql, () => db.all<T>(sql, params)),
    one: <T extends Row = Row>(sql: string, params?: Record<string, SqlParam>) =>
      time(sql, () => db.one<T>(sql, params)),
    checkpoint: () => time("CHECKPOINT", () => db.checkpoint()),
    // A second connection (bronze lands two sources at a time) is timed too.
    connect: async () => timedEngine(await db.connect(), log),
    // The COMMIT of an outermost transaction: from the end of its body to its end.
    transaction: async <T>(fn: () => Promise<T>): Promise<T> => {
      const outer = depth++ === 0;
      let bodyEnd = 0;
      let c0 = process.cpuUsage();
      try {
        return await db.transaction(async () => {
          const r = await fn();
          bodyEnd = performance.now();
          c0 = process.cpuUsage();
          return r;
        });
      } finally {
        depth--;
        if (outer && bodyEnd > 0) {
          const c = process.cpuUsage(c0);
          log.push({
            sql: "COMMIT",
            ms: performance.now() - bodyEnd,
            cpuMs: (c.user + c.system) / 1000,
            endMs: performance.now(),
          });
        }
      }
    },
  };
  // Everything else (transactions, appenders, close...) goes to the engine itself.
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (typeof prop === "string" && prop in timed) return timed[prop];
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The e-commerce project on cached demo data, in a fresh folder. */
async function profileProject(
  values: { scale?: string; seed?: string; checks?: boolean; profiling?: boolean },
): Promise<string> {
  const { dir: dataDir } = await demoData({
    scale: Number(values.scale),
    seed: Number(values.seed),
  });
  const dir = join(BENCH_DATA_DIR, "profile_project");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  return await writeProject({
    dataDir,
    dir,
    checks: values.checks ?? false,
    profiling: values.profiling ?? false,
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scale: { type: "string", default: "1000000" },
      seed: { type: "string", default: "42" },
      top: { type: "string", default: "25" },
      checks: { type: "boolean", default: false },
      profiling: { type: "boolean", default: false },
      explain: { type: "string", default: "0" },
      stage: { type: "string" },
      // Any pipeline (e.g. a shape pair's); its lake is removed first.
      config: { type: "string" },
    },
  });
  const file = values.config ?? await profileProject(values);
  const config = await loadConfig(file);
  await withRun(config, { trigger: "bench" }, async (opened) => {
    const log: StatementTiming[] = [];
    const ctx: RunContext = { ...opened, db: timedEngine(opened.db, log) };
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const summary = await runPipeline(ctx);
    const total = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    console.log(
      `run: ${(total / 1000).toFixed(2)} s wall, ${
        ((cpu.user + cpu.system) / 1e6).toFixed(2)
      } s CPU`,
    );
    // Stages run one after another: attribute each statement to the stage
    // whose time span (from the stage durations, in order) holds its end.
    let from = t0 + (total - summary.stages.reduce((a, s) => a + s.durationMs, 0));
    for (const s of summary.stages) {
      const to = from + s.durationMs;
      const inside = log.filter((l) => l.endMs > from && l.endMs <= to + 1);
      const sqlWall = inside.reduce((a, l) => a + l.ms, 0);
      const sqlCpu = inside.reduce((a, l) => a + l.cpuMs, 0);
      console.log(
        `  ${s.stage.padEnd(10)} ${(s.durationMs / 1000).toFixed(2)} s ` +
          `(about ${inside.length} statements, ${(sqlWall / 1000).toFixed(2)} s wall / ` +
          `${(sqlCpu / 1000).toFixed(2)} s CPU in SQL)`,
      );
      if (values.stage === s.stage) {
        for (const l of inside) {
          console.log(
            `      ${(l.ms / 1000).toFixed(3)} ${(l.cpuMs / 1000).toFixed(3)} ${
              l.sql.slice(0, 110)
            }`,
          );
        }
      }
      from = to;
    }
    const sqlMs = log.reduce((a, s) => a + s.ms, 0);
    const sqlCpu = log.reduce((a, s) => a + s.cpuMs, 0);
    console.log(
      `SQL statements: ${log.length}, ${(sqlMs / 1000).toFixed(2)} s wall, ` +
        `${(sqlCpu / 1000).toFixed(2)} s CPU in SQL`,
    );
    console.log("    wall      cpu  statement");
    const top = [...log].sort((a, b) => b.cpuMs - a.cpuMs).slice(0, Number(values.top));
    for (const s of top) {
      console.log(
        `${(s.ms / 1000).toFixed(3).padStart(8)} ${(s.cpuMs / 1000).toFixed(3).padStart(8)}  ${
          s.sql.slice(0, 150)
        }`,
      );
    }
    const explain = Number(values.explain);
    if (explain > 0) {
      // Queries, and the SELECT inside CREATE TABLE ... AS (its inputs still exist).
      const queries = top.map((s) =>
        /^(SELECT|WITH)\b/i.test(s.sql)
          ? s.sql
          : /^CREATE (?:OR REPLACE )?(?:TEMP )?TABLE \S+ AS (.*)$/is.exec(s.sql)?.[1]
      ).filter((q): q is string => q !== undefined).slice(0, explain);
      for (const q of queries) {
        console.log(`\n=== EXPLAIN ANALYZE ${q.slice(0, 120)}`);
        const rows = await opened.db.all(`EXPLAIN ANALYZE ${q}`).catch((e) => [
          { explain_value: String(e) },
        ]);
        for (const r of rows) console.log(String(r.explain_value ?? JSON.stringify(r)));
      }
    }
  });
}

if (import.meta.main) await main();
