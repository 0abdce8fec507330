/**
 * Staging: puts the lines a batch reads into temporary tables, within the
 * batch's bounds (files, records, bytes), and says how far each file got.
 *
 * Two readers produce the same shape:
 *
 * - DuckDB (`read_text` + `string_split`): for files no bigger than the
 *   batch's remaining byte budget; lines already consumed are skipped by
 *   number, byte offsets come from a running sum of line lengths. Fast: no
 *   line crosses into TypeScript.
 * - TypeScript (`readSlice`): for files bigger than the budget, read from a
 *   byte offset in bounded slices, and for files that are not valid UTF-8
 *   (DuckDB's `read_text` refuses them; the bad lines are dead-lettered).
 *
 * Tables (temporary, outside the batch's transaction):
 * `_sluice_lines(slice, ln, nb, line)` (line number, the line's bytes with
 * its line end, text without it), `_sluice_slices(slice, path, base, hdr)`
 * (`base`: byte offset of the slice's first staged line), `_sluice_badenc(seq)`.
 *
 * @module
 */
import { basename } from "node:path";
import type { StreamingConfig } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import { EngineError, SourceError } from "../core/errors.ts";
import { literal, literalList } from "../core/quote.ts";
import { csvHeaderSql } from "./_sql.ts";
import type { FileState } from "./checkpoint.ts";
import { readSlice, sha256Hex } from "./source.ts";

/** Lines of one slice are numbered `slice * SEQ_SLICE + line` in stream order. */
export const SEQ_SLICE = 4294967296;

/** A file the batch may read. */
export interface StageFile {
  /** Absolute path. */
  path: string;
  /** Size planned (the second look must agree). */
  size: number;
  /** Modification time planned. */
  mtimeMs: number;
  /** What the checkpoint knows, when the file was read before. */
  state?: FileState;
}

/** How far one file got in this batch. */
export interface StagedSlice {
  /** Slice number in the batch (stream order). */
  slice: number;
  /** The file. */
  file: StageFile;
  /** Byte offset where this batch started reading. */
  start: number;
  /** Byte offset after the last line consumed. */
  end: number;
  /** Line number of the first record staged. */
  firstLine: number;
  /** Lines consumed in this batch, header included. */
  linesConsumed: number;
  /** Record lines staged. */
  records: number;
  /** The CSV header line, read now or known from the checkpoint. */
  header: string | null;
  /** True when the file was read to its end. */
  done: boolean;
  /** SHA-256 of bytes `start` to `end`, when the file stays partly read. */
  sha256?: string;
  /** Byte offset of the first staged line (the header, when a CSV file starts here). */
  base: number;
}

/** The batch's bounds. */
export interface StageBudget {
  /** Files. */
  files: number;
  /** Record lines. */
  lines: number;
  /** Bytes. */
  bytes: number;
}

/** What {@linkcode stageBatch} staged. */
export interface Staged {
  /** The files read, in stream order. */
  slices: StagedSlice[];
  /** Record lines staged. */
  records: number;
  /** True when some line was not valid UTF-8. */
  badUtf8: boolean;
}

/**
 * Creates the staging tables and fills them with the lines of `files` (in
 * order) that fit the budget.
 *
 * @example
 * ```ts ignore
 * const staged = await stageBatch(db, cfg, files, { files: 10, lines: 1e6, bytes: 256e6 });
 * staged.records; // lines now in _sluice_lines
 * ```
 */
export async function stageBatch(
  db: Engine,
  s: StreamingConfig,
  files: StageFile[],
  budget: StageBudget,
): Promise<Staged> {
  await db.run(
    `CREATE OR REPLACE TEMP TABLE _sluice_lines (slice INTEGER, ln BIGINT, nb INTEGER, line VARCHAR)`,
  );
  await db.run(
    `CREATE OR REPLACE TEMP TABLE _sluice_slices (slice INTEGER, path VARCHAR, base BIGINT,
    hdr VARCHAR[])`,
  );
  await db.run(`CREATE OR REPLACE TEMP TABLE _sluice_badenc (seq BIGINT)`);
  const csvHeader = s.source.format === "csv" && (s.source.options?.header ?? true);
  for (const f of files) if ((f.state?.offset ?? 0) === 0) await refuseCompressed(f.path);
  const left = { ...budget };
  const out: Staged = { slices: [], records: 0, badUtf8: false };
  let i = 0;
  while (i < files.length && left.files > 0 && left.lines > 0 && left.bytes > 0) {
    // A run of files that fit whole into the byte budget is read by DuckDB in one statement.
    const group: StageFile[] = [];
    let bytes = 0;
    while (
      i + group.length < files.length && group.length < left.files &&
      bytes + files[i + group.length].size <= left.bytes
    ) {
      bytes += files[i + group.length].size;
      group.push(files[i + group.length]);
    }
    let slices: StagedSlice[] | undefined;
    if (group.length > 0) {
      slices = await stageWithDuckDb(db, group, {
        firstSlice: out.slices.length,
        lines: left.lines,
        csvHeader,
      });
      if (slices !== undefined) i += group.length;
    }
    if (slices === undefined) {
      // Too big for the budget, or not valid UTF-8: read it from TypeScript.
      const one = await stageWithTypeScript(db, files[i], {
        slice: out.slices.length,
        lines: left.lines,
        bytes: left.bytes,
        csvHeader,
      });
      i++;
      slices = one === undefined ? [] : [one.slice];
      if (one?.badUtf8) out.badUtf8 = true;
    }
    for (const sl of slices) {
      out.slices.push(sl);
      out.records += sl.records;
      left.files--;
      left.lines -= sl.records;
      left.bytes -= sl.end - sl.start;
    }
    // The line budget cut a file: the batch ends there.
    if (slices.some((sl) => !sl.done)) break;
  }
  if (out.slices.length > 0) {
    const header = s.source.format === "csv" ? csvHeaderSql(s, "h") : "NULL::VARCHAR[]";
    const nul = out.slices.find((sl) => sl.header?.includes("\0"));
    if (nul !== undefined) {
      throw new SourceError(
        `Cannot read stream file ${basename(nul.file.path)}: its CSV header holds a NUL byte`,
      );
    }
    const values = out.slices.map((sl) =>
      `(${sl.slice}, ${literal(sl.file.path)}, ${sl.base}, ${
        sl.header === null ? "NULL" : literal(sl.header)
      })`
    );
    await db.run(
      `INSERT INTO _sluice_slices SELECT k, p, b, ${header}
       FROM (VALUES ${values.join(", ")}) AS v(k, p, b, h)`,
    );
  }
  return out;
}

async function stageWithDuckDb(
  db: Engine,
  candidates: StageFile[],
  options: { firstSlice: number; lines: number; csvHeader: boolean },
): Promise<StagedSlice[] | undefined> {
  // The second look: a file whose size or time changed since it was planned is not complete.
  const group: StageFile[] = [];
  for (const f of candidates) {
    const info = await Deno.stat(f.path).catch(() => undefined);
    if (info?.size === f.size && (info.mtime?.getTime() ?? 0) === f.mtimeMs) group.push(f);
  }
  if (group.length === 0) return [];
  const first = options.firstSlice;
  const plan = group.map((f, j) => `(${first + j}, ${literal(f.path)}, ${f.state?.lines ?? 0})`);
  // Only files holding a carriage return pay for the per-line CR check.
  try {
    await db.run(
      `INSERT INTO _sluice_lines
       SELECT k, ln, strlen(raw) + 1,
         CASE WHEN ln = 1 AND starts_with(line, chr(65279)) THEN substr(line, 2) ELSE line END
       FROM (SELECT k, ln, line AS raw,
         CASE WHEN NOT cr THEN line
           WHEN ends_with(line, chr(13)) THEN left(line, length(line) - 1) ELSE line END AS line
       FROM (
         SELECT k, skip, last, cr, unnest(parts) AS line, generate_subscripts(parts, 1) AS ln
         FROM (
           SELECT p.k, p.skip, parts, cr,
             len(parts) - CASE WHEN parts[-1] = '' THEN 1 ELSE 0 END AS last
           FROM (SELECT filename, contains(content, chr(13)) AS cr,
               string_split(content, chr(10)) AS parts
             FROM read_text(${literalList(group.map((g) => g.path))})) AS f
           JOIN (VALUES ${plan.join(", ")}) AS p(k, path, skip) ON f.filename = p.path
         )
       ) WHERE ln > skip AND ln <= last)`,
    );
  } catch (e) {
    if (e instanceof EngineError && /valid UTF-8/i.test(e.message)) {
      await db.run(`DELETE FROM _sluice_lines WHERE slice >= ${first}`);
      return undefined;
    }
    throw e;
  }
  type Stat = { k: number; lines: number; first_ln: number; bytes: number; header: string | null };
  const readStats = async () =>
    new Map(
      (await db.all<Stat & Record<string, unknown>>(
        `SELECT slice AS k, count(*) AS lines, min(ln) AS first_ln, sum(nb) AS bytes,
           ${options.csvHeader ? "max(line) FILTER (WHERE ln = 1)" : "NULL"} AS header
         FROM _sluice_lines WHERE slice >= ${first} GROUP BY slice`,
      )).map((r) => [Number(r.k), r]),
    );
  let stats = await readStats();
  const isHeader = (f: StageFile, st: Stat | undefined) =>
    options.csvHeader && (f.state?.lines ?? 0) === 0 && st !== undefined &&
    Number(st.first_ln) === 1;
  const recordsOf = (f: StageFile, st: Stat | undefined) =>
    (st ? Number(st.lines) : 0) - (isHeader(f, st) ? 1 : 0);
  // The line budget: keep records in stream order up to it, cut the file where it ends.
  let cut: { k: number; keep: number } | undefined;
  let used = 0;
  for (const [j, f] of group.entries()) {
    const n = recordsOf(f, stats.get(first + j));
    if (used + n > options.lines) {
      cut = { k: first + j, keep: options.lines - used };
      break;
    }
    used += n;
  }
  if (cut !== undefined) {
    const f = group[cut.k - first];
    const st = stats.get(cut.k)!;
    const lastKept = Number(st.first_ln) + (isHeader(f, st) ? 1 : 0) + cut.keep - 1;
    await db.run(
      `DELETE FROM _sluice_lines WHERE slice > ${cut.k} OR (slice = ${cut.k} AND ln > ${lastKept})`,
    );
    stats = await readStats();
  }
  const out: StagedSlice[] = [];
  for (const [j, f] of group.entries()) {
    const k = first + j;
    if (cut !== undefined && k > cut.k) break;
    const st = stats.get(k);
    const records = recordsOf(f, st);
    const done = cut === undefined || k < cut.k;
    if (records === 0 && !done) break; // the line budget ran out before this file's first record
    const start = f.state?.offset ?? 0;
    const slice: StagedSlice = {
      slice: first + out.length,
      file: f,
      start,
      end: done ? f.size : start + Number(st!.bytes),
      firstLine: (st ? Number(st.first_ln) : (f.state?.lines ?? 0) + 1) + (isHeader(f, st) ? 1 : 0),
      linesConsumed: st ? Number(st.lines) : 0,
      records,
      header: st?.header ?? f.state?.header ?? null,
      done,
      base: start,
    };
    if (slice.slice !== k) {
      await db.run(`UPDATE _sluice_lines SET slice = ${slice.slice} WHERE slice = ${k}`);
    }
    if (!done) slice.sha256 = sha256Hex(await readRange(f.path, slice.start, slice.end));
    out.push(slice);
  }
  return out;
}

/** A gzip file under a plain-text name would be read as garbage lines: refuse it by name. */
async function refuseCompressed(path: string): Promise<void> {
  const head = await readRange(path, 0, 2).catch(() => new Uint8Array(0));
  if (head[0] === 0x1f && head[1] === 0x8b) {
    throw new SourceError(
      `Cannot read stream file ${basename(path)}: it is gzip-compressed; ` +
        "the stream reads plain text, so decompress it before it lands",
    );
  }
}

async function readRange(path: string, start: number, end: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  await file.seek(start, Deno.SeekMode.Start);
  const buf = new Uint8Array(end - start);
  let got = 0;
  while (got < buf.length) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return buf.subarray(0, got);
}

async function stageWithTypeScript(
  db: Engine,
  f: StageFile,
  options: { slice: number; lines: number; bytes: number; csvHeader: boolean },
): Promise<{ slice: StagedSlice; badUtf8: boolean } | undefined> {
  const start = f.state?.offset ?? 0;
  const read = await readSlice(f.path, {
    offset: start,
    size: f.size,
    maxLines: options.lines,
    maxBytes: options.bytes,
    header: options.csvHeader && (f.state?.lines ?? 0) === 0,
  });
  if (read === undefined) return undefined; // changed since planned: not complete
  const firstLine = (f.state?.lines ?? 0) + 1 + (read.header !== undefined ? 1 : 0);
  const k = options.slice;
  const { lines, offsets } = read;
  const size = read.end - read.start;
  await db.append("_sluice_lines", (row) => {
    for (let i = 0; i < lines.length; i++) {
      row.integer(k);
      row.bigint(firstLine + i);
      row.integer((i + 1 < lines.length ? offsets[i + 1] : size) - offsets[i]);
      row.varchar(lines[i]);
      row.endRow();
    }
  }, { temp: true });
  if (read.badUtf8.length > 0) {
    const seqs = read.badUtf8.map((i) => k * SEQ_SLICE + firstLine + i);
    await db.run(
      `INSERT INTO _sluice_badenc SELECT unnest(${literal(`[${seqs.join(",")}]`)}::BIGINT[])`,
    );
  }
  const done = read.end >= f.size;
  const slice: StagedSlice = {
    slice: k,
    file: f,
    start,
    end: read.end,
    firstLine,
    linesConsumed: read.linesConsumed,
    records: lines.length,
    header: read.header ?? f.state?.header ?? null,
    done,
    sha256: done ? undefined : sha256Hex(read.bytes),
    // Offsets count from the first record (the header's bytes come before it).
    base: start + (lines.length > 0 ? offsets[0] : 0),
  };
  return { slice, badUtf8: read.badUtf8.length > 0 };
}
