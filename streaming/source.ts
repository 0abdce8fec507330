/**
 * The landing-folder source of a stream: discovers files matching the glob
 * in a stable order (modification time, then name), decides when a file is
 * complete (size and modification time settled and unchanged between two
 * looks, or a marker file), reads complete lines from a byte offset within
 * a batch's bounds, and checks that a partly read file is still intact.
 *
 * Reading lines is the one place where TypeScript touches every record:
 * it scans the bytes for line ends (native `indexOf`), decodes the slice
 * once and hands the lines to DuckDB's appender. Parsing and validation
 * happen in SQL.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import type { StreamingConfig } from "../core/config/mod.ts";
import { parseDuration } from "../core/duration.ts";
import { SourceError } from "../core/errors.ts";
import { listFiles } from "../core/files.ts";

/** A file in the landing folder as seen by one look. */
export interface LandingFile {
  /** Absolute path. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Modification time, ms since epoch. */
  mtimeMs: number;
  /** True when the file counts as complete (settled, or its marker exists). */
  complete: boolean;
}

/**
 * Lists the landing folder: files matching the glob (markers and the paths
 * in `skip` excluded), with size, modification time and completeness,
 * ordered by modification time then name. A missing landing folder is a
 * {@linkcode SourceError}.
 *
 * @example
 * ```ts ignore
 * const files = await discoverFiles(config.streaming, { now: ctx.clock.now() });
 * files.filter((f) => f.complete).map((f) => f.path);
 * ```
 */
export async function discoverFiles(
  s: StreamingConfig,
  options: { now: Date; skip?: ReadonlySet<string> },
): Promise<LandingFile[]> {
  let paths: string[];
  try {
    paths = await listFiles(s.source.path, s.source.glob);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new SourceError(
        `Cannot read the landing folder ${JSON.stringify(s.source.path)}: it does not exist`,
        { cause: e, context: { path: s.source.path } },
      );
    }
    throw e;
  }
  const marker = s.source.marker_suffix;
  if (marker !== undefined) paths = paths.filter((p) => !p.endsWith(marker));
  // Files already finished are not looked at again (no stat per finished file and batch).
  if (options.skip !== undefined) paths = paths.filter((p) => !options.skip!.has(p));
  const settleMs = parseDuration(s.source.settle);
  const names = new Set(marker !== undefined ? await listAll(s.source.path, paths) : []);
  const files: LandingFile[] = [];
  for (const path of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // removed between listing and stat
      throw e;
    }
    const mtimeMs = info.mtime?.getTime() ?? 0;
    const complete = marker !== undefined
      ? names.has(path + marker) || await exists(path + marker)
      : options.now.getTime() - mtimeMs >= settleMs;
    files.push({ path, size: info.size, mtimeMs, complete });
  }
  files.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return files;
}

async function listAll(dir: string, paths: string[]): Promise<string[]> {
  // Markers may not match the glob; look them up next to each file.
  const out: string[] = [];
  const folders = new Set(paths.map((p) => p.slice(0, p.length - basename(p).length)));
  for (const folder of folders.size > 0 ? folders : new Set([dir])) {
    try {
      for await (const e of Deno.readDir(folder)) if (e.isFile) out.push(folder + e.name);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Options of {@linkcode readSlice}. */
export interface ReadSliceOptions {
  /** Byte offset to start at (the end of the last complete line read so far). */
  offset: number;
  /** File size when it was planned (the second look must agree). */
  size: number;
  /** Read at most this many lines. */
  maxLines: number;
  /** Read at most this many bytes (a single longer line is still read whole). */
  maxBytes: number;
  /** True when the first line of the file is a CSV header (only used at offset 0). */
  header: boolean;
}

/** Complete lines read from one file for one batch. */
export interface Slice {
  /** Absolute path. */
  path: string;
  /** Byte offset of the first line read. */
  start: number;
  /** Byte offset just after the last line read. */
  end: number;
  /** 1-based line number of the first record in `lines`. */
  firstLine: number;
  /** The records (header excluded), without line ends. */
  lines: string[];
  /** Byte offset of each record, relative to `start`. */
  offsets: number[];
  /** Indexes into `lines` of lines that are not valid UTF-8 (decoded with U+FFFD). */
  badUtf8: number[];
  /** The CSV header's field texts when this slice read it, else undefined. */
  header?: string;
  /** Lines consumed, header included. */
  linesConsumed: number;
  /** The bytes read, `start` to `end` (kept until the slice's hash is taken). */
  bytes: Uint8Array;
}

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lossy = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * Reads complete lines of `path` from `offset`, at most `maxLines` lines and
 * about `maxBytes` bytes; a final line without a newline counts when it ends
 * the file (the file is complete). Returns `undefined` when the file changed
 * since it was planned (the second look disagrees), so it is not complete.
 *
 * @example
 * ```ts ignore
 * const slice = await readSlice("/landing/a.ndjson", {
 *   offset: 0, size: 1200, maxLines: 1000, maxBytes: 64 << 20, header: false,
 * });
 * slice?.lines.length;
 * ```
 */
export async function readSlice(
  path: string,
  options: ReadSliceOptions,
): Promise<Slice | undefined> {
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (info.size !== options.size) return undefined;
  const remaining = options.size - options.offset;
  let want = Math.min(options.maxBytes, remaining);
  let buf: Uint8Array = new Uint8Array(0);
  let ends: number[] = [];
  let eof = false;
  let headerLines = options.header && options.offset === 0 ? 1 : 0;
  const maxLines = options.maxLines + headerLines;
  while (true) {
    buf = await readAt(file, options.offset, want, buf);
    eof = options.offset + buf.length >= options.size;
    ends = lineEnds(buf, maxLines);
    if (ends.length > 0 || eof) break;
    // One line longer than the byte budget: read further until it ends.
    want = Math.min(remaining, want * 2);
  }
  let end = ends.length > 0 ? ends[ends.length - 1] + 1 : 0;
  if (eof && ends.length < maxLines && end < buf.length) {
    ends.push(buf.length); // the last line of a complete file needs no newline
    end = buf.length;
  }
  const bytes = buf.subarray(0, end);
  const { lines, badUtf8 } = decodeLines(bytes, ends);
  const offsets = new Array<number>(lines.length);
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    offsets[i] = start;
    start = ends[i] + 1;
    const line = lines[i];
    if (line.charCodeAt(line.length - 1) === 13) lines[i] = line.slice(0, -1);
  }
  let header: string | undefined;
  if (headerLines > 0 && lines.length > 0) {
    header = lines.shift()!;
    offsets.shift();
    if (badUtf8.length > 0) {
      const shifted = badUtf8.filter((i) => i > 0).map((i) => i - 1);
      badUtf8.length = 0;
      badUtf8.push(...shifted);
    }
  } else {
    headerLines = 0;
  }
  // Offsets relative to the slice start; the header's bytes are part of the slice.
  return {
    path,
    start: options.offset,
    end: options.offset + end,
    firstLine: 0, // set by the caller, which knows the lines consumed before
    lines,
    offsets,
    badUtf8,
    header,
    linesConsumed: lines.length + headerLines,
    bytes,
  };
}

async function readAt(
  file: Deno.FsFile,
  offset: number,
  want: number,
  have: Uint8Array,
): Promise<Uint8Array> {
  const buf = new Uint8Array(want);
  buf.set(have);
  let got = have.length;
  await file.seek(offset + got, Deno.SeekMode.Start);
  while (got < want) {
    const n = await file.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Indexes of the first `max` newline bytes. */
function lineEnds(buf: Uint8Array, max: number): number[] {
  const ends: number[] = [];
  let pos = 0;
  while (ends.length < max) {
    const nl = buf.indexOf(10, pos);
    if (nl < 0) break;
    ends.push(nl);
    pos = nl + 1;
  }
  return ends;
}

/** Decodes the slice once; on invalid UTF-8, line by line, marking the bad lines. */
function decodeLines(bytes: Uint8Array, ends: number[]): { lines: string[]; badUtf8: number[] } {
  const badUtf8: number[] = [];
  try {
    const text = fatal.decode(bytes);
    const lines = text.split("\n");
    if (lines.length === ends.length + 1 && lines[lines.length - 1] === "") lines.pop();
    if (lines.length !== ends.length) {
      throw new SourceError(`Cannot split lines: found ${lines.length}, expected ${ends.length}`);
    }
    return { lines, badUtf8 };
  } catch (e) {
    if (e instanceof SourceError) throw e;
    const lines: string[] = [];
    let start = 0;
    for (let i = 0; i < ends.length; i++) {
      const part = bytes.subarray(start, ends[i]);
      try {
        lines.push(fatal.decode(part));
      } catch {
        lines.push(lossy.decode(part));
        badUtf8.push(i);
      }
      start = ends[i] + 1;
    }
    return { lines, badUtf8 };
  }
}

/**
 * SHA-256 (hex) of some bytes.
 *
 * @example
 * ```ts
 * import { sha256Hex } from "./source.ts";
 * sha256Hex(new TextEncoder().encode("abc")).slice(0, 8); // "ba7816bf"
 * ```
 */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A consumed byte range of a partly read file and its hash. */
export interface SliceRecord {
  /** Start offset. */
  start: number;
  /** End offset. */
  end: number;
  /** SHA-256 of the bytes, hex. */
  sha256: string;
}

/** What the checkpoint holds about a partly read file. */
export interface PartialFile {
  /** Absolute path. */
  path: string;
  /** Size when last read. */
  size: number;
  /** Modification time when last read. */
  mtimeMs: number;
  /** Bytes consumed. */
  offset: number;
  /** The consumed ranges with their hashes, in order. */
  slices: SliceRecord[];
}

/** Why a partly read file can no longer be trusted. */
export interface DataLoss {
  /** `removed`, `truncated` or `rewritten`. */
  kind: "removed" | "truncated" | "rewritten";
  /** A sentence describing what changed. */
  detail: string;
}

/**
 * Checks that a partly read file is still intact: it exists, is at least
 * as long as what was read, and the bytes already read are unchanged. The
 * last consumed range is always re-hashed; every range is when the size or
 * modification time changed. Returns the loss found, or the file's current
 * size and modification time.
 *
 * @example
 * ```ts ignore
 * const r = await checkPartialFile(partial);
 * if ("kind" in r) throw new Error(String(r.detail));
 * ```
 */
export async function checkPartialFile(
  f: PartialFile,
): Promise<DataLoss | { size: number; mtimeMs: number }> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(f.path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { kind: "removed", detail: `was removed after ${f.offset} of its bytes were read` };
    }
    throw e;
  }
  try {
    const info = await file.stat();
    const mtimeMs = info.mtime?.getTime() ?? 0;
    if (info.size < f.offset) {
      return {
        kind: "truncated",
        detail: `was truncated to ${info.size} bytes after ${f.offset} were read`,
      };
    }
    const changed = info.size !== f.size || mtimeMs !== f.mtimeMs;
    const toCheck = changed ? f.slices : f.slices.slice(-1);
    for (const s of toCheck) {
      const bytes = await readAt(file, s.start, s.end - s.start, new Uint8Array(0));
      if (bytes.length !== s.end - s.start || sha256Hex(bytes) !== s.sha256) {
        return {
          kind: "rewritten",
          detail: `was rewritten: bytes ${s.start} to ${s.end}, already read, have changed`,
        };
      }
    }
    return { size: info.size, mtimeMs };
  } finally {
    file.close();
  }
}
