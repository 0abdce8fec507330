/**
 * Bronze: lands each planned file's rows as they are (text, unless the
 * source declares column types) plus `_run_id`, `_ingested_at`,
 * `_source_file` and `_source_row`, and records the file in the manifest in
 * the same transaction, so a crash never lands a file twice. Columns that
 * appear or disappear against earlier loads are schema drift, handled by the
 * source's policy (evolve | fail).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { SourceConfig } from "../core/config_schema.ts";
import type { Engine } from "../core/engine.ts";
import { ConservationError, SchemaDriftError } from "../core/errors.ts";
import { ident, literal, qualified, rawIdent, sqlType } from "../core/quote.ts";
import type { RunContext, StageResult, TableResult } from "../core/run_context.ts";
import type { FileFingerprint } from "./_files.ts";
import { ensureManifest, extract, type ExtractPlan } from "./extract.ts";

/** Metadata columns bronze adds to every row. */
export const BRONZE_META_COLUMNS: readonly string[] = [
  "_run_id",
  "_ingested_at",
  "_source_file",
  "_source_row",
];

/** Builds the table-function call that reads one file of a source. */
export function readerSql(source: SourceConfig, path: string): string {
  const declared = Object.entries(source.columns ?? {});
  if (source.format === "csv") {
    const o = source.options ?? {};
    const args = [literal(path), "all_varchar = true", "auto_detect = true"];
    if (o.header !== undefined) args.push(`header = ${literal(o.header)}`);
    if (o.delimiter !== undefined) args.push(`delim = ${literal(o.delimiter)}`);
    if (o.quote !== undefined) args.push(`quote = ${literal(o.quote)}`);
    if (o.escape !== undefined) args.push(`escape = ${literal(o.escape)}`);
    if (o.null_string !== undefined) args.push(`nullstr = ${literal(o.null_string)}`);
    if (o.skip !== undefined) args.push(`skip = ${literal(o.skip)}`);
    if (declared.length > 0) {
      args.push(
        `types = {${declared.map(([c, t]) => `${literal(c)}: ${literal(sqlType(t))}`).join(", ")}}`,
      );
    }
    return `read_csv(${args.join(", ")})`;
  }
  if (source.format === "ndjson") {
    return `read_json(${literal(path)}, format = 'newline_delimited')`;
  }
  return `read_parquet(${literal(path)})`;
}

interface ColumnInfo extends Record<string, unknown> {
  column_name: string;
  column_type: string;
}

/** The SELECT list that turns a reader's columns into bronze columns. */
function landedColumns(source: SourceConfig, columns: ColumnInfo[]): string[] {
  const declared = source.columns ?? {};
  return columns.map(({ column_name: name, column_type: type }) => {
    const col = rawIdent(name);
    if (declared[name] !== undefined) {
      return `CAST(${col} AS ${sqlType(declared[name])}) AS ${col}`;
    }
    if (source.format === "ndjson") {
      const nested = /^(STRUCT|MAP|JSON)|\[\]$/.test(type);
      return nested
        ? `CAST(to_json(${col}) AS VARCHAR) AS ${col}`
        : `CAST(${col} AS VARCHAR) AS ${col}`;
    }
    return col;
  });
}

async function tableColumns(db: Engine, schema: string, table: string): Promise<Set<string>> {
  const rows = await db.all<{ column_name: string } & Record<string, unknown>>(
    `SELECT column_name FROM duckdb_columns() WHERE schema_name = $schema AND table_name = $table`,
    { schema, table },
  );
  return new Set(rows.map((r) => r.column_name));
}

/**
 * Lands the planned files of every source into `bronze.<source>`. Each source
 * is one transaction (rows and manifest together), followed by a CHECKPOINT.
 * Without a plan, runs extract first.
 *
 * @example
 * ```ts ignore
 * const result = await bronze(ctx, { plan });
 * ```
 */
export async function bronze(
  ctx: RunContext,
  options: { plan?: ExtractPlan; sources?: string[] } = {},
): Promise<StageResult> {
  const log = getLogger(["sluice", "bronze"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "bronze",
  });
  const started = performance.now();
  const plan = options.plan ?? (await extract(ctx, { sources: options.sources })).plan;
  await ensureManifest(ctx.db);
  const result: StageResult = { stage: "bronze", durationMs: 0, tables: [] };
  const ingestedAt = ctx.clock.now().toISOString();
  for (const sp of plan.sources) {
    const source = ctx.config.sources[sp.source];
    const files = [...sp.reingest, ...sp.newFiles];
    if (files.length === 0 && sp.emptySkipped.length === 0) continue;
    const table = qualified("bronze", sp.source);
    const tr: TableResult = {
      layer: "bronze",
      table: sp.source,
      rowsIn: 0,
      passed: 0,
      quarantined: 0,
      duplicates: 0,
      details: { files: files.length, columns_added: [], columns_missing: [] },
    };
    await ctx.db.transaction(async () => {
      for (const fp of sp.reingest) {
        const removed = await ctx.db.run(`DELETE FROM ${table} WHERE _source_file = $file`, {
          file: fp.path,
        });
        await ctx.db.run(
          `UPDATE _sluice.files SET status = 'superseded' WHERE source = $source AND path = $file`,
          { source: sp.source, file: fp.path },
        );
        log.info("superseded rows of a changed file", {
          event: "file_superseded",
          table: sp.source,
          file: fp.path,
          rows: removed,
        });
      }
      for (const fp of files) {
        const rows = await landFile(ctx, sp.source, source, fp, tr, ingestedAt);
        tr.rowsIn += rows.read;
        tr.passed += rows.landed;
        log.info("file ingested", {
          event: "file_ingested",
          table: sp.source,
          file: fp.path,
          rows: rows.landed,
          bytes: fp.size,
        });
      }
      for (const fp of sp.emptySkipped) await recordFile(ctx, sp.source, fp, 0, "skipped_empty");
      if (files.length > 0) {
        const check = await ctx.db.one<{ n: number }>(
          `SELECT count(*) AS n FROM ${table} WHERE _run_id = $run_id`,
          { run_id: ctx.runId },
        );
        if (tr.rowsIn !== tr.passed || check?.n !== tr.passed) {
          throw new ConservationError(
            `Rows do not add up in bronze "${sp.source}": ${tr.rowsIn} read, ${tr.passed} landed, ` +
              `${check?.n ?? 0} found with this run's id`,
            { context: { table: sp.source } },
          );
        }
      }
    });
    await ctx.db.checkpoint();
    result.tables.push(tr);
  }
  result.durationMs = performance.now() - started;
  return result;
}

async function recordFile(
  ctx: RunContext,
  source: string,
  fp: FileFingerprint,
  rows: number,
  status: string,
): Promise<void> {
  await ctx.db.run(
    `INSERT INTO _sluice.files VALUES ($source, $path, $size, $mtime, $sha, $run_id, $rows,
      $status, $at::TIMESTAMPTZ)`,
    {
      source,
      path: fp.path,
      size: fp.size,
      mtime: fp.mtimeMs,
      sha: fp.sha256,
      run_id: ctx.runId,
      rows,
      status,
      at: ctx.clock.now().toISOString(),
    },
  );
}

async function landFile(
  ctx: RunContext,
  name: string,
  source: SourceConfig,
  fp: FileFingerprint,
  tr: TableResult,
  ingestedAt: string,
): Promise<{ read: number; landed: number }> {
  const db = ctx.db;
  const reader = readerSql(source, fp.path);
  const fileColumns = await db.all<ColumnInfo>(`DESCRIBE SELECT * FROM ${reader}`);
  const select = landedColumns(source, fileColumns);
  const meta =
    `${literal(ctx.runId)} AS _run_id, ${literal(ingestedAt)}::TIMESTAMPTZ AS _ingested_at, ` +
    `${literal(fp.path)} AS _source_file, row_number() OVER () AS _source_row`;
  const table = qualified("bronze", name);
  const existing = await tableColumns(db, "bronze", name);
  if (existing.size === 0) {
    await db.run(
      `CREATE TABLE ${table} AS SELECT ${select.join(", ")}, ${meta} FROM ${reader} LIMIT 0`,
    );
  } else {
    const dataCols = [...existing].filter((c) => !BRONZE_META_COLUMNS.includes(c));
    const names = fileColumns.map((c) => c.column_name);
    const added = names.filter((c) => !existing.has(c));
    const missing = dataCols.filter((c) => !names.includes(c));
    if (added.length > 0 || missing.length > 0) {
      const detail = [
        added.length ? `new column(s) ${added.map((c) => `"${c}"`).join(", ")}` : "",
        missing.length ? `missing column(s) ${missing.map((c) => `"${c}"`).join(", ")}` : "",
      ].filter(Boolean).join(" and ");
      if (source.schema_drift === "fail") {
        throw new SchemaDriftError(
          `Cannot land source "${name}": file ${fp.path} has ${detail} compared with earlier loads ` +
            `(set schema_drift: evolve to accept)`,
          { context: { source: name, file: fp.path, added, missing } },
        );
      }
      getLogger(["sluice", "bronze"]).warn("schema drift", {
        run_id: ctx.runId,
        pipeline: ctx.config.pipeline,
        stage: "bronze",
        event: "schema_drift",
        table: name,
        file: fp.path,
        added,
        missing,
        policy: "evolve",
      });
      const typed = new Map(fileColumns.map((c) => [c.column_name, c.column_type]));
      for (const col of added) {
        const declared = source.columns?.[col];
        const type = declared
          ? sqlType(declared)
          : source.format === "parquet"
          ? sqlType(typed.get(col) ?? "VARCHAR")
          : "VARCHAR";
        await db.run(`ALTER TABLE ${table} ADD COLUMN ${rawIdent(col)} ${type}`);
      }
      (tr.details!.columns_added as string[]).push(...added);
      (tr.details!.columns_missing as string[]).push(...missing);
    }
  }
  const landed = await db.run(
    `INSERT INTO ${table} BY NAME SELECT ${select.join(", ")}, ${meta} FROM ${reader}`,
  );
  await recordFile(ctx, name, fp, landed, "ingested");
  return { read: landed, landed };
}

/** Quotes the bronze table of a source; exported for other stages. */
export function bronzeTable(source: string): string {
  return `${ident("bronze")}.${ident(source)}`;
}
