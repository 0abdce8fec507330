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
import { ConfigError, type ConfigProblem, EngineError, SandboxError } from "../core/errors.ts";
import { literal, qualified } from "../core/quote.ts";
import type { RunContext, StageResult } from "../core/run_context.ts";
import { checkSql, guardSql, sqlPosition } from "../core/sql_guard.ts";

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
 * Builds the gold models (all, or those named) in dependency order, each as
 * `CREATE OR REPLACE TABLE gold.<model> AS <sql>` in its own transaction.
 *
 * @example
 * ```ts ignore
 * const result = await gold(ctx);
 * ```
 */
export async function gold(
  ctx: RunContext,
  options: { models?: string[] } = {},
): Promise<StageResult> {
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
  for (const m of await planGold(ctx.db, ctx.config)) {
    if (options.models && !options.models.includes(m.name)) continue;
    const t0 = performance.now();
    const rows = await ctx.db.transaction(async () => {
      try {
        const target = qualified("gold", m.name);
        await ctx.db.run(`CREATE OR REPLACE TABLE ${target} AS ${m.model.sql}`);
        return (await ctx.db.one<{ n: number }>(`SELECT count(*) AS n FROM ${target}`))?.n ?? 0;
      } catch (e) {
        if (e instanceof SandboxError) {
          throw new SandboxError(`Cannot build gold model "${m.name}": ${e.message}`, { cause: e });
        }
        if (e instanceof EngineError) {
          throw new EngineError(`Cannot build gold model "${m.name}": ${e.message}`, {
            cause: e,
            transient: e.transient,
          });
        }
        throw e;
      }
    });
    await ctx.db.checkpoint();
    result.tables.push({
      layer: "gold",
      table: m.name,
      rowsIn: rows,
      passed: rows,
      quarantined: 0,
      duplicates: 0,
      details: { depends_on: m.dependsOn, reads: m.reads },
    });
    log.info("model built", {
      event: "table_built",
      layer: "gold",
      table: m.name,
      rows,
      duration_ms: Math.round(performance.now() - t0),
    });
  }
  result.durationMs = performance.now() - started;
  return result;
}
