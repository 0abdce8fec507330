/**
 * Gold: business tables from SQL models. The tables a model reads are found
 * in DuckDB's own parse tree (`json_serialize_sql`), the build order comes
 * from those references, and a cycle or an unknown table is a config error
 * naming it. Each model is built in its own transaction.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { GoldModelConfig, PipelineConfig } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import {
  CancelledError,
  ConfigError,
  type ConfigProblem,
  EngineError,
  SandboxError,
  TimedOutError,
} from "../core/errors.ts";
import { ident, literal, qualified } from "../core/quote.ts";
import type { RunContext, StageResult } from "../core/run_context.ts";
import { checkSql, guardSql, sqlPosition } from "../core/sql_guard.ts";
import { affectedRowsSql, keySql, modelKeys, planIncremental } from "./_gold_incremental.ts";
import type { SilverChange } from "./silver.ts";
import { tableColumns } from "./_catalog.ts";

/** A table a model reads. */
export interface TableRef {
  /** Schema as written (empty when unqualified). */
  schema: string;
  /** Table name as written. */
  table: string;
}

function collectRefs(node: unknown, refs: TableRef[], ctes: Set<string>): void {
  if (Array.isArray(node)) {
    for (const n of node) collectRefs(n, refs, ctes);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const obj = node as Record<string, unknown>;
  if (obj.type === "BASE_TABLE" && typeof obj.table_name === "string") {
    refs.push({ schema: String(obj.schema_name ?? ""), table: obj.table_name });
  }
  const cteMap = obj.cte_map as { map?: { key: string }[] } | undefined;
  for (const entry of cteMap?.map ?? []) ctes.add(entry.key.toLowerCase());
  for (const v of Object.values(obj)) collectRefs(v, refs, ctes);
}

/**
 * Parses a model's SQL with DuckDB and returns the tables it reads (CTE names
 * excluded). Throws {@linkcode EngineError} on a syntax error.
 *
 * @example
 * ```ts ignore
 * await modelRefs(db, "select * from orders join customers using (id)");
 * // [{ schema: "", table: "orders" }, { schema: "", table: "customers" }]
 * ```
 */
export async function modelRefs(db: Engine, sql: string): Promise<TableRef[]> {
  const row = await db.one<{ j: string }>(`SELECT json_serialize_sql(${literal(sql)}) AS j`);
  const parsed = JSON.parse(row?.j ?? "{}") as {
    error?: boolean;
    error_message?: string;
    statements?: unknown[];
  };
  if (parsed.error) throw new EngineError(parsed.error_message ?? "cannot parse SQL");
  if ((parsed.statements ?? []).length !== 1) {
    throw new EngineError("a model must be exactly one SELECT statement");
  }
  const refs: TableRef[] = [];
  const ctes = new Set<string>();
  collectRefs(parsed.statements, refs, ctes);
  const seen = new Set<string>();
  return refs.filter((r) => {
    const k = `${r.schema}.${r.table}`.toLowerCase();
    if ((r.schema === "" && ctes.has(r.table.toLowerCase())) || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** A model with its resolved dependencies. */
export interface PlannedModel {
  /** Model name. */
  name: string;
  /** Model config. */
  model: GoldModelConfig;
  /** Gold models it reads. */
  dependsOn: string[];
  /** Silver tables it reads. */
  reads: string[];
}

function problem(config: PipelineConfig, name: string, message: string): ConfigProblem {
  const path = `gold.${name}.sql`;
  const at = config.locate?.(path);
  return { file: config.file, line: at?.line ?? 0, col: at?.col ?? 0, path, message };
}

/**
 * Resolves every model's references and returns the models in build order.
 * Unknown tables, cycles and SQL errors are {@linkcode ConfigError}s.
 *
 * @example
 * ```ts ignore
 * const order = await planGold(db, config);
 * const shown = order.map((m) => m.name);
 * ```
 */
export async function planGold(db: Engine, config: PipelineConfig): Promise<PlannedModel[]> {
  const { order, problems } = await resolveGold(db, config);
  if (problems.length > 0) throw new ConfigError(problems);
  return order;
}

/**
 * Like {@linkcode planGold} but returns the problems instead of throwing; the
 * order holds only the models whose references (and dependencies) resolved.
 *
 * @example
 * ```ts ignore
 * const { order, problems } = await resolveGold(db, config);
 * ```
 */
export async function resolveGold(
  db: Engine,
  config: PipelineConfig,
): Promise<{ order: PlannedModel[]; problems: ConfigProblem[] }> {
  const problems: ConfigProblem[] = [];
  const broken = new Set<string>();
  const silverNames = new Set(Object.keys(config.silver).map((s) => s.toLowerCase()));
  const goldNames = new Map(Object.keys(config.gold).map((g) => [g.toLowerCase(), g]));
  const models = new Map<string, PlannedModel>();
  for (const [name, model] of Object.entries(config.gold)) {
    let refs: TableRef[];
    try {
      refs = await modelRefs(db, model.sql);
    } catch (e) {
      // A stop (signal, time limit) interrupting the parse is the run's end, not a SQL problem.
      if (e instanceof CancelledError || e instanceof TimedOutError) throw e;
      problems.push(problem(config, name, `cannot parse SQL: ${(e as Error).message}`));
      broken.add(name);
      continue;
    }
    const unsafe = await checkSql(db, model.sql);
    if (unsafe.length > 0) {
      for (const p of unsafe) {
        const at = p.offset === undefined ? "" : ` (SQL ${sqlPosition(model.sql, p.offset)})`;
        problems.push(problem(config, name, `refused: the SQL ${p.message}${at}`));
      }
      broken.add(name);
      continue;
    }
    if (model.materialized === "incremental") {
      const { problems: why } = await planIncremental(db, model, silverNames);
      if (why.length > 0) {
        const keys = modelKeys(model).join(", ");
        problems.push(
          problem(
            config,
            name,
            `cannot be incremental on ${keys}: the SQL ${why.join("; ")} ` +
              "(rewrite it to group by the key, or use materialized: table)",
          ),
        );
        broken.add(name);
        continue;
      }
    }
    const planned: PlannedModel = { name, model, dependsOn: [], reads: [] };
    for (const ref of refs) {
      const schema = ref.schema.toLowerCase();
      const table = ref.table.toLowerCase();
      if ((schema === "" || schema === "gold") && goldNames.has(table)) {
        planned.dependsOn.push(goldNames.get(table)!);
      } else if ((schema === "" || schema === "silver") && silverNames.has(table)) {
        planned.reads.push(table);
      } else if (schema === "bronze" && config.sources[ref.table]) {
        planned.reads.push(`bronze.${ref.table}`);
      } else {
        broken.add(name);
        const known = [...silverNames, ...goldNames.values()].join(", ");
        problems.push(
          problem(
            config,
            name,
            `reads unknown table "${ref.schema ? `${ref.schema}.` : ""}${ref.table}" ` +
              `(declared: ${known || "none"})`,
          ),
        );
      }
    }
    models.set(name, planned);
  }
  const order: PlannedModel[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === "done") return;
    if (state.get(name) === "visiting") {
      const cycle = [...path.slice(path.indexOf(name)), name].join(" -> ");
      problems.push(problem(config, name, `models form a cycle: ${cycle}`));
      broken.add(name);
      return;
    }
    const m = models.get(name);
    if (!m) return;
    state.set(name, "visiting");
    for (const dep of m.dependsOn) {
      if (dep === name) {
        problems.push(problem(config, name, `model reads itself`));
        broken.add(name);
        continue;
      }
      visit(dep, [...path, name]);
      if (broken.has(dep)) broken.add(name);
    }
    state.set(name, "done");
    if (!broken.has(name)) order.push(m);
  };
  for (const name of Object.keys(config.gold)) if (!models.has(name)) broken.add(name);
  for (const name of models.keys()) visit(name, []);
  return { order: order.filter((m) => !broken.has(m.name)), problems };
}

/**
 * Options of {@linkcode gold}.
 *
 * @example
 * ```ts ignore
 * await gold(ctx, { changes: [], fullRefresh: true });
 * ```
 */
export interface GoldOptions {
  /** Only these models. */
  models?: string[];
  /**
   * What this run's silver stage changed; without it every incremental
   * model is rebuilt in full (it cannot know what changed).
   */
  changes?: SilverChange[];
  /** Rebuild every model in full (`sluice run --full-refresh`). */
  fullRefresh?: boolean;
}

/** How one model is built this run, and why. */
interface Build {
  how: "full" | "incremental" | "unchanged";
  reason: string;
  /** Temp table (quoted) of the affected keys, for `incremental`. */
  affected?: string;
  keys?: string[];
  /** Silver table → its key expressions: the tables read only at the affected keys. */
  inputs?: Map<string, Record<string, unknown>[]>;
}

async function ensureGoldState(db: Engine): Promise<void> {
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.gold_state (
    model VARCHAR PRIMARY KEY, fingerprint VARCHAR, silver_versions VARCHAR)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.silver_versions (
    table_name VARCHAR PRIMARY KEY, run_id VARCHAR)`);
  // Per model, the run that last changed its rows and how (for output).
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.gold_versions (
    model VARCHAR PRIMARY KEY, run_id VARCHAR, build VARCHAR)`);
}

function fingerprint(ctx: RunContext, m: PlannedModel): string {
  return JSON.stringify({
    sql: m.model.sql,
    keys: modelKeys(m.model),
    silver: m.reads.map((t) => ctx.config.silver[t] ?? t),
  });
}

async function silverVersions(ctx: RunContext, reads: string[]): Promise<Record<string, string>> {
  const rows = await ctx.db.all<{ t: string; r: string }>(
    `SELECT table_name AS t, run_id AS r FROM _sluice.silver_versions`,
  );
  const out: Record<string, string> = {};
  for (const r of rows) if (reads.includes(r.t.toLowerCase())) out[r.t.toLowerCase()] = r.r;
  return out;
}

/** Decides how an incremental model is built, and computes its affected keys. */
async function chooseBuild(ctx: RunContext, m: PlannedModel, options: GoldOptions): Promise<Build> {
  if (m.model.materialized !== "incremental") return { how: "full", reason: "materialized: table" };
  if (options.fullRefresh) return { how: "full", reason: "--full-refresh" };
  if (!options.changes) return { how: "full", reason: "no silver change set (gold run alone)" };
  if ((await tableColumns(ctx.db, "gold", m.name)).length === 0) {
    return { how: "full", reason: "first build (no gold table yet)" };
  }
  const state = await ctx.db.one<{ f: string; v: string }>(
    `SELECT fingerprint AS f, silver_versions AS v FROM _sluice.gold_state WHERE model = $m`,
    { m: m.name },
  );
  if (!state) return { how: "full", reason: "first incremental build" };
  if (state.f !== fingerprint(ctx, m)) {
    return { how: "full", reason: "the model's SQL, keys or silver schema changed" };
  }
  const before = JSON.parse(state.v) as Record<string, string>;
  const now = await silverVersions(ctx, m.reads);
  const plan = (await planIncremental(ctx.db, m.model, new Set(m.reads))).plan!;
  const parts: string[] = [];
  for (const t of m.reads) {
    const change = options.changes.find((c) => c.table.toLowerCase() === t);
    if (!change) {
      if (before[t] !== now[t]) {
        return { how: "full", reason: `silver.${t} changed in a run that did not build it` };
      }
      continue;
    }
    if (change.full) return { how: "full", reason: `silver.${t} changed in full: ${change.full}` };
    const exprs = plan.keyExprs.get(t);
    if (!exprs) {
      return {
        how: "full",
        reason: `silver.${t} changed and the model's key is not one of its columns`,
      };
    }
    parts.push(await keySql(ctx.db, exprs, change.delta!));
  }
  if (parts.length === 0) return { how: "unchanged", reason: "no silver table it reads changed" };
  const affected = ident(`_gold_keys_${m.name}`);
  for (const p of parts) await guardSql(ctx.db, p, { what: `gold model "${m.name}" keys` });
  await ctx.db.run(
    `CREATE OR REPLACE TEMP TABLE ${affected} AS SELECT DISTINCT * FROM (${
      parts.join(" UNION ALL ")
    })`,
  );
  return {
    how: "incremental",
    reason: "silver changed",
    affected,
    keys: plan.keys,
    inputs: plan.keyExprs,
  };
}

/** Builds one model as {@linkcode chooseBuild} decided; returns the keys replaced (incremental). */
async function buildModel(ctx: RunContext, m: PlannedModel, build: Build): Promise<number> {
  const target = qualified("gold", m.name);
  if (build.how === "full") {
    await ctx.db.run(`CREATE OR REPLACE TABLE ${target} AS ${m.model.sql}`);
    return 0;
  }
  if (build.how === "unchanged") return 0;
  const keys = build.keys!;
  const match = (alias: string) =>
    `EXISTS (SELECT 1 FROM ${build.affected} AS a WHERE ${
      keys.map((k) => `a.${ident(k)} IS NOT DISTINCT FROM ${alias}.${ident(k)}`).join(" AND ")
    })`;
  await ctx.db.run(`DELETE FROM ${target} AS g WHERE ${match("g")}`);
  // The silver tables the key comes from, shadowed by temp views of their
  // rows at the affected keys: the model reads those instead of the whole
  // tables (the outer filter keeps the result right if it names them
  // schema-qualified).
  const views: string[] = [];
  try {
    for (const [t, exprs] of build.inputs ?? []) {
      const rows = await affectedRowsSql(ctx.db, exprs, {
        table: qualified("silver", t),
        affected: build.affected!,
        keys,
      });
      await ctx.db.run(`CREATE OR REPLACE TEMP VIEW ${ident(t)} AS ${rows}`);
      views.push(t);
    }
    await ctx.db.run(
      `INSERT INTO ${target} BY NAME SELECT * FROM (${m.model.sql}) AS m WHERE ${match("m")}`,
    );
  } finally {
    for (const t of views) await ctx.db.run(`DROP VIEW IF EXISTS temp.main.${ident(t)}`);
  }
  const n = (await ctx.db.one<{ n: number }>(`SELECT count(*) AS n FROM ${build.affected}`))?.n;
  await ctx.db.run(`DROP TABLE IF EXISTS ${build.affected}`);
  return Number(n ?? 0);
}

function withModel(name: string, e: unknown): unknown {
  if (e instanceof SandboxError) {
    return new SandboxError(`Cannot build gold model "${name}": ${e.message}`, { cause: e });
  }
  if (e instanceof EngineError) {
    return new EngineError(`Cannot build gold model "${name}": ${e.message}`, {
      cause: e,
      transient: e.transient,
    });
  }
  return e;
}

/**
 * Builds the gold models (all, or those named) in dependency order, each in
 * its own transaction. A `materialized: table` model is rebuilt as
 * `CREATE OR REPLACE TABLE gold.<model> AS <sql>`; an incremental model
 * deletes the keys (or partitions) this run's silver changes touched, old
 * and new values, and inserts the model's rows of those keys, or is
 * rebuilt in full when it cannot know what changed (first build, changed
 * SQL or silver schema, `--full-refresh`, a silver table changed wholesale).
 *
 * @example
 * ```ts ignore
 * const result = await gold(ctx);
 * ```
 */
export async function gold(ctx: RunContext, options: GoldOptions = {}): Promise<StageResult> {
  const log = getLogger(["sluice", "gold"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "gold",
  });
  const started = performance.now();
  const result: StageResult = { stage: "gold", durationMs: 0, tables: [] };
  // The run-time layer of the SQL guard: a model that reads files, changes
  // settings or holds a second statement never runs (validate refuses it too).
  for (const [name, model] of Object.entries(ctx.config.gold)) {
    await guardSql(ctx.db, model.sql, { what: `gold model "${name}"` });
  }
  await ensureGoldState(ctx.db);
  for (const m of await planGold(ctx.db, ctx.config)) {
    if (options.models && !options.models.includes(m.name)) continue;
    const t0 = performance.now();
    const { rows, build, keys } = await ctx.db.transaction(async () => {
      try {
        const build = await chooseBuild(ctx, m, options);
        const keys = await buildModel(ctx, m, build);
        if (build.how !== "unchanged") {
          await ctx.db.run(
            `INSERT OR REPLACE INTO _sluice.gold_versions (model, run_id, build)
             VALUES ($m, $r, $b)`,
            { m: m.name, r: ctx.runId, b: build.how },
          );
        }
        if (m.model.materialized === "incremental") {
          await ctx.db.run(
            `INSERT OR REPLACE INTO _sluice.gold_state (model, fingerprint, silver_versions)
             VALUES ($m, $f, $v)`,
            {
              m: m.name,
              f: fingerprint(ctx, m),
              v: JSON.stringify(await silverVersions(ctx, m.reads)),
            },
          );
        }
        const target = qualified("gold", m.name);
        const n = (await ctx.db.one<{ n: number }>(`SELECT count(*) AS n FROM ${target}`))?.n ?? 0;
        return { rows: n, build, keys };
      } catch (e) {
        throw withModel(m.name, e);
      }
    });
    await ctx.db.checkpoint();
    const materialized = m.model.materialized ?? "table";
    result.tables.push({
      layer: "gold",
      table: m.name,
      rowsIn: rows,
      passed: rows,
      quarantined: 0,
      duplicates: 0,
      details: {
        depends_on: m.dependsOn,
        reads: m.reads,
        materialized,
        build: build.how,
        build_reason: build.reason,
        ...(build.how === "incremental" ? { keys_replaced: keys } : {}),
      },
    });
    log.info("model built", {
      event: "table_built",
      layer: "gold",
      table: m.name,
      rows,
      materialized,
      build: build.how,
      reason: build.reason,
      ...(build.how === "incremental" ? { keys_replaced: keys } : {}),
      duration_ms: Math.round(performance.now() - t0),
    });
  }
  for (const c of options.changes ?? []) {
    if (c.delta) await ctx.db.run(`DROP TABLE IF EXISTS ${c.delta}`);
  }
  result.durationMs = performance.now() - started;
  return result;
}
