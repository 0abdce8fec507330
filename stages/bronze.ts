/**
 * Bronze: lands each planned file's rows as they are plus `_run_id`,
 * `_ingested_at`, `_source_file` (the path relative to the source folder)
 * and `_source_row`, and records the file in the manifest in the same
 * transaction, so a crash never lands a file twice. CSV lands as text
 * (unless the source declares column types), Parquet with its native
 * types, NDJSON and JSON as each top-level key's text (see
 * {@linkcode landJsonFiles}). Records that cannot be read go to
 * `bronze.<source>__rejects` with file, line and reason, and the good rows
 * land; a file that cannot be read at all fails with one line naming it.
 * Columns that appear or disappear against earlier loads are schema drift,
 * handled by the source's policy (evolve | fail).
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
import type { SourceConfig } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import { crashPoint } from "../core/crash_seam.ts";
import {
  CancelledError,
  ConfigError,
  type ConfigProblem,
  ConservationError,
  EngineError,
  errorMessage,
  SchemaDriftError,
  SluiceError,
  SourceError,
  TimedOutError,
} from "../core/errors.ts";
import { literal, literalList, qualified, rawIdent, sqlType } from "../core/quote.ts";
import type { RunContext, StageResult, TableResult } from "../core/run_context.ts";
import {
  type CatalogColumn,
  checkDeclaredTypes,
  missingSourceColumns,
  tableColumns,
} from "./_catalog.ts";
import {
  type FileFingerprint,
  fileSha256,
  forgetContents,
  readSmallFiles,
  sniffFile,
} from "./_files.ts";
import { appendJsonRecords, createRecordTable } from "./_json_records.ts";
import { ensureManifest, extract, type ExtractPlan, type SourcePlan } from "./extract.ts";

/** Metadata columns bronze adds to every row. */
export const BRONZE_META_COLUMNS: readonly string[] = [
  "_run_id",
  "_ingested_at",
  "_source_file",
  "_source_row",
];

/** The dialect of a CSV file found from its header line. */
export interface CsvDialect {
  /** Field separator (given, or found in the header line). */
  delimiter: string;
  /** Line ending of the header line. */
  newline: "\n" | "\r\n";
}

/**
 * Builds the table-function call that reads files of a source. With
 * `unionByName`, files whose columns differ are read side by side. With
 * `csvColumns` (the header every CSV file was found to have) and `dialect`,
 * the columns are given to DuckDB (text, or the declared type) and nothing is
 * sniffed. With `rejects`, bad CSV lines go to DuckDB's rejects tables
 * (`store_rejects`) instead of failing the read.
 *
 * @example
 * ```ts ignore
 * readerSql(source, ["/landing/a.csv"]); // "read_csv(['/landing/a.csv'], all_varchar = true, ...)"
 * ```
 */
export function readerSql(
  source: SourceConfig,
  paths: readonly string[],
  options: {
    unionByName?: boolean;
    csvColumns?: readonly string[];
    dialect?: CsvDialect;
    rejects?: { table: string; scan: string };
  } = {},
): string {
  const declared = Object.entries(source.columns ?? {});
  const files = literalList(paths);
  const union = options.unionByName ? ", union_by_name = true" : "";
  if (source.format === "csv") {
    const o = source.options ?? {};
    const known = options.dialect ? options.csvColumns : undefined;
    const types = new Map(declared);
    const args = known
      ? [
        files,
        `columns = {${
          known.map((c) => `${literal(c)}: ${literal(sqlType(types.get(c) ?? "VARCHAR"))}`)
            .join(", ")
        }}`,
        "header = true",
        "auto_detect = false",
        `delim = ${literal(options.dialect!.delimiter)}`,
        `new_line = ${literal(options.dialect!.newline === "\n" ? "\\n" : "\\r\\n")}`,
        `quote = ${literal(o.quote ?? '"')}`,
        `escape = ${literal(o.escape ?? o.quote ?? '"')}`,
      ]
      : [files + union, "all_varchar = true", "auto_detect = true"];
    if (o.header !== undefined && !known) args.push(`header = ${literal(o.header)}`);
    if (o.delimiter !== undefined && !known) args.push(`delim = ${literal(o.delimiter)}`);
    if (o.quote !== undefined && !known) args.push(`quote = ${literal(o.quote)}`);
    if (o.escape !== undefined && !known) args.push(`escape = ${literal(o.escape)}`);
    if (o.null_string !== undefined) args.push(`nullstr = ${literal(o.null_string)}`);
    if (o.skip !== undefined) args.push(`skip = ${literal(o.skip)}`);
    if (o.max_line_size !== undefined) {
      args.push(`max_line_size = ${literal(parseSize(o.max_line_size))}`);
    }
    if (declared.length > 0 && !known) {
      args.push(
        `types = {${declared.map(([c, t]) => `${literal(c)}: ${literal(sqlType(t))}`).join(", ")}}`,
      );
    }
    if (options.rejects) {
      args.push(
        "store_rejects = true",
        `rejects_table = ${literal(options.rejects.table)}`,
        `rejects_scan = ${literal(options.rejects.scan)}`,
      );
    }
    return `read_csv(${args.join(", ")})`;
  }
  if (source.format === "ndjson") {
    return `read_json(${files}, format = 'newline_delimited'${union})`;
  }
  if (source.format === "json") {
    return `read_json(${files}, format = 'array'${union})`;
  }
  return `read_parquet(${files}${union})`;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tb: 1e12,
  tib: 1024 ** 4,
};

/** Bytes of a size text such as `16MB` (a number is bytes). */
function parseSize(size: string | number): number {
  if (typeof size === "number") return size;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(size);
  return m ? Math.round(Number(m[1]) * (SIZE_UNITS[m[2].toLowerCase() || "b"] ?? 1)) : 0;
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
    void type; // CSV: text (or declared); Parquet: native types (JSON formats: landJsonFiles)
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
  await checkSilverColumns(ctx, { types: true });
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
  await checkSilverColumns(ctx);
  result.durationMs = performance.now() - started;
  return result;
}

/**
 * Checks that every declared type exists and every bronze column a silver
 * table reads as is (`from`, or the column's name) is in its bronze table, so a run stops with the same
 * message as `validate` (a {@linkcode ConfigError} at the column's key,
 * exit 2) instead of a bind error with generated SQL. Sources not landed
 * yet are skipped.
 */
async function checkSilverColumns(
  ctx: RunContext,
  options: { types?: boolean } = {},
): Promise<void> {
  const problems: ConfigProblem[] = [];
  const add = (path: string, message: string) => {
    const at = ctx.config.locate?.(path);
    problems.push({ file: ctx.config.file, line: at?.line ?? 0, col: at?.col ?? 0, path, message });
  };
  if (options.types) {
    // An unknown type (`INTEGR`) stops the run here, as in validate, not as generated SQL.
    await checkDeclaredTypes(ctx.db, ctx.config, add);
  } else {
    await checkColumns(ctx, add);
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** The missing-column half of {@linkcode checkSilverColumns}. */
async function checkColumns(
  ctx: RunContext,
  add: (path: string, message: string) => void,
): Promise<void> {
  const columns = new Map<string, string[]>();
  for (const [name, table] of Object.entries(ctx.config.silver)) {
    if (!columns.has(table.from)) {
      columns.set(
        table.from,
        (await tableColumns(ctx.db, "bronze", table.from)).map((c) => c.name)
          .filter((c) => !BRONZE_META_COLUMNS.includes(c)),
      );
    }
    const have = columns.get(table.from)!;
    if (have.length === 0) continue;
    for (const m of missingSourceColumns(table.from, table.columns, have)) {
      add(`silver.${name}.columns.${m.column}`, m.message);
    }
  }
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
    details: {
      files: files.length,
      format: source.format,
      columns_added: [],
      columns_missing: [],
    },
  };
  let landedRows = false;
  await ctx.db.transaction(async () => {
    const hasRejects = (await tableColumns(ctx.db, "bronze", rejectsTable(sp.source))).length > 0;
    for (const fp of sp.reingest) {
      const file = fileKey(fp);
      const removed = await ctx.db.run(`DELETE FROM ${table} WHERE _source_file = $file`, {
        file,
      });
      if (hasRejects) {
        await ctx.db.run(
          `DELETE FROM ${qualified("bronze", rejectsTable(sp.source))} WHERE file = $file`,
          { file },
        );
      }
      await ctx.db.run(
        `UPDATE _sluice.files SET status = 'superseded' WHERE source = $source AND path = $file`,
        { source: sp.source, file },
      );
      log.info("superseded rows of a changed file", {
        event: "file_superseded",
        table: sp.source,
        file,
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
      tr.rowsIn += landed.read + landed.rejected;
      tr.passed += found;
      tr.quarantined += landed.rejected;
      if (landed.rejected > 0) tr.details!.rejects_table = `bronze.${rejectsTable(sp.source)}`;
      landedRows = found > 0 && !landed.numbered;
      if (landedRows) {
        await ctx.db.run(`INSERT INTO _sluice.bronze_unnumbered VALUES ($t, $run_id)`, {
          t: sp.source,
          run_id: ctx.runId,
        });
      }
      await recordFiles(ctx, sp.source, files, "ingested", landed.perFile);
      forgetContents(files);
      for (const fp of files) {
        const rows = landed.perFile.get(fileKey(fp)) ?? 0;
        const rejected = landed.rejectedPerFile.get(fileKey(fp)) ?? 0;
        log.info("file ingested", {
          event: "file_ingested",
          table: sp.source,
          file: fileKey(fp),
          rows,
          rejected,
          bytes: fp.size,
        });
        if (rejected > 0) {
          log.warn("records rejected", {
            event: "records_rejected",
            table: sp.source,
            file: fileKey(fp),
            rejected,
            rejects_table: `bronze.${rejectsTable(sp.source)}`,
          });
        }
      }
    }
    await recordFiles(ctx, sp.source, sp.emptySkipped, "skipped_empty");
    crashPoint("bronze_landing");
  });
  crashPoint("bronze_landed");
  if (landedRows) await numberRows(ctx, sp.source, ctx.runId);
  crashPoint("bronze_numbered");
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
  const rows: Record<string, unknown>[] = [];
  for (const fp of files) {
    rows.push({
      path: fileKey(fp),
      size: fp.size,
      mtime: fp.mtimeMs,
      sha: await fileSha256(fp),
      rows: rowsPerFile?.get(fileKey(fp)) ?? 0,
    });
  }
  // The files as one JSON parameter: DuckDB binds a VALUES list of 2,000
  // rows in about 0.15 s (many small files), a JSON text in a few ms.
  await ctx.db.run(
    `INSERT INTO _sluice.files
     SELECT $source, r->>'path', (r->>'size')::BIGINT, (r->>'mtime')::DOUBLE, r->>'sha', $run_id,
       (r->>'rows')::BIGINT, $status, $at::TIMESTAMPTZ
     FROM (SELECT unnest(from_json($rows, '["JSON"]')) AS r)`,
    {
      source,
      run_id: ctx.runId,
      status,
      at: ctx.clock.now().toISOString(),
      rows: JSON.stringify(rows),
    },
  );
}

/** What the manifest and `_source_file` call a file: its path relative to the source folder. */
function fileKey(fp: FileFingerprint): string {
  return fp.rel ?? fp.path;
}

/** The name of a source's rejects table in the bronze schema. */
export function rejectsTable(source: string): string {
  return `${source}__rejects`;
}

async function ensureRejects(db: Engine, source: string): Promise<void> {
  await db.run(
    `CREATE TABLE IF NOT EXISTS ${qualified("bronze", rejectsTable(source))} (
      file VARCHAR, record BIGINT, line BIGINT, byte_offset BIGINT, reason VARCHAR,
      raw VARCHAR, _run_id VARCHAR, _rejected_at TIMESTAMPTZ)`,
  );
}

/** Longest raw text kept of a rejected record. */
const REJECT_RAW_CHARS = 10_000;

/** A CSV file's header line: the column names and the dialect they were split with. */
interface CsvHeader {
  names: string[];
  dialect: CsvDialect;
}

const DELIMITERS = [",", ";", "\t", "|"];

function splitCsvLine(line: string, delimiter: string, quote: string): string[] {
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
 * Reads the header line of a CSV file (bounded read) and splits it. Blank
 * names become `column<N>` (N counts from 1); duplicate names (compared
 * without case, as DuckDB does) and a header that only splits with another
 * delimiter than the configured one fail with a {@linkcode SourceError}
 * naming the file.
 */
async function csvHeader(
  name: string,
  fp: FileFingerprint,
  source: SourceConfig,
): Promise<CsvHeader | undefined> {
  const o = source.options ?? {};
  if (o.header === false || (o.skip ?? 0) > 0) return undefined;
  // A compressed file's header is read by DuckDB, which decompresses it.
  if (/\.(gz|gzip|zst|zstd)$/i.test(fp.path)) return undefined;
  const limit = 64 * 1024;
  let buf: Uint8Array;
  let n: number;
  if (fp.content) {
    buf = fp.content.subarray(0, limit);
    n = buf.length;
  } else {
    using file = await Deno.open(fp.path, { read: true });
    buf = new Uint8Array(limit);
    n = (await file.read(buf)) ?? 0;
  }
  const newline = buf.subarray(0, n).indexOf(0x0a);
  if (newline < 0 && n === limit) return undefined; // header longer than 64 KiB: let DuckDB sniff
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      buf.subarray(0, newline < 0 ? n : newline),
    ).replace(/^\uFEFF/, "");
  } catch {
    throw new SourceError(
      `Cannot load source "${name}": file ${fileKey(fp)} has a header line that is not UTF-8 ` +
        `text (is it a CSV file?)`,
      { context: { source: name, file: fileKey(fp) } },
    );
  }
  const crlf = text.endsWith("\r");
  const line = crlf ? text.slice(0, -1) : text;
  const quote = o.quote ?? '"';
  const delimiter = o.delimiter ??
    (line.includes(";") && !line.includes(",")
      ? ";"
      : line.includes("\t") && !line.includes(",")
      ? "\t"
      : line.includes("|") && !line.includes(",")
      ? "|"
      : ",");
  const names = splitCsvLine(line, delimiter, quote);
  if (o.delimiter !== undefined && names.length === 1) {
    const other = DELIMITERS.find((d) =>
      d !== delimiter && splitCsvLine(line, d, quote).length > 1
    );
    if (other) {
      throw new SourceError(
        `Cannot load source "${name}": file ${fileKey(fp)} has one column ` +
          `${JSON.stringify(names[0].slice(0, 80))} when split by ${
            JSON.stringify(delimiter)
          }; its delimiter looks like ${JSON.stringify(other)} (options.delimiter)`,
        { context: { source: name, file: fileKey(fp) } },
      );
    }
  }
  const named = names.map((h, i) => h === "" ? `column${i + 1}` : h);
  const seen = new Map<string, number>();
  for (const [i, h] of named.entries()) {
    const prev = seen.get(h.toLowerCase());
    if (prev !== undefined) {
      throw new SourceError(
        `Cannot load source "${name}": file ${fileKey(fp)} has the column name ` +
          `${JSON.stringify(h)} twice in its header (columns ${prev + 1} and ${i + 1})`,
        { context: { source: name, file: fileKey(fp), column: h } },
      );
    }
    seen.set(h.toLowerCase(), i);
  }
  if (named.some((h, i) => h !== names[i])) {
    getLogger(["sluice", "bronze"]).warn("blank column names in a CSV header", {
      event: "blank_header",
      source: name,
      file: fileKey(fp),
      columns: named.filter((h, i) => h !== names[i]),
    });
  }
  return { names: named, dialect: { delimiter, newline: crlf ? "\r\n" : "\n" } };
}

/**
 * Checks that each file is what the source's format reads, from its first
 * and last bytes: a gzip or zstd file must be named `.gz`/`.zst`, a Parquet
 * file must start and end with `PAR1`, a CSV or NDJSON file must not be
 * Parquet, an NDJSON file must not be one JSON array. Fails with one clear
 * {@linkcode SourceError} naming the file.
 */
async function checkFileKinds(
  name: string,
  source: SourceConfig,
  files: readonly FileFingerprint[],
): Promise<void> {
  const kinds = await Promise.all(files.map((fp) => sniffFile(fp.path, fp.content)));
  for (const [i, fp] of files.entries()) {
    const { kind, parquetFooter } = kinds[i];
    const fail = (what: string) => {
      throw new SourceError(`Cannot load source "${name}": file ${fileKey(fp)} ${what}`, {
        context: { source: name, file: fileKey(fp), format: source.format },
      });
    };
    const compressed = /\.(gz|gzip|zst|zstd)$/i.test(fp.path);
    if (source.format === "parquet") {
      if (kind !== "parquet") {
        fail(
          kind === "empty"
            ? "is empty"
            : `is not a Parquet file (it does not start with the PAR1 magic bytes; ` +
              `it looks like ${kind === "text" ? "text, e.g. CSV" : kind})`,
        );
      }
      if (!parquetFooter) {
        fail("is truncated or corrupt: it does not end with the Parquet footer (PAR1)");
      }
      continue;
    }
    if ((kind === "gzip" || kind === "zstd") && !compressed) {
      fail(
        `is ${kind}-compressed but its name does not end in .${
          kind === "gzip" ? "gz" : "zst"
        }; rename it so it is decompressed`,
      );
    }
    if (kind === "parquet") fail(`is a Parquet file; use format: parquet`);
    if (source.format === "ndjson" && kind === "json_array") {
      fail("is a JSON array; use format: json");
    }
    if (source.format === "json" && compressed) {
      fail("is compressed; format: json reads uncompressed files only");
    }
  }
}

/**
 * The columns a file holds: its CSV header (read by {@linkcode csvHeader}
 * beforehand), or DuckDB's view of the file.
 */
async function fileColumns(
  db: Engine,
  source: SourceConfig,
  path: string,
  header: CsvHeader | undefined,
): Promise<{ columns: ColumnInfo[]; fromHeader: boolean }> {
  if (header) {
    const columns = header.names.map((name) => ({
      column_name: name,
      column_type: source.columns?.[name] ?? "VARCHAR",
    }));
    return { columns, fromHeader: true };
  }
  const columns = await db.all<ColumnInfo>(`DESCRIBE SELECT * FROM ${readerSql(source, [path])}`);
  return { columns, fromHeader: false };
}

/** What {@linkcode landFiles} landed. */
interface Landed {
  /** Rows the INSERT wrote. */
  read: number;
  /** Rows found in bronze with this run's id, by file key. */
  perFile: Map<string, number>;
  /** Records sent to `bronze.<source>__rejects`. */
  rejected: number;
  /** Rejected records by file key. */
  rejectedPerFile: Map<string, number>;
  /** True when `_source_row` was set while landing (JSON formats, Parquet). */
  numbered: boolean;
}

/**
 * Checks schema drift of the files' columns against the bronze table and
 * each other (per the source's `schema_drift`), creates the table or adds
 * new columns. Returns the columns the reader yields.
 */
async function prepareTable(
  ctx: RunContext,
  name: string,
  source: SourceConfig,
  files: FileFingerprint[],
  perFileColumns: ColumnInfo[][],
  readColumns: () => Promise<ColumnInfo[]>,
  tr: TableResult,
): Promise<ColumnInfo[]> {
  const db = ctx.db;
  const table = qualified("bronze", name);
  let existing = await columnSet(db, "bronze", name);
  const added = new Set<string>();
  const missing = new Set<string>();
  const first = perFileColumns.findIndex((c) => c.length > 0);
  for (const [i, cols] of perFileColumns.entries()) {
    if (cols.length === 0) continue; // a JSON file without good records
    if (existing.size === 0 && i === first) continue;
    const names = cols.map((c) => c.column_name);
    const known = existing.size > 0
      ? [...existing].filter((c) => !BRONZE_META_COLUMNS.includes(c))
      : perFileColumns[first].map((c) => c.column_name);
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
          fileKey(files[i])
        } has ${detail} compared with earlier loads ` +
          `(set schema_drift: evolve to accept)`,
        {
          context: {
            source: name,
            file: fileKey(files[i]),
            added: fileAdded,
            missing: fileMissing,
          },
        },
      );
    }
    getLogger(["sluice", "bronze"]).warn("schema drift", {
      run_id: ctx.runId,
      pipeline: ctx.config.pipeline,
      stage: "bronze",
      event: "schema_drift",
      table: name,
      file: fileKey(files[i]),
      added: fileAdded,
      missing: fileMissing,
      policy: "evolve",
    });
    fileAdded.forEach((c) => added.add(c));
    fileMissing.forEach((c) => missing.add(c));
  }
  const read = await readColumns();
  if (existing.size === 0) {
    const declared = source.columns ?? {};
    // CSV and JSON land as text (or the declared type); Parquet keeps its types.
    const defs = read.map(({ column_name: c, column_type: t }) =>
      `${rawIdent(c)} ${
        declared[c] !== undefined
          ? sqlType(declared[c])
          : source.format === "parquet"
          ? sqlType(t)
          : "VARCHAR"
      }`
    );
    await db.run(
      `CREATE TABLE ${table} (${defs.join(", ")}, _run_id VARCHAR, ` +
        `_ingested_at TIMESTAMPTZ, _source_file VARCHAR, _source_row BIGINT)`,
    );
    existing = await columnSet(db, "bronze", name);
  }
  for (const col of read.map((c) => c.column_name)) {
    if (existing.has(col)) continue;
    const declared = source.columns?.[col];
    const type = declared
      ? sqlType(declared)
      : source.format === "parquet"
      ? sqlType(read.find((c) => c.column_name === col)?.column_type ?? "VARCHAR")
      : "VARCHAR";
    await db.run(`ALTER TABLE ${table} ADD COLUMN ${rawIdent(col)} ${type}`);
    added.add(col);
  }
  if (added.size || missing.size) {
    (tr.details!.columns_added as string[]).push(...added);
    (tr.details!.columns_missing as string[]).push(...missing);
  }
  return read;
}

/**
 * Turns a reader's failure into one line naming the source and, where
 * DuckDB says it, the file and line (a long line names `max_line_size`).
 */
function readFailure(
  name: string,
  files: readonly FileFingerprint[],
  e: unknown,
): SourceError | TimedOutError | CancelledError {
  // A stop (signal, time limit) interrupted the reader: it is not the source's fault.
  if (e instanceof TimedOutError || e instanceof CancelledError) return e;
  const message = errorMessage(e);
  const lines = message.split("\n");
  const byPath = new Map(files.map((f) => [f.path, fileKey(f)]));
  const fileMatch = /file\s*=\s*(\S+)/.exec(message) ??
    /"([^"]+)"/.exec(lines[0]) ?? /'([^']+)'/.exec(lines[0]);
  const path = fileMatch && byPath.has(fileMatch[1])
    ? fileMatch[1]
    : files.length === 1
    ? files[0].path
    : undefined;
  const file = path ? byPath.get(path) : undefined;
  const at = /CSV Error on Line:\s*(\d+)/.exec(message)?.[1];
  const where = file ? ` file ${file}${at ? ` line ${at}` : ""}` : "";
  const long = /Maximum line size of (\d+) bytes exceeded/.exec(message);
  const first =
    lines.find((l) => /Error|exceeded|Invalid|not|cannot|could/i.test(l) && !/^\s*$/.test(l)) ??
      lines[0];
  const hint = /state machine reached an invalid state/.test(message)
    ? " (are its line endings mixed, \\n and \\r\\n? the header line sets them)"
    : /TType|Parquet|thrift|metadata|page/i.test(message) && /\.parquet$/i.test(file ?? "")
    ? " (the Parquet file is corrupt)"
    : "";
  const text = long
    ? `${where.trim()} has a line longer than ${Number(long[1]).toLocaleString("en-US")} bytes; ` +
      `set options.max_line_size (e.g. "16MB") to read it`
    : `${where ? `${where.trim()}: ` : ""}${
      first.replace(/^Cannot run (SQL|query): /, "").replace(/^[A-Za-z ]+ Error: /, "")
    }${hint}`;
  return new SourceError(`Cannot load source "${name}": ${text}`, {
    cause: e,
    context: { source: name, file },
  });
}

/**
 * The metadata columns bronze adds while landing. `_source_file` is the path
 * relative to the source folder (every path given to the reader starts with
 * the folder, so DuckDB's `filename` too). Parquet's reader numbers each
 * file's rows itself (`file_row_number`, from 0): no numbering UPDATE
 * afterwards (0.13 s and a rewritten column at 3M rows), unless a file has a
 * column of that name, which hides the reader's.
 */
function landingMeta(
  ctx: RunContext,
  o: {
    source: SourceConfig;
    files: readonly FileFingerprint[];
    readColumns: readonly ColumnInfo[];
    ingestedAt: string;
  },
): { meta: string; readerNumbers: boolean } {
  const { files } = o;
  const prefix = files[0].path.slice(0, files[0].path.length - fileKey(files[0]).length);
  const samePrefix = files.every((f) => f.path === prefix + fileKey(f));
  const sourceFile = samePrefix && prefix !== ""
    ? `substr(filename, ${literal(prefix.length + 1)})`
    : "filename";
  const readerNumbers = o.source.format === "parquet" &&
    !o.readColumns.some((c) => c.column_name.toLowerCase() === "file_row_number");
  const meta =
    `${literal(ctx.runId)} AS _run_id, ${literal(o.ingestedAt)}::TIMESTAMPTZ AS _ingested_at, ` +
    `${sourceFile} AS _source_file, ` +
    (readerNumbers ? "(file_row_number + 1)::BIGINT" : "NULL::BIGINT") + " AS _source_row";
  return { meta, readerNumbers };
}

/**
 * Lands all given files of a source with one INSERT. Schema drift is checked
 * per file first (CSV headers are read directly; other formats are described
 * by DuckDB). CSV lines DuckDB cannot parse (too few or too many fields, an
 * unterminated quote, invalid UTF-8) go to `bronze.<source>__rejects` with
 * their line and DuckDB's reason; NDJSON and JSON records are landed by
 * {@linkcode landJsonFiles}.
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
): Promise<Landed> {
  // Small files are read once here, for their kind, header and hash.
  await readSmallFiles(files);
  await checkFileKinds(name, source, files);
  if (source.format === "ndjson" || source.format === "json") {
    return await landJsonFiles(ctx, name, source, files, tr, ingestedAt);
  }
  const db = ctx.db;
  const table = qualified("bronze", name);
  const perFileColumns: ColumnInfo[][] = [];
  let allHeaders = true;
  // The headers are read at the same time (a few hundred bytes of each file).
  const headers = source.format === "csv"
    ? await Promise.all(files.map((fp) => csvHeader(name, fp, source)))
    : [];
  try {
    for (const [i, fp] of files.entries()) {
      const found = await fileColumns(db, source, fp.path, headers[i]);
      perFileColumns.push(found.columns);
      allHeaders &&= found.fromHeader;
    }
  } catch (e) {
    if (e instanceof SluiceError && !(e instanceof EngineError)) throw e;
    throw readFailure(name, files, e);
  }
  const signature = (cols: ColumnInfo[]) => cols.map((c) => c.column_name).join("\u0000");
  const sameColumns = perFileColumns.every((c) => signature(c) === signature(perFileColumns[0]));
  const dialect = headers[0]?.dialect;
  const sameDialect = headers.every((h) =>
    h?.dialect.delimiter === dialect?.delimiter && h?.dialect.newline === dialect?.newline
  );
  // Every CSV file has the same header and dialect: DuckDB is given these
  // columns instead of detecting them (twice: to describe the reader and to
  // bind the INSERT), and sniffs nothing.
  const header = perFileColumns[0].map((c) => c.column_name);
  const knownHeader = allHeaders && sameColumns && sameDialect && dialect !== undefined;
  const csv = source.format === "csv";
  const rejects = { table: `_sluice_rejects_${name}`, scan: `_sluice_reject_scans_${name}` };
  if (csv) {
    await db.run(`DROP TABLE IF EXISTS temp.${rawIdent(rejects.table)}`);
    await db.run(`DROP TABLE IF EXISTS temp.${rawIdent(rejects.scan)}`);
  }
  const reader = readerSql(
    source,
    files.map((f) => f.path),
    knownHeader
      ? { csvColumns: header, dialect, rejects }
      : { unionByName: !sameColumns, ...(csv ? { rejects } : {}) },
  );
  const readColumns = await prepareTable(
    ctx,
    name,
    source,
    files,
    perFileColumns,
    async () => {
      if (knownHeader) return perFileColumns[0];
      try {
        return await db.all<ColumnInfo>(`DESCRIBE SELECT * FROM ${reader}`);
      } catch (e) {
        throw readFailure(name, files, e);
      }
    },
    tr,
  );
  const select = landedColumns(source, readColumns);
  const { meta, readerNumbers } = landingMeta(ctx, { source, files, readColumns, ingestedAt });
  const body = `SELECT ${select.join(", ")}, ${meta} FROM ${reader}`;
  let landed: number;
  try {
    landed = await db.run(`INSERT INTO ${table} BY NAME ${body}`);
  } catch (e) {
    throw readFailure(name, files, e);
  }
  const spans = await fileSpans(db, name, ctx.runId, { unnumberedOnly: false });
  const out: Landed = {
    read: landed,
    perFile: new Map(spans.map((r) => [r.f, r.n])),
    rejected: 0,
    rejectedPerFile: new Map(),
    numbered: readerNumbers,
  };
  if (csv) await keepCsvRejects(ctx, name, { source, files, rejects, ingestedAt, out });
  return out;
}

/**
 * Copies DuckDB's CSV rejects of this landing (if any) to
 * `bronze.<source>__rejects`, one row per bad line with the file's
 * relative path, and counts them per file into `out`.
 */
async function keepCsvRejects(
  ctx: RunContext,
  name: string,
  o: {
    source: SourceConfig;
    files: FileFingerprint[];
    rejects: { table: string; scan: string };
    ingestedAt: string;
    out: Landed;
  },
): Promise<void> {
  const { source, files, rejects, ingestedAt, out } = o;
  const db = ctx.db;
  const exists = await db.one(
    `SELECT 1 AS x FROM duckdb_tables() WHERE temporary AND table_name = $t`,
    { t: rejects.table },
  );
  if (exists) {
    await ensureRejects(db, name);
    const paths = files.map((f) => `(${literal(f.path)}, ${literal(fileKey(f))})`).join(", ");
    const skip = (source.options?.skip ?? 0) + (source.options?.header === false ? 0 : 1);
    await db.run(
      `INSERT INTO ${qualified("bronze", rejectsTable(name))}
         SELECT m.rel, e.line - ${literal(skip)}, e.line, min(e.line_byte_position),
           string_agg(DISTINCT e.error_type || ': ' || e.error_message || CASE
             WHEN e.error_type = 'LINE SIZE OVER MAXIMUM'
             THEN ' Set options.max_line_size (e.g. "16MB") to read it.' ELSE '' END, '; '),
           left(min(e.csv_line), ${REJECT_RAW_CHARS}), ${literal(ctx.runId)},
           ${literal(ingestedAt)}::TIMESTAMPTZ
         FROM temp.${rawIdent(rejects.table)} AS e
         JOIN temp.${rawIdent(rejects.scan)} AS s USING (scan_id, file_id)
         JOIN (VALUES ${paths}) AS m(path, rel) ON m.path = s.file_path
         GROUP BY m.rel, e.line`,
    );
    const counts = await db.all<{ f: string; n: number }>(
      `SELECT file AS f, count(*)::INTEGER AS n FROM ${qualified("bronze", rejectsTable(name))}
         WHERE _run_id = $run GROUP BY 1`,
      { run: ctx.runId },
    );
    for (const c of counts) {
      out.rejectedPerFile.set(c.f, c.n);
      out.rejected += c.n;
    }
    await db.run(`DROP TABLE IF EXISTS temp.${rawIdent(rejects.table)}`);
    await db.run(`DROP TABLE IF EXISTS temp.${rawIdent(rejects.scan)}`);
  }
}

/** The JSONPath of a top-level key, e.g. `$."Title"`. */
function keyPath(key: string): string {
  return `$."${key.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * Lands NDJSON or JSON-array files: their records are split in TypeScript
 * ({@linkcode appendJsonRecords}) into a temp table with file, line and byte
 * offset; records that are not valid JSON objects (invalid JSON or UTF-8, a
 * truncated last line, trailing garbage, duplicate keys, a declared column
 * that does not cast) go to `bronze.<source>__rejects`; every top-level key
 * of the good ones becomes a column holding the value's text: a string
 * without its quotes, a number exactly as written, `true`/`false`, NULL for
 * `null` or a missing key, an object or array as JSON text. Casting happens
 * once, in silver. `_source_row` is the NDJSON line or the JSON array's
 * element number.
 */
async function landJsonFiles(
  ctx: RunContext,
  name: string,
  source: SourceConfig,
  files: FileFingerprint[],
  tr: TableResult,
  ingestedAt: string,
): Promise<Landed> {
  const db = ctx.db;
  const format = source.format;
  const recordsName = `_sluice_records_${name}`;
  const records = `temp.${rawIdent(recordsName)}`;
  const extracted = `temp.${rawIdent(`_sluice_extracted_${name}`)}`;
  const declared = source.columns ?? {};
  const { appended, perFileColumns } = await readJsonRecords(db, name, source, files, recordsName);
  const all = jsonColumns(name, perFileColumns);
  const readColumns = await prepareTable(
    ctx,
    name,
    source,
    files,
    perFileColumns,
    () =>
      Promise.resolve(all.map((k) => ({ column_name: k, column_type: declared[k] ?? "VARCHAR" }))),
    tr,
  );
  // One parse per record: every top-level value as text (numbers are strings in `q`).
  const paths = `[${all.map((k) => literal(keyPath(k))).join(", ")}]::VARCHAR[]`;
  const values = all.map((k, i) => `__s[${i + 1}] AS ${rawIdent(k)}`);
  const indexed = format === "json"
    ? "row_number() OVER (PARTITION BY file ORDER BY byte_offset)"
    : "line";
  // The records with their number; with declared types, materialized so a
  // failed cast can reject its record first.
  const typed = Object.keys(declared).some((k) => all.includes(k));
  let from = `(SELECT file, line, byte_offset, text, bad, ${indexed} AS __record${
    all.length ? `, CASE WHEN bad IS NULL THEN json_extract_string(q, ${paths}) END AS __s` : ""
  } FROM ${records})`;
  if (typed) {
    await db.run(`DROP TABLE IF EXISTS ${extracted}`);
    await db.run(
      `CREATE TEMP TABLE ${extracted} AS
       SELECT file, line, byte_offset, text, bad, __record${values.length ? ", " : ""}${
        values.join(", ")
      } FROM ${from}`,
    );
    for (const [k, type] of Object.entries(declared)) {
      if (!all.includes(k)) continue;
      const col = rawIdent(k);
      await db.run(
        `UPDATE ${extracted} SET bad = ${literal(`column "${k}": cannot cast `)} ||
           left(${col}, 200) || ${literal(` to ${sqlType(type)}`)}
         WHERE bad IS NULL AND ${col} IS NOT NULL AND TRY_CAST(${col} AS ${sqlType(type)}) IS NULL`,
      );
    }
    from = extracted;
  }
  const select = readColumns.map(({ column_name: c }) =>
    declared[c] !== undefined
      ? `CAST(${rawIdent(c)} AS ${sqlType(declared[c])}) AS ${rawIdent(c)}`
      : typed
      ? rawIdent(c)
      : `__s[${all.indexOf(c) + 1}] AS ${rawIdent(c)}`
  );
  // The records were appended in file order: a plain scan keeps it.
  const landed = await db.run(
    `INSERT INTO ${qualified("bronze", name)} BY NAME
     SELECT ${select.length ? select.join(", ") + ", " : ""}${literal(ctx.runId)} AS _run_id,
       ${literal(ingestedAt)}::TIMESTAMPTZ AS _ingested_at, file AS _source_file,
       __record AS _source_row
     FROM ${from} WHERE bad IS NULL`,
  );
  const out = await keepRejects(ctx, name, {
    from,
    counted: typed ? extracted : records,
    landed,
    ingestedAt,
  });
  if (landed + out.rejected !== appended) {
    throw new ConservationError(
      `Records do not add up in bronze "${name}": ${appended} read from the files, ` +
        `${landed} landed and ${out.rejected} rejected`,
      { context: { table: name } },
    );
  }
  await db.run(`DROP TABLE IF EXISTS ${extracted}`);
  await db.run(`DROP TABLE IF EXISTS ${records}`);
  return out;
}

/**
 * Copies the rejected records of a JSON landing to `bronze.<source>__rejects`
 * and counts, per file, the records rejected (in `counted`) and the rows this
 * run landed (in bronze).
 */
async function keepRejects(
  ctx: RunContext,
  name: string,
  o: { from: string; counted: string; landed: number; ingestedAt: string },
): Promise<Landed> {
  const db = ctx.db;
  const out: Landed = {
    read: o.landed,
    perFile: new Map(),
    rejected: 0,
    rejectedPerFile: new Map(),
    numbered: true,
  };
  const rejected = await db.one<{ n: number }>(
    `SELECT count(*)::INTEGER AS n FROM ${o.counted} WHERE bad IS NOT NULL`,
  );
  if ((rejected?.n ?? 0) > 0) {
    await ensureRejects(db, name);
    await db.run(
      `INSERT INTO ${qualified("bronze", rejectsTable(name))}
       SELECT file, __record, line, byte_offset, bad, left(text, ${REJECT_RAW_CHARS}),
         ${literal(ctx.runId)}, ${literal(o.ingestedAt)}::TIMESTAMPTZ
       FROM ${o.from} WHERE bad IS NOT NULL`,
    );
  }
  for (
    const r of await db.all<{ f: string; ok: number; bad: number }>(
      `SELECT file AS f, count(*) FILTER (WHERE bad IS NULL)::INTEGER AS ok,
         count(*) FILTER (WHERE bad IS NOT NULL)::INTEGER AS bad
       FROM ${o.counted} GROUP BY 1`,
    )
  ) {
    if (r.bad > 0) out.rejectedPerFile.set(r.f, r.bad);
    out.rejected += r.bad;
  }
  // This run's rows in bronze, counted there.
  for (
    const r of await db.all<{ f: string; n: number }>(
      `SELECT _source_file AS f, count(*)::INTEGER AS n FROM ${qualified("bronze", name)}
       WHERE _run_id = $run GROUP BY 1`,
      { run: ctx.runId },
    )
  ) out.perFile.set(r.f, r.n);
  return out;
}

/**
 * Appends the records of every file to the temp table `recordsName` (see
 * {@linkcode appendJsonRecords}); returns how many, and each file's keys
 * as columns. A file that is not what the format reads fails naming it.
 */
async function readJsonRecords(
  db: Engine,
  name: string,
  source: SourceConfig,
  files: FileFingerprint[],
  recordsName: string,
): Promise<{ appended: number; perFileColumns: ColumnInfo[][] }> {
  const declared = source.columns ?? {};
  await createRecordTable(db, `temp.${rawIdent(recordsName)}`);
  let appended = 0;
  const perFileColumns: ColumnInfo[][] = [];
  for (const fp of files) {
    const counts = await appendJsonRecords(db, recordsName, fp, {
      format: source.format as "ndjson" | "json",
      // A declared column's failed cast rejects a good record: keep its text.
      keepText: Object.keys(declared).length > 0,
    }).catch((e) => {
      if (e instanceof SourceError && e.message.startsWith("file ")) {
        throw new SourceError(`Cannot load source "${name}": ${e.message}`, {
          cause: e,
          context: { source: name, file: fileKey(fp) },
        });
      }
      throw readFailure(name, [fp], e);
    });
    appended += counts.records;
    perFileColumns.push(counts.keys.map((k) => ({
      column_name: k,
      column_type: declared[k] ?? "VARCHAR",
    })));
  }
  return { appended, perFileColumns };
}

/**
 * The bronze columns of a JSON landing: every file's keys, in order of
 * first appearance. Keys that differ only in case (DuckDB column names
 * ignore case), an empty key or a bronze metadata name fail the landing.
 */
function jsonColumns(name: string, perFileColumns: ColumnInfo[][]): string[] {
  const all: string[] = [];
  const lower = new Map<string, string>();
  for (const c of perFileColumns.flat()) {
    const k = c.column_name;
    const seen = lower.get(k.toLowerCase());
    if (seen !== undefined && seen !== k) {
      throw new SourceError(
        `Cannot load source "${name}": keys ${JSON.stringify(seen)} and ${
          JSON.stringify(k)
        } differ only in case; bronze columns ignore case`,
        { context: { source: name, key: k } },
      );
    }
    if (seen !== undefined) continue;
    if (BRONZE_META_COLUMNS.includes(k) || k === "") {
      throw new SourceError(
        `Cannot load source "${name}": key ${JSON.stringify(k)} cannot be a bronze column ` +
          `(it is empty or a name bronze uses itself)`,
        { context: { source: name, key: k } },
      );
    }
    lower.set(k.toLowerCase(), k);
    all.push(k);
  }
  return all;
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
    if (spans.length > 0) await skipRejectedRecords(db, name, runId, firsts);
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
 * Corrects `_source_row` of the rows after a rejected CSV record: the
 * landed rows' row ids skip the rejected records, so the k-th landed row of
 * a file is record `k + j`, where j counts the rejected records r_i (sorted)
 * with `r_i - i < k`. Sets the number again from the row id (so running it
 * twice gives the same numbers), only for files of `runId` with rejects.
 */
async function skipRejectedRecords(
  db: Engine,
  name: string,
  runId: string,
  firsts: string,
): Promise<void> {
  const rejects = qualified("bronze", rejectsTable(name));
  if ((await tableColumns(db, "bronze", rejectsTable(name))).length === 0) return;
  const any = await db.one(`SELECT 1 AS x FROM ${rejects} WHERE _run_id = $run LIMIT 1`, {
    run: runId,
  });
  if (!any) return;
  await db.run(
    `UPDATE ${qualified("bronze", name)} AS b SET _source_row = b.rowid - s.first_id + 1 + a.j
     FROM (VALUES ${firsts}) AS s(f, first_id),
       (SELECT file, gap, max(j) AS j, lead(gap) OVER (PARTITION BY file ORDER BY gap) AS next_gap
        FROM (SELECT file, record - row_number() OVER (PARTITION BY file ORDER BY record) AS gap,
                row_number() OVER (PARTITION BY file ORDER BY record) AS j
              FROM ${rejects} WHERE _run_id = $run)
        GROUP BY file, gap) AS a
     WHERE b._run_id = $run AND b._source_file = s.f AND a.file = s.f
       AND b.rowid - s.first_id + 1 > a.gap
       AND (a.next_gap IS NULL OR b.rowid - s.first_id + 1 <= a.next_gap)`,
    { run: runId },
  );
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

/** Most files {@linkcode sourceColumns} looks at. */
const SAMPLE_FILES = 100;

/** Keys of the JSON records in the first MiB of an NDJSON or JSON-array file, in order. */
async function sampleJsonKeys(path: string, format: "ndjson" | "json"): Promise<string[]> {
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  let got = 0;
  while (got < buf.length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  const text = new TextDecoder().decode(buf.subarray(0, got)).replace(/^\uFEFF/, "");
  const keys: string[] = [];
  const add = (v: unknown) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const k of Object.keys(v)) if (!keys.includes(k)) keys.push(k);
    }
  };
  if (format === "json") {
    const size = (await file.stat()).size;
    const whole = size <= got ? text : new TextDecoder().decode(await Deno.readFile(path));
    try {
      const v = JSON.parse(whole);
      (Array.isArray(v) ? v.slice(0, 10_000) : [v]).forEach(add);
    } catch { /* a broken file: bronze rejects its records */ }
    return keys;
  }
  const lines = text.split("\n");
  if (got === buf.length) lines.pop(); // maybe cut short
  for (const line of lines) {
    try {
      add(JSON.parse(line));
    } catch { /* rejected at landing */ }
  }
  return keys;
}

/**
 * The columns the files of a source hold (at most the first 100 files, in
 * path order): CSV headers as bronze reads them, Parquet schemas with their
 * types, the keys of NDJSON/JSON records in the first MiB of each file.
 * `validate` compares them with what silver reads. A file that cannot be
 * read fails with the {@linkcode SourceError} bronze would raise.
 *
 * @example
 * ```ts ignore
 * const cols = await sourceColumns(db, "orders", config.sources.orders, files);
 * ```
 */
export async function sourceColumns(
  db: Engine,
  name: string,
  source: SourceConfig,
  paths: readonly string[],
): Promise<CatalogColumn[]> {
  const out: CatalogColumn[] = [];
  const seen = new Set<string>();
  const push = (n: string, type: string) => {
    if (seen.has(n.toLowerCase())) return;
    seen.add(n.toLowerCase());
    out.push({ name: n, type });
  };
  const files = paths.slice(0, SAMPLE_FILES).map((path) => ({
    path,
    rel: path.split("/").pop(),
    size: 0,
    mtimeMs: 0,
    sha256: "",
  }));
  await checkFileKinds(name, source, files);
  for (const fp of files) {
    if (source.format === "ndjson" || source.format === "json") {
      for (const k of await sampleJsonKeys(fp.path, source.format)) {
        push(k, source.columns?.[k] ?? "VARCHAR");
      }
      continue;
    }
    const header = source.format === "csv" ? await csvHeader(name, fp, source) : undefined;
    try {
      const found = await fileColumns(db, source, fp.path, header);
      for (const c of found.columns) {
        push(c.column_name, source.format === "parquet" ? c.column_type : "VARCHAR");
      }
    } catch (e) {
      if (e instanceof SluiceError && !(e instanceof EngineError)) throw e;
      throw readFailure(name, [fp], e);
    }
  }
  return out;
}
