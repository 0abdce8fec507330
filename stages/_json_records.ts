/**
 * Splits NDJSON and JSON-array files into records for bronze, in TypeScript,
 * so that bronze sees each record's exact text: its line, byte offset and
 * raw text, with no type inference by a reader. (DuckDB's `read_json` turns a
 * field of strings and numbers into JSON with quotes, reads a column with one
 * `1.2e29` as DOUBLE, and stops the whole file at one bad line.) Bronze then
 * takes each top-level key's value apart with DuckDB's JSON functions.
 *
 * NDJSON: one record per line; a line of only whitespace is not a record
 * (counted as blank); a line that is not valid UTF-8 is a record that bronze
 * rejects. JSON: the elements of the file's top-level array (or the file's
 * one object), each with the line and byte offset where it starts.
 *
 * @module
 */
import type { Engine, RowAppender } from "../core/engine.ts";
import { SourceError } from "../core/errors.ts";
import type { FileFingerprint } from "./_files.ts";

/** Columns of the temp table the records go to (see {@linkcode createRecordTable}). */
export const RECORD_COLUMNS = ["file", "line", "byte_offset", "text", "q", "bad"] as const;

/** What {@linkcode appendJsonRecords} found in one file. */
export interface JsonFileCounts {
  /** Records appended (good or bad). */
  records: number;
  /** Blank lines skipped (NDJSON only). */
  blank: number;
  /** Records rejected (`bad` set). */
  bad: number;
  /** The top-level keys of the good records, in order of first appearance. */
  keys: string[];
}

/** Whitespace JSON allows between tokens. */
function ws(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * Checks one record's text and prepares it for extraction: it must parse
 * as JSON (`JSON.parse`), be an object, and have no key twice. Returns the
 * text with every top-level number turned into a string of its exact text
 * (`{"a": 1.50, "b": [1]}` gives `{"a": "1.50", "b": [1]}`), so DuckDB's
 * `json_extract_string` returns numbers as written (it re-prints a DOUBLE:
 * `1.50` as `1.5`, `12345678901234567890.5` as `12345678901234567000.0`)
 * while objects and arrays keep their JSON, and the keys (in `Object.keys`
 * order: integer-like keys first, then the others as written).
 */
export function prepareRecord(
  text: string,
): { q: string; keys: string[] } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { reason: "invalid JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
    return { reason: `not a JSON object (${kind})` };
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  let numbers = false;
  for (const k of keys) {
    if (typeof obj[k] === "number") {
      numbers = true;
      break;
    }
  }
  // One pass over the text: count the top-level keys (a repeated key is lost
  // by JSON.parse, so fewer keys than colons means one is repeated) and
  // quote the top-level numbers.
  let colons = 0;
  let q = "";
  let from = 0;
  let depth = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = stringEnd(text, i) + 1;
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (depth === 1) {
      if (c === 0x3a) colons++;
      else if (numbers && (c === 0x2d || (c >= 0x30 && c <= 0x39))) {
        const start = i;
        i++;
        while (i < n) {
          const d = text.charCodeAt(i);
          if (
            (d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2d ||
            d === 0x2b
          ) {
            i++;
          } else break;
        }
        q += text.slice(from, start) + '"' + text.slice(start, i) + '"';
        from = i;
        continue;
      }
    }
    i++;
  }
  if (colons !== keys.length) return { reason: `duplicate key(s) ${repeatedKeys(text)}` };
  return { q: from === 0 ? text : q + text.slice(from), keys };
}

/** The index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  while (end > 0) {
    let back = 0;
    while (text.charCodeAt(end - 1 - back) === 0x5c) back++;
    if (back % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return text.length;
}

/** The top-level keys of an object's text that occur more than once, quoted. */
function repeatedKeys(text: string): string {
  const seen = new Set<string>();
  const dups = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const end = stringEnd(text, i);
      if (depth === 1) {
        let j = end + 1;
        while (j < text.length && ws(text.charCodeAt(j))) j++;
        if (text.charCodeAt(j) === 0x3a) {
          const key = JSON.parse(text.slice(i, end + 1)) as string;
          if (seen.has(key)) dups.add(key);
          seen.add(key);
        }
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return [...dups].map((k) => JSON.stringify(k)).join(", ");
}

/**
 * Creates the temp table that holds the records of one landing.
 *
 * @example
 * ```ts ignore
 * await createRecordTable(db, '"_json_events"');
 * ```
 */
export async function createRecordTable(db: Engine, quoted: string): Promise<void> {
  await db.run(`DROP TABLE IF EXISTS ${quoted}`);
  await db.run(
    `CREATE TEMP TABLE ${quoted} (file VARCHAR, line DOUBLE, byte_offset DOUBLE, text VARCHAR, ` +
      `q VARCHAR, bad VARCHAR)`,
  );
}

const CHUNK = 8 << 20;
// ignoreBOM: a BOM stays in the text (bronze strips it itself, from line 1 only).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lossy = new TextDecoder("utf-8");

function isBlank(b: Uint8Array): boolean {
  for (const c of b) if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  return true;
}

function emit(
  row: RowAppender,
  counts: JsonFileCounts,
  keys: Set<string>,
  at: { file: string; line: number; offset: number },
  bytes: Uint8Array,
  bad: string | null,
  last = false,
  keepText = false,
  decoded?: string,
): void {
  let text: string;
  let why = bad;
  let q: string | null = null;
  if (decoded !== undefined) text = decoded;
  else {
    try {
      text = utf8.decode(bytes);
    } catch {
      text = lossy.decode(bytes);
      why ??= "invalid UTF-8";
    }
  }
  if (why === null) {
    const r = prepareRecord(text);
    if ("reason" in r) {
      why = r.reason === "invalid JSON" && last
        ? "invalid JSON (the last line has no line end: is the file cut short?)"
        : r.reason;
    } else {
      q = r.q;
      for (const k of r.keys) {
        if (!keys.has(k)) {
          keys.add(k);
          counts.keys.push(k);
        }
      }
    }
  }
  row.varchar(at.file);
  row.double(at.line); // DOUBLE: exact to 2^53, and cheaper to append than a BigInt
  row.double(at.offset);
  row.varchar(why === null && !keepText ? null : text); // the raw text: for rejects
  row.varchar(q);
  row.varchar(why);
  row.endRow();
  counts.records++;
  if (why !== null) counts.bad++;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Appends one NDJSON file's lines (streamed in 8 MiB chunks). */
async function ndjsonLines(
  fp: FileFingerprint,
  row: RowAppender,
  keepText: boolean,
): Promise<JsonFileCounts> {
  const counts: JsonFileCounts = { records: 0, blank: 0, bad: 0, keys: [] };
  const keys = new Set<string>();
  const file = fp.rel ?? fp.path;
  using f = await Deno.open(fp.path, { read: true });
  const buf = new Uint8Array(CHUNK);
  let carry: Uint8Array = new Uint8Array(0);
  let line = 1;
  let offset = 0; // byte offset of `carry`'s first byte
  const take = (bytes: Uint8Array, start: number, last: boolean, decoded?: string) => {
    let b = bytes;
    let str = decoded;
    if (b.length > 0 && b[b.length - 1] === 0x0d) {
      b = b.subarray(0, b.length - 1);
      str = str?.slice(0, -1);
    }
    let skip = 0;
    if (line === 1 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) {
      skip = 3;
      str = str?.slice(1);
    }
    b = b.subarray(skip);
    if (isBlank(b)) counts.blank++;
    else {
      const at = { file, line, offset: start + skip };
      emit(row, counts, keys, at, b, null, last, keepText, str);
    }
  };
  while (true) {
    const n = await f.read(buf);
    if (n === null) break;
    const data = concat(carry, buf.slice(0, n));
    // The chunk's complete lines are decoded at once when they are valid UTF-8
    // (`\n` is never part of a multi-byte character, so lines split the same).
    const end = data.lastIndexOf(0x0a);
    let lines: string[] | undefined;
    if (end >= 0) {
      try {
        lines = utf8.decode(data.subarray(0, end)).split("\n");
      } catch { /* invalid UTF-8 somewhere: decode line by line */ }
    }
    let from = 0;
    let k = 0;
    for (let nl = data.indexOf(0x0a, from); nl >= 0; nl = data.indexOf(0x0a, from)) {
      take(data.subarray(from, nl), offset + from, false, lines?.[k++]);
      line++;
      from = nl + 1;
    }
    offset += from;
    carry = data.slice(from);
  }
  if (carry.length > 0) take(carry, offset, true);
  return counts;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** Appends the elements of one JSON-array file (read whole). */
async function arrayElements(
  fp: FileFingerprint,
  row: RowAppender,
  keepText: boolean,
): Promise<JsonFileCounts> {
  const counts: JsonFileCounts = { records: 0, blank: 0, bad: 0, keys: [] };
  const keys = new Set<string>();
  const file = fp.rel ?? fp.path;
  const b = await Deno.readFile(fp.path);
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  let line = 1;
  const skipSpace = () => {
    while (i < b.length && isSpace(b[i])) {
      if (b[i] === 0x0a) line++;
      i++;
    }
  };
  skipSpace();
  if (b[i] === 0x7b) {
    // One object: the file is one record.
    emit(row, counts, keys, { file, line, offset: i }, b.subarray(i), null, false, keepText);
    return counts;
  }
  if (b[i] !== 0x5b) {
    throw new SourceError(
      `file ${file} is not a JSON array (it starts with ${
        i < b.length ? JSON.stringify(String.fromCharCode(b[i])) : "nothing"
      }); use format: ndjson for one object per line`,
      { context: { file } },
    );
  }
  i++;
  let depth = 1;
  let inString = false;
  let escaped = false;
  let start = -1;
  let startLine = 0;
  let closed = false;
  const finish = (end: number, bad: string | null) => {
    let e = end;
    while (e > start && isSpace(b[e - 1])) e--;
    const at = { file, line: startLine, offset: start };
    emit(row, counts, keys, at, b.subarray(start, e), bad, false, keepText);
    start = -1;
  };
  for (; i < b.length; i++) {
    const c = b[i];
    if (c === 0x0a) line++;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (isSpace(c)) continue;
    if (depth === 1 && start < 0 && c !== 0x2c && c !== 0x5d) {
      start = i;
      startLine = line;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) {
      depth--;
      if (depth === 0) {
        if (start >= 0) finish(i, null);
        closed = true;
        i++;
        break;
      }
    } else if (c === 0x2c && depth === 1) {
      if (start >= 0) finish(i, null);
      else {
        start = i;
        startLine = line;
        finish(i, "empty element in the JSON array");
      }
    }
  }
  if (!closed) {
    if (start >= 0) finish(b.length, "the JSON array is not closed: the file is truncated");
    else {
      start = b.length;
      startLine = line;
      finish(b.length, "the JSON array is not closed: the file is truncated");
    }
    return counts;
  }
  skipSpace();
  if (i < b.length) {
    start = i;
    startLine = line;
    finish(b.length, "trailing data after the JSON array");
  }
  return counts;
}

/**
 * Appends the records of one NDJSON or JSON-array file to the temp table
 * `table` (made by {@linkcode createRecordTable}). An NDJSON file that is a
 * JSON array fails with a {@linkcode SourceError} naming the file.
 *
 * @example
 * ```ts ignore
 * const counts = await appendJsonRecords(db, "_json_events", fp, { format: "ndjson" });
 * // With `keepText`, good records keep their raw text too (for later rejects).
 * ```
 */
export async function appendJsonRecords(
  db: Engine,
  table: string,
  fp: FileFingerprint,
  options: { format: "ndjson" | "json"; keepText?: boolean },
): Promise<JsonFileCounts> {
  const keep = options.keepText ?? false;
  let counts: JsonFileCounts = { records: 0, blank: 0, bad: 0, keys: [] };
  await db.append(table, async (row) => {
    counts = options.format === "json"
      ? await arrayElements(fp, row, keep)
      : await ndjsonLines(fp, row, keep);
  }, { temp: true });
  return counts;
}
