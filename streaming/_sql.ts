/**
 * SQL that turns raw lines into typed rows or dead letters, in one pass:
 * parse (NDJSON or CSV) → validate against the declared columns → mark late
 * rows against the watermark. Everything here is row-level work done by
 * DuckDB; TypeScript only builds the statement from the validated config.
 *
 * The input is any relation with the columns `__seq` (order), `__path`,
 * `__line_no`, `__offset`, `__line`, `__hdr` (CSV header fields, a list) and
 * `__bad` (line was not valid UTF-8).
 *
 * @module
 */
import type { StreamColumnConfig, StreamingConfig } from "../core/config/mod.ts";
import { ident, literal, sqlType } from "../core/quote.ts";

/**
 * Reason codes a stream writes to its dead-letter queue.
 *
 * @example
 * ```ts
 * import { STREAM_REASONS } from "./_sql.ts";
 * STREAM_REASONS.includes("late"); // true
 * ```
 */
export const STREAM_REASONS = [
  "malformed_json",
  "malformed_csv",
  "malformed_encoding",
  "schema_violation",
  "late",
] as const;

/** Metadata columns the target table has besides the declared ones. */
export const TARGET_META_COLUMNS: readonly (readonly [string, string])[] = [
  ["_batch_id", "BIGINT"],
  ["_source_file", "VARCHAR"],
  ["_source_line", "BIGINT"],
  ["_ingested_at", "TIMESTAMPTZ"],
];

/**
 * The event time of a typed column as TIMESTAMPTZ; a TIMESTAMP or DATE is
 * read as UTC (independent of the session time zone).
 *
 * @example
 * ```ts
 * import { eventTimeSql } from "./_sql.ts";
 * eventTimeSql("TIMESTAMP", '"ts"'); // "timezone('UTC', \"ts\")"
 * ```
 */
export function eventTimeSql(type: string, expr: string): string {
  const t = sqlType(type);
  if (t === "TIMESTAMPTZ" || t === "TIMESTAMP WITH TIME ZONE") return expr;
  if (t === "DATE") return `timezone('UTC', CAST(${expr} AS TIMESTAMP))`;
  return `timezone('UTC', ${expr})`;
}

/**
 * A microsecond count as a TIMESTAMPTZ literal expression (or NULL).
 *
 * @example
 * ```ts
 * import { usSql } from "./_sql.ts";
 * usSql(1767225600000000); // "make_timestamptz(1767225600000000::BIGINT)"
 * ```
 */
export function usSql(us: number | null): string {
  return us === null ? "NULL::TIMESTAMPTZ" : `make_timestamptz(${Math.trunc(us)}::BIGINT)`;
}

/**
 * A TIMESTAMPTZ formatted as ISO-8601 UTC with milliseconds.
 *
 * @example
 * ```ts
 * import { isoSql } from "./_sql.ts";
 * isoSql("__et"); // strftime(timezone('UTC', __et), '%Y-%m-%dT%H:%M:%S.%gZ')
 * ```
 */
export function isoSql(expr: string): string {
  return `strftime(timezone('UTC', ${expr}), '%Y-%m-%dT%H:%M:%S.%gZ')`;
}

function reEscape(c: string): string {
  return c.replace(/[\\^$.|?*+()[\]{}\-]/g, "\\$&");
}

/** CSV dialect after defaults. */
interface Dialect {
  delimiter: string;
  quote: string;
  escape: string;
  header: boolean;
  nullString: string;
}

function dialect(s: StreamingConfig): Dialect {
  const o = s.source.options;
  return {
    delimiter: o?.delimiter ?? ",",
    quote: o?.quote ?? '"',
    escape: o?.escape ?? o?.quote ?? '"',
    header: o?.header ?? true,
    nullString: o?.null_string ?? "",
  };
}

/** The RE2 pattern matching one CSV field followed by the delimiter. */
function fieldPattern(d: Dialect): string {
  const q = reEscape(d.quote);
  const e = reEscape(d.escape);
  const dl = reEscape(d.delimiter);
  const quoted = d.escape === d.quote
    ? `${q}(?:[^${q}]|${q}${q})*${q}`
    : `${q}(?:[^${q}${e}]|${e}.)*${q}`;
  return `(?:${quoted}|[^${dl}${q}]*)${dl}`;
}

/** Field matches (each with its trailing delimiter) of a CSV line. */
function csvMatchesSql(d: Dialect, text: string): string {
  return `regexp_extract_all(${text} || ${literal(d.delimiter)}, ${literal(fieldPattern(d))})`;
}

/** Field values from the matches: unquoted, unescaped, null_string read as NULL. */
function csvValuesSql(d: Dialect, matches: string, nulls: boolean): string {
  const inner = `substring(x, 2, length(x) - 3)`;
  const unescaped = d.escape === d.quote
    ? `replace(${inner}, ${literal(d.quote + d.quote)}, ${literal(d.quote)})`
    : `regexp_replace(${inner}, ${literal(`${reEscape(d.escape)}(.)`)}, '\\1', 'g')`;
  const bare = `left(x, length(x) - 1)`;
  const plain = nulls
    ? `CASE WHEN ${bare} = ${literal(d.nullString)} THEN NULL ELSE ${bare} END`
    : bare;
  return `list_transform(${matches}, lambda x: CASE WHEN starts_with(x, ${
    literal(d.quote)
  }) THEN ${unescaped} ELSE ${plain} END)`;
}

/**
 * The header fields of a CSV header line, as a `VARCHAR[]` expression over
 * `text`.
 *
 * @example
 * ```ts ignore
 * csvHeaderSql(config.streaming, "'id,ts,amount'"); // list_transform(regexp_extract_all(...))
 * ```
 */
export function csvHeaderSql(s: StreamingConfig, text: string): string {
  const d = dialect(s);
  return csvValuesSql(d, csvMatchesSql(d, text), false);
}

function jsonPath(from: string): string {
  if (from.startsWith("$")) return from;
  return `$."${from.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** True when a raw (text) value is already of the column's type: no cast, no cast failure. */
function isText(col: StreamColumnConfig): boolean {
  return sqlType(col.type) === "VARCHAR" && col.format === undefined;
}

function typedSql(raw: string, col: StreamColumnConfig): string {
  const type = sqlType(col.type);
  if (isText(col)) return raw;
  if (col.format && /^(DATE|TIMESTAMP)/.test(type)) {
    return `TRY_CAST(TRY_STRPTIME(${raw}, ${literal(col.format)}) AS ${type})`;
  }
  return `TRY_CAST(${raw} AS ${type})`;
}

/** Options of {@linkcode classifySql}. */
export interface ClassifyOptions {
  /** The input relation (a table name or a parenthesised query). */
  lines: string;
  /** Input columns to pass through unchanged (e.g. `__slice`, `__rel`). */
  keep?: readonly string[];
}

/**
 * Builds the query that parses and validates lines. Its columns: the `keep`
 * columns, every declared column (typed), `__code` (NULL for a good row, `blank` for an empty
 * line, else a dead-letter reason), `__detail` (which field, which value)
 * and `__payload` (the raw line of a dead letter, NULL for a good row).
 * Lateness is decided afterwards by {@linkcode lateSql}.
 *
 * @example
 * ```ts ignore
 * await db.run(`CREATE TEMP TABLE rows AS ${classifySql(cfg, { lines: "lines" })}`);
 * ```
 */
export function classifySql(s: StreamingConfig, options: ClassifyOptions): string {
  const cols = Object.entries(s.columns);
  const csv = s.source.format === "csv";
  const d = dialect(s);
  // Each derived value gets its own projection level: DuckDB re-evaluates an
  // alias reused inside the SELECT that defines it, so a level may only use
  // columns of the level before.
  let levels: string[][];
  let malformedCode: string;
  let malformedDetail: string;
  if (csv) {
    const expected = d.header ? "len(__hdr)" : String(cols.length);
    levels = [
      [`trim(__line) = '' AS __blank`, `${csvMatchesSql(d, "__line")} AS __m`],
      [
        `coalesce(list_sum(list_transform(__m, lambda x: length(x))), 0) = length(__line) + 1
          AS __balanced`,
        `${csvValuesSql(d, "__m", true)} AS __f`,
      ],
      cols.map(([name, col], i) =>
        `${
          d.header ? `__f[list_position(__hdr, ${literal(col.from ?? name)})]` : `__f[${i + 1}]`
        } AS "__r${i}"`
      ),
    ];
    malformedCode = `WHEN NOT __balanced THEN 'malformed_csv'
      WHEN len(__f) <> ${expected} THEN 'malformed_csv'`;
    malformedDetail = `WHEN NOT __balanced THEN 'unbalanced or stray quote'
      WHEN len(__f) <> ${expected} THEN 'expected ' || ${expected} || ${
      literal(` fields${d.header ? " (as in the header)" : ""}, got `)
    } || len(__f)`;
  } else {
    const paths = cols.map(([name, col]) => literal(jsonPath(col.from ?? name)));
    // Valid lines first: the common case pays for one validation and one
    // extraction; blank and non-object checks only run on the rest.
    levels = [
      [`json_valid(__line) AS __valid`],
      [
        `CASE WHEN NOT __valid THEN false WHEN starts_with(__line, '{') THEN true
          ELSE json_type(__line) = 'OBJECT' END AS __object`,
        `CASE WHEN NOT __valid THEN trim(__line) = '' ELSE false END AS __blank`,
      ],
      [`CASE WHEN __object THEN json_extract_string(__line, [${paths.join(", ")}]) END AS __f`],
      cols.map((_, i) => `__f[${i + 1}] AS "__r${i}"`),
    ];
    malformedCode = `WHEN NOT __valid THEN 'malformed_json'
      WHEN NOT __object THEN 'malformed_json'`;
    malformedDetail = `WHEN NOT __valid THEN 'not valid JSON'
      WHEN NOT __object THEN 'not a JSON object (got ' || lower(json_type(__line)) || ')'`;
  }
  const masked = new Set(s.mask ?? []);
  const typed = cols.map(([, col], i) => `${typedSql(`"__r${i}"`, col)} AS "__t${i}"`);
  const wmIndex = cols.findIndex(([name]) => name === s.watermark.column);
  const checks: { cond: string; message: string }[] = [];
  cols.forEach(([name, col], i) => {
    if (!isText(col)) {
      checks.push({
        cond: `"__r${i}" IS NOT NULL AND "__t${i}" IS NULL`,
        message: masked.has(name)
          ? literal(`field "${name}": cannot cast *** (masked) to ${sqlType(col.type)}`)
          : `${literal(`field "${name}": cannot cast `)} || '"' || left("__r${i}", 200) || '"' || ${
            literal(` to ${sqlType(col.type)}`)
          }`,
      });
    }
    if (!col.nullable || i === wmIndex) {
      checks.push({
        cond: `"__r${i}" IS NULL`,
        message: literal(
          `field "${name}": required but missing or null` +
            (i === wmIndex && col.nullable ? " (it is the event time)" : ""),
        ),
      });
    }
  });
  const anyViolation = checks.length ? checks.map((c) => `(${c.cond})`).join(" OR ") : "false";
  const violationDetail = checks.length
    ? `concat_ws('; ', ${
      checks.map((c) => `CASE WHEN ${c.cond} THEN ${c.message} END`).join(", ")
    })`
    : "NULL";
  const out = cols.map(([name], i) => `"__t${i}" AS ${ident(name)}`);
  const keep = (options.keep ?? []).map((k) => `${k}, `).join("");
  const ctes = [`src AS (SELECT * FROM ${options.lines})`];
  levels.forEach((exprs, n) => {
    const from = n === 0 ? "src" : `l${n - 1}`;
    ctes.push(`l${n} AS (SELECT ${from}.*, ${exprs.join(", ")} FROM ${from})`);
  });
  const last = `l${levels.length - 1}`;
  ctes.push(`casted AS (SELECT ${last}.*, ${typed.join(", ")} FROM ${last})`);
  ctes.push(`checked AS (
    SELECT casted.*,
      CASE WHEN __blank THEN 'blank' WHEN __bad THEN 'malformed_encoding' ${malformedCode}
        WHEN ${anyViolation} THEN 'schema_violation' END AS __code
    FROM casted)`);
  return `WITH ${ctes.join(",\n  ")}
  SELECT ${keep}${out.join(", ")}, __code,
    CASE WHEN __code IS NULL OR __code = 'blank' THEN NULL
      WHEN __bad THEN 'line is not valid UTF-8' ${malformedDetail}
      ELSE ${violationDetail} END AS __detail,
    ${
    masked.size === 0
      ? "CASE WHEN __code IS NOT NULL AND __code <> 'blank' THEN __line END"
      : `CASE WHEN __code = 'blank' THEN NULL ELSE ${maskedLineSql(s, d)} END`
  } AS __payload
  FROM checked`;
}

/**
 * The record's text with the `mask` columns' values as `***` (a null or
 * missing value stays so), for the DLQ's `_payload`; `***` for a record that
 * does not parse. NDJSON: the object re-printed with the masked fields
 * replaced (a `from` path masks the field it names; from its first `[` on,
 * the field that holds it is masked whole; a path that names no key first
 * shows the whole record as `***`). CSV: the
 * line with the masked fields' text replaced. With a mask, every parsed row
 * carries this (late rows reach the DLQ after classification).
 */
function maskedLineSql(s: StreamingConfig, d: Dialect): string {
  const cols = Object.entries(s.columns);
  const masked = new Set(s.mask ?? []);
  if (s.source.format === "csv") {
    const positions = cols.flatMap(([name, col], i) =>
      masked.has(name)
        ? [d.header ? `list_position(__hdr, ${literal(col.from ?? name)})` : String(i + 1)]
        : []
    );
    const dl = literal(d.delimiter);
    const joined = `array_to_string(list_transform(__m, lambda x, i: CASE WHEN i IN (${
      positions.join(", ")
    }) AND __f[i] IS NOT NULL THEN '***' || ${dl} ELSE x END), '')`;
    return `CASE WHEN __bad OR NOT __balanced THEN '***'
      ELSE left(${joined}, length(${joined}) - ${d.delimiter.length}) END`;
  }
  const paths = cols.flatMap(([name, col]) => masked.has(name) ? [maskPath(col.from ?? name)] : []);
  // A path that names no key (`$[0]`, `$["a"]`): no field to replace, so nothing is shown.
  if (paths.some((p) => p.length === 0)) return "'***'";
  const patches = paths.map((path) => {
    const nested = path.reduceRight(
      (inner, key) => `json_object(${literal(key)}, ${inner})`,
      "'***'",
    );
    const at = `$${path.map((k) => jsonPath(k).slice(1)).join("")}`;
    return `CASE WHEN json_extract_string(__line, ${literal(at)}) IS NULL THEN '{}'::JSON
      ELSE ${nested} END`;
  });
  return `CASE WHEN __bad OR NOT __object THEN '***'
    ELSE CAST(json_merge_patch(__line, ${patches.join(", ")}) AS VARCHAR) END`;
}

/**
 * The keys of a column's `from` for masking: `email` is `["email"]`,
 * `$.user.email` is `["user", "email"]`; a path with `[` (an array index or
 * a bracketed key) stops at its first `[`, so the field that holds it is
 * masked whole.
 */
function maskPath(from: string): string[] {
  if (!from.startsWith("$")) return [from];
  const keys: string[] = [];
  let rest = from.slice(1);
  while (rest.startsWith(".")) {
    const m = /^\.(?:"((?:[^"\\]|\\.)*)"|([^.[\]"]+))/.exec(rest);
    if (!m) break;
    keys.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]);
    rest = rest.slice(m[0].length);
  }
  return rest === "" || rest.startsWith("[") ? keys : [];
}

/**
 * Builds the query that finds the late rows among classified rows: a good
 * row is late when its event time is older than the largest good event
 * time seen before it (in the checkpoint, or earlier in stream order)
 * minus the delay. Because "before it" follows stream order, not batch
 * boundaries, the outcome is the same however the stream is cut into
 * batches. Columns: the `keep` columns, `__et`, `__wm` (the watermark at
 * the row's arrival).
 *
 * @example
 * ```ts ignore
 * await db.run(`CREATE TEMP TABLE late AS ${lateSql({ rows: "rows", maxEventTimeUs: null, delayMs: 60000 })}`);
 * ```
 */
export function lateSql(
  options: {
    rows: string;
    maxEventTimeUs: number | null;
    delayMs: number;
    /** The event time over the rows, see {@linkcode eventTimeOf}. */
    et: string;
    /** Stream order, e.g. `__slice, __ln`. */
    order: string;
    keep?: readonly string[];
  },
): string {
  const delayUs = Math.round(options.delayMs * 1000);
  const keep = (options.keep ?? []).map((k) => `${k}, `).join("");
  // The running max includes the row itself: a row is never later than itself.
  return `SELECT ${keep}__et, __wm FROM (
      SELECT ${keep}__et, greatest(${usSql(options.maxEventTimeUs)},
          max(__et) OVER (ORDER BY ${options.order} ROWS UNBOUNDED PRECEDING))
        - to_microseconds(${delayUs}::BIGINT) AS __wm
      FROM (SELECT *, ${options.et} AS __et FROM ${options.rows} WHERE __code IS NULL)
    ) WHERE __et < __wm`;
}

/**
 * The event time of classified (or target) rows as a TIMESTAMPTZ expression
 * over the watermark column.
 *
 * @example
 * ```ts ignore
 * eventTimeOf(config.streaming); // "\"event_time\""
 * ```
 */
export function eventTimeOf(s: StreamingConfig): string {
  return eventTimeSql(s.columns[s.watermark.column].type, ident(s.watermark.column));
}

/**
 * The dead-letter detail of a late row, over `__et` and `__wm`.
 *
 * @example
 * ```ts ignore
 * lateDetailSql(); // 'event time ' || ... || ' s older than the watermark ' || ...
 * ```
 */
export function lateDetailSql(): string {
  return `'event time ' || ${isoSql("__et")} || ' is ' ||
    rtrim(rtrim(printf('%.3f', epoch(__wm) - epoch(__et)), '0'), '.') || ' s older than the watermark ' || ${
    isoSql("__wm")
  }`;
}
