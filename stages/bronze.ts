/**
 * Bronze: lands each planned file's rows as they are (text, unless the
 * source declares column types) plus `_run_id`, `_ingested_at`,
 * `_source_file` and `_source_row`, and records the file in the manifest in
 * the same transaction, so a crash never lands a file twice. Columns that
 * appear or disappear against earlier loads are schema drift, handled by the
 * source's policy (evolve | fail).
 *
 * `_source_row` (the row's number within its file) is set by a second,
 * short transaction right after the landing commits: updating rows that are
 * still transaction-local makes DuckDB rewrite the blocks it already wrote
 * for them at commit (0.5 s at 1M rows, 6 s at 10M), while updating the
 * committed rows only touches the one column (0.1 s at 1M, 0.8 s at 10M). The
 * landing transaction records `(table, run_id)` in `_sluice.bronze_unnumbered`
 * and the numbering transaction deletes it, so rows left unnumbered by a
 * crash in between are numbered at the start of the next bronze or silver
 * stage ({@linkcode numberPendingRows}), before anything reads them.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { SourceConfig } from "../core/config_schema.ts";
import type { Engine } from "../core/engine.ts";
import { ConservationError, SchemaDriftError } from "../core/errors.ts";
import { literal, literalList, qualified, rawIdent, sqlType } from "../core/quote.ts";
import type { RunContext, StageResult, TableResult } from "../core/run_context.ts";
import { tableColumns } from "./_catalog.ts";
import { type FileFingerprint, fileSha256 } from "./_files.ts";
import { ensureManifest, extract, type ExtractPlan, type SourcePlan } from "./extract.ts";

/** Metadata columns bronze adds to every row. */
export const BRONZE_META_COLUMNS: readonly string[] = [
  "_run_id",
  "_ingested_at",
  "_source_file",
  "_source_row",
];

/**
 * Builds the table-function call that reads files of a source. With
 * `unionByName`, files whose columns differ are read side by side. With
 * `csvColumns` (the header every CSV file was found to have), the columns
 * are given to DuckDB (text, or the declared type) and only the dialect is
 * sniffed: no type detection, no header detection.
 *
 * @example
 * ```ts ignore
 * readerSql(source, ["/landing/a.csv"]); // "read_csv(['/landing/a.csv'], all_varchar = true, ...)"
 * ```
 */
export function readerSql(
  source: SourceConfig,
  paths: readonly string[],
  options: { unionByName?: boolean; csvColumns?: readonly string[] } = {},
): string {
  const declared = Object.entries(source.columns ?? {});
  const files = literalList(paths);
  const union = options.unionByName ? ", union_by_name = true" : "";
  if (source.format === "csv") {
    const o = source.options ?? {};
    const known = options.csvColumns;
    const types = new Map(declared);
    const args = known
      ? [
        files,
        `columns = {${
          known.map((c) => `${literal(c)}: ${literal(sqlType(types.get(c) ?? "VARCHAR"))}`)
            .join(", ")
        }}`,
        "header = true",
      ]
      : [files + union, "all_varchar = true", "auto_detect = true"];
    if (o.header !== undefined && !known) args.push(`header = ${literal(o.header)}`);
    if (o.delimiter !== undefined) args.push(`delim = ${literal(o.delimiter)}`);
    if (o.quote !== undefined) args.push(`quote = ${literal(o.quote)}`);
    if (o.escape !== undefined) args.push(`escape = ${literal(o.escape)}`);
    if (o.null_string !== undefined) args.push(`nullstr = ${literal(o.null_string)}`);
    if (o.skip !== undefined) args.push(`skip = ${literal(o.skip)}`);
    if (declared.length > 0 && !known) {
      args.push(
        `types = {${declared.map(([c, t]) => `${literal(c)}: ${literal(sqlType(t))}`).join(", ")}}`,
      );
    }
    return `read_csv(${args.join(", ")})`;
  }
  if (source.format === "ndjson") {
    return `read_json(${files}, format = 'newline_delimited'${union})`;
  }
  return `read_parquet(${files}${union})`;
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

async function columnSet(db: Engine, schema: string, table: string): Promise<Set<string>> {
  return new Set((await tableColumns(db, schema, table)).map((c) => c.name));
}

/** Sources landed at the same time, each on its own connection. */
const LANDING_CONNECTIONS = 2;

/**
 * Lands the planned files of every source into `bronze.<source>`. Each source
 * is one transaction (rows and manifest together); two sources land at a
 * time, on two connections, largest first, so a source read by one thread
 * (one small file) overlaps with a large one. The run checkpoints once, at
 * its end (see `runPipeline`). Without a plan, runs extract first.
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
  const started = performance.now();
  const plan = options.plan ?? (await extract(ctx, { sources: options.sources })).plan;
  await ensureManifest(ctx.db);
  await numberPendingRows(ctx);
  const result: StageResult = { stage: "bronze", durationMs: 0, tables: [] };
  const ingestedAt = ctx.clock.now().toISOString();
  const todo = plan.sources.filter((sp) =>
    sp.reingest.length + sp.newFiles.length + sp.emptySkipped.length > 0
  );
  const bytes = (sp: SourcePlan) =>
    [...sp.reingest, ...sp.newFiles].reduce((n, f) => n + f.size, 0);
  const queue = [...todo].sort((a, b) => bytes(b) - bytes(a));
  const landed = new Map<string, TableResult>();
  const errors: unknown[] = [];
  const worker = async (db: Engine) => {
    const wctx: RunContext = { ...ctx, db };
    for (let sp = queue.shift(); sp && errors.length === 0; sp = queue.shift()) {
      try {
        landed.set(sp.source, await landSource(wctx, sp, ingestedAt));
      } catch (e) {
        errors.push(e);
      }
    }
  };
  const workers = Math.min(LANDING_CONNECTIONS, todo.length);
  const extra: Engine[] = [];
  try {
    for (let w = 1; w < workers; w++) extra.push(await ctx.db.connect());
    await Promise.all([worker(ctx.db), ...extra.map(worker)]);
  } finally {
    for (const db of extra) db.close();
  }
  if (errors.length > 0) throw errors[0];
  for (const sp of todo) {
    const tr = landed.get(sp.source);
    if (tr) result.tables.push(tr);
  }
  result.durationMs = performance.now() - started;
  return result;
}

/**
 * Lands one source's planned files in one transaction (superseding changed
 * files, recording the manifest, checking that the rows add up), then
 * numbers the rows in a second one.
 */
async function landSource(
  ctx: RunContext,
  sp: SourcePlan,
  ingestedAt: string,
): Promise<TableResult> {
  const log = getLogger(["sluice", "bronze"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
    stage: "bronze",
  });
  const source = ctx.config.sources[sp.source];
  const files = [...sp.reingest, ...sp.newFiles];
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
  let landedRows = false;
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
    if (files.length > 0) {
      const landed = await landFiles(ctx, sp.source, source, files, tr, ingestedAt);
      // Rows the INSERT read against rows found with this run's id, by file.
      const found = [...landed.perFile.values()].reduce((a, n) => a + n, 0);
      if (found !== landed.read) {
        throw new ConservationError(
          `Rows do not add up in bronze "${sp.source}": ${landed.read} read, ${found} found ` +
            `with this run's id`,
          { context: { table: sp.source } },
        );
      }
      tr.rowsIn += landed.read;
      tr.passed += found;
      landedRows = found > 0;
      if (landedRows) {
        await ctx.db.run(`INSERT INTO _sluice.bronze_unnumbered VALUES ($t, $run_id)`, {
          t: sp.source,
          run_id: ctx.runId,
        });
      }
      await recordFiles(ctx, sp.source, files, "ingested", landed.perFile);
      for (const fp of files) {
        const rows = landed.perFile.get(fp.path) ?? 0;
        log.info("file ingested", {
          event: "file_ingested",
          table: sp.source,
          file: fp.path,
          rows,
          bytes: fp.size,
        });
      }
    }
    await recordFiles(ctx, sp.source, sp.emptySkipped, "skipped_empty");
  });
  if (landedRows) await numberRows(ctx, sp.source, ctx.runId);
  return tr;
}

/**
 * Records files in the manifest with one INSERT. New files' SHA-256 were
 * computed in the background while the rows landed; this waits for them.
 */
async function recordFiles(
  ctx: RunContext,
  source: string,
  files: readonly FileFingerprint[],
  status: string,
  rowsPerFile?: ReadonlyMap<string, number>,
): Promise<void> {
  if (files.length === 0) return;
  const at = literal(ctx.clock.now().toISOString());
  const values: string[] = [];
  for (const fp of files) {
    const sha = await fileSha256(fp);
    const row = [source, fp.path, fp.size, fp.mtimeMs, sha, ctx.runId];
    values.push(
      `(${row.map(literal).join(", ")}, ${rowsPerFile?.get(fp.path) ?? 0}, ${
        literal(status)
      }, ${at}::TIMESTAMPTZ)`,
    );
  }
  await ctx.db.run(`INSERT INTO _sluice.files VALUES ${values.join(", ")}`);
}

/** Reads the header line of a CSV file (bounded read) and splits it. */
async function csvHeader(path: string, source: SourceConfig): Promise<string[] | undefined> {
  const o = source.options ?? {};
  if (o.header === false || (o.skip ?? 0) > 0) return undefined;
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(64 * 1024);
  const n = (await file.read(buf)) ?? 0;
  const newline = buf.subarray(0, n).indexOf(0x0a);
  if (newline < 0 && n === buf.length) return undefined; // header longer than 64 KiB: let DuckDB sniff
  const text = new TextDecoder().decode(buf.subarray(0, newline < 0 ? n : newline))
    .replace(/^\uFEFF/, "");
  const line = text.endsWith("\r") ? text.slice(0, -1) : text;
  const delimiter = o.delimiter ??
    (line.includes(";") && !line.includes(",")
      ? ";"
      : line.includes("\t") && !line.includes(",")
      ? "\t"
      : line.includes("|") && !line.includes(",")
      ? "|"
      : ",");
  const quote = o.quote ?? '"';
  const out: string[] = [];
  let cur = "";
  let inQuote = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (inQuote) {
      if (c === quote && line[i + 1] === quote) {
        cur += c;
        i++;
      } else if (c === quote) inQuote = false;
      else cur += c;
    } else if (c === quote) inQuote = true;
    else if (line.startsWith(delimiter, i)) {
      out.push(cur);
      cur = "";
      i += delimiter.length - 1;
    } else cur += c;
  }
  out.push(cur);
  return out.map((h) => h.trim());
}

/**
 * The columns a file holds: its CSV header (`fromHeader`, read by
 * {@linkcode csvHeader} beforehand), or DuckDB's view of the file.
 */
async function fileColumns(
  db: Engine,
  source: SourceConfig,
  path: string,
  header: string[] | undefined,
): Promise<{ columns: ColumnInfo[]; fromHeader: boolean }> {
  if (header) {
    const columns = header.map((name) => ({
      column_name: name,
      column_type: source.columns?.[name] ?? "VARCHAR",
    }));
    return { columns, fromHeader: true };
  }
  const columns = await db.all<ColumnInfo>(`DESCRIBE SELECT * FROM ${readerSql(source, [path])}`);
  return { columns, fromHeader: false };
}

/**
 * Lands all given files of a source with one INSERT. Schema drift is checked
 * per file first (CSV headers are read directly; other formats are described
 * by DuckDB).
 *
 * `_source_row` is the row's number within its file. The INSERT is a plain
 * parallel, order-preserving scan (DuckDB keeps insertion order by default),
 * so this run's rows of one file sit at consecutive row ids in file order;
 * one aggregate finds each file's first row id and row count, and after the
 * commit {@linkcode numberRows} sets `_source_row = rowid - first + 1`.
 * Should a file's row ids not be consecutive (`max - min + 1 <> count`), the
 * numbering would be wrong, so the landing fails with a
 * {@linkcode ConservationError} instead. (A window over the scan,
 * `row_number() OVER ()` then `min() OVER (PARTITION BY filename)`, gives
 * the same numbers but makes the scan single-threaded and sorts every row:
 * about twice the CPU of the whole landing.)
 */
async function landFiles(
  ctx: RunContext,
  name: string,
  source: SourceConfig,
  files: FileFingerprint[],
  tr: TableResult,
  ingestedAt: string,
): Promise<{ read: number; perFile: Map<string, number> }> {
  const db = ctx.db;
  const table = qualified("bronze", name);
  const perFileColumns: ColumnInfo[][] = [];
  let allHeaders = true;
  // The headers are read at the same time (a few hundred bytes of each file).
  const headers = source.format === "csv"
    ? await Promise.all(files.map((fp) => csvHeader(fp.path, source)))
    : [];
  for (const [i, fp] of files.entries()) {
    const found = await fileColumns(db, source, fp.path, headers[i]);
    perFileColumns.push(found.columns);
    allHeaders &&= found.fromHeader;
  }
  const signature = (cols: ColumnInfo[]) => cols.map((c) => c.column_name).join("\u0000");
  const sameColumns = perFileColumns.every((c) => signature(c) === signature(perFileColumns[0]));
  // Every CSV file has the same header, with distinct non-empty names: DuckDB
  // is given these columns instead of detecting them (twice: to describe the
  // reader and to bind the INSERT).
  const header = perFileColumns[0].map((c) => c.column_name);
  const knownHeader = allHeaders && sameColumns && header.every((c) => c !== "") &&
    new Set(header.map((c) => c.toLowerCase())).size === header.length;
  let existing = await columnSet(db, "bronze", name);
  const added = new Set<string>();
  const missing = new Set<string>();
  for (const [i, cols] of perFileColumns.entries()) {
    if (existing.size === 0 && i === 0) continue;
    const names = cols.map((c) => c.column_name);
    const known = existing.size > 0
      ? [...existing].filter((c) => !BRONZE_META_COLUMNS.includes(c))
      : perFileColumns[0].map((c) => c.column_name);
    const fileAdded = names.filter((c) => !known.includes(c));
    const fileMissing = known.filter((c) => !names.includes(c));
    if (fileAdded.length === 0 && fileMissing.length === 0) continue;
    const detail = [
      fileAdded.length ? `new column(s) ${fileAdded.map((c) => `"${c}"`).join(", ")}` : "",
      fileMissing.length ? `missing column(s) ${fileMissing.map((c) => `"${c}"`).join(", ")}` : "",
    ].filter(Boolean).join(" and ");
    if (source.schema_drift === "fail") {
      throw new SchemaDriftError(
        `Cannot land source "${name}": file ${
          files[i].path
        } has ${detail} compared with earlier loads ` +
          `(set schema_drift: evolve to accept)`,
        { context: { source: name, file: files[i].path, added: fileAdded, missing: fileMissing } },
      );
    }
    getLogger(["sluice", "bronze"]).warn("schema drift", {
      run_id: ctx.runId,
      pipeline: ctx.config.pipeline,
      stage: "bronze",
      event: "schema_drift",
      table: name,
      file: files[i].path,
      added: fileAdded,
      missing: fileMissing,
      policy: "evolve",
    });
    fileAdded.forEach((c) => added.add(c));
    fileMissing.forEach((c) => missing.add(c));
  }
  const reader = readerSql(
    source,
    files.map((f) => f.path),
    knownHeader ? { csvColumns: header } : { unionByName: !sameColumns },
  );
  const readColumns = knownHeader
    ? perFileColumns[0]
    : await db.all<ColumnInfo>(`DESCRIBE SELECT * FROM ${reader}`);
  const select = landedColumns(source, readColumns);
  const meta =
    `${literal(ctx.runId)} AS _run_id, ${literal(ingestedAt)}::TIMESTAMPTZ AS _ingested_at, ` +
    `filename AS _source_file, NULL::BIGINT AS _source_row`;
  const body = `SELECT ${select.join(", ")}, ${meta} FROM ${reader}`;
  if (existing.size === 0) {
    if (source.format === "parquet") {
      await db.run(`CREATE TABLE ${table} AS ${body} LIMIT 0`);
    } else {
      // CSV and NDJSON land as text (or the declared type): the table is
      // known without binding the reader again (each bind re-sniffs the files).
      const declared = source.columns ?? {};
      const defs = readColumns.map(({ column_name: c }) =>
        `${rawIdent(c)} ${declared[c] !== undefined ? sqlType(declared[c]) : "VARCHAR"}`
      );
      await db.run(
        `CREATE TABLE ${table} (${defs.join(", ")}, _run_id VARCHAR, ` +
          `_ingested_at TIMESTAMPTZ, _source_file VARCHAR, _source_row BIGINT)`,
      );
    }
    existing = await columnSet(db, "bronze", name);
  }
  for (const col of readColumns.map((c) => c.column_name)) {
    if (existing.has(col)) continue;
    const declared = source.columns?.[col];
    const type = declared
      ? sqlType(declared)
      : source.format === "parquet"
      ? sqlType(readColumns.find((c) => c.column_name === col)?.column_type ?? "VARCHAR")
      : "VARCHAR";
    await db.run(`ALTER TABLE ${table} ADD COLUMN ${rawIdent(col)} ${type}`);
    added.add(col);
  }
  if (added.size || missing.size) {
    (tr.details!.columns_added as string[]).push(...added);
    (tr.details!.columns_missing as string[]).push(...missing);
  }
  const landed = await db.run(`INSERT INTO ${table} BY NAME ${body}`);
  const spans = await fileSpans(db, name, ctx.runId, { unnumberedOnly: false });
  return { read: landed, perFile: new Map(spans.map((r) => [r.f, r.n])) };
}

/** Where one file's rows of one run sit in a bronze table. */
interface FileSpan extends Record<string, unknown> {
  /** `_source_file`. */
  f: string;
  /** The first row id. */
  first: number | bigint;
  /** Rows. */
  n: number;
}

/**
 * Finds each file's rows of `runId` in `bronze.<name>` (all of them, or only
 * those not numbered yet) and checks that they sit at consecutive row ids,
 * in file order. If a file's do not, a `_source_row` taken from the row id
 * would be wrong, so this fails with a {@linkcode ConservationError}.
 */
async function fileSpans(
  db: Engine,
  name: string,
  runId: string,
  options: { unnumberedOnly: boolean },
): Promise<FileSpan[]> {
  const spans = await db.all<FileSpan & { last: number | bigint }>(
    `SELECT _source_file AS f, min(rowid) AS first, max(rowid) AS last, count(*) AS n
     FROM ${qualified("bronze", name)}
     WHERE _run_id = $run_id${options.unnumberedOnly ? " AND _source_row IS NULL" : ""}
     GROUP BY 1`,
    { run_id: runId },
  );
  for (const r of spans) {
    // Row ids of a transaction's own rows are BIGINTs near 2^62; compare as bigint.
    if (BigInt(r.last) - BigInt(r.first) + 1n !== BigInt(r.n)) {
      throw new ConservationError(
        `Cannot number the rows of ${r.f} in bronze "${name}": its ${r.n} rows of run ` +
          `${runId} do not sit in file order`,
        { context: { table: name, file: r.f, run_id: runId } },
      );
    }
  }
  return spans;
}

async function ensureUnnumbered(db: Engine): Promise<void> {
  await db.run(`CREATE SCHEMA IF NOT EXISTS _sluice`);
  await db.run(
    `CREATE TABLE IF NOT EXISTS _sluice.bronze_unnumbered (table_name VARCHAR, run_id VARCHAR)`,
  );
}

/**
 * Sets `_source_row` of the rows one run landed in `bronze.<name>`, in one
 * transaction that also clears the run's `_sluice.bronze_unnumbered` entry.
 * The landing kept each file's rows at consecutive row ids in file order,
 * so a row's number is `rowid - first + 1`; a file whose row ids are not
 * consecutive fails with a {@linkcode ConservationError} (its rows stay
 * unnumbered, and the entry stays, rather than get wrong numbers).
 */
async function numberRows(ctx: RunContext, name: string, runId: string): Promise<number> {
  const db = ctx.db;
  const table = qualified("bronze", name);
  return await db.transaction(async () => {
    const spans = await fileSpans(db, name, runId, { unnumberedOnly: true });
    // The spans' first row ids go in as a VALUES list: no second aggregate.
    const firsts = spans.map((r) => `(${literal(r.f)}, ${literal(r.first)})`).join(", ");
    const numbered = spans.length === 0 ? 0 : await db.run(
      `UPDATE ${table} AS b SET _source_row = b.rowid - s.first_id + 1
       FROM (VALUES ${firsts}) AS s(f, first_id)
       WHERE b._run_id = $run_id AND b._source_row IS NULL AND b._source_file = s.f`,
      { run_id: runId },
    );
    await db.run(
      `DELETE FROM _sluice.bronze_unnumbered WHERE table_name = $t AND run_id = $run_id`,
      {
        t: name,
        run_id: runId,
      },
    );
    return numbered;
  });
}

/**
 * Numbers the bronze rows that a run landed but could not number because it
 * stopped between its landing and numbering transactions (see the module
 * doc). Cheap when there is nothing to do: one read of a small table.
 * Bronze and silver call it before they read bronze.
 *
 * @example
 * ```ts ignore
 * await numberPendingRows(ctx); // before reading bronze rows
 * ```
 */
export async function numberPendingRows(ctx: RunContext): Promise<void> {
  await ensureUnnumbered(ctx.db);
  const pending = await ctx.db.all<{ t: string; r: string }>(
    `SELECT DISTINCT table_name AS t, run_id AS r FROM _sluice.bronze_unnumbered ORDER BY 1, 2`,
  );
  for (const p of pending) {
    const rows = await numberRows(ctx, p.t, p.r);
    getLogger(["sluice", "bronze"]).warn("numbered rows an interrupted run left unnumbered", {
      run_id: ctx.runId,
      pipeline: ctx.config.pipeline,
      stage: "bronze",
      event: "rows_renumbered",
      table: p.t,
      landing_run_id: p.r,
      rows,
    });
  }
}
