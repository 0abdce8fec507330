/**
 * Log formats and sink setup. Library code only calls
 * `getLogger(["sluice", ...])`; the CLI calls {@linkcode configureLogging}
 * once. JSON lines carry `ts`, `level`, `logger`, `message`, then the
 * record's fields (`run_id`, `pipeline`, `stage`, `rows`...).
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { configure, reset, type Sink, withContext } from "@logtape/logtape";
import type { LogLevel, LogRecord } from "../core/npm_types.ts";

/**
 * Options of the formatters ({@linkcode formatJsonLine}, {@linkcode formatTextLine}).
 *
 * @example
 * ```ts
 * import type { FormatOptions } from "./logging.ts";
 * const options: FormatOptions = { secrets: ["s3cret"] }; // printed as ***
 * ```
 */
export interface FormatOptions {
  /** Secret values to replace with `***` wherever they appear. */
  secrets?: readonly string[];
}

const LEVEL_NAMES: Record<LogLevel, string> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warning: "warn",
  error: "error",
  fatal: "fatal",
};

function renderMessage(record: LogRecord): string {
  let out = "";
  for (let i = 0; i < record.message.length; i++) {
    const part = record.message[i];
    out += i % 2 === 0 ? String(part) : typeof part === "string" ? part : safeJson(part);
  }
  return out;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, jsonReplacer) ?? String(value);
  } catch {
    return String(value);
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

function redact(text: string, secrets: readonly string[] | undefined): string {
  if (!secrets) return text;
  for (const s of secrets) if (s.length > 0) text = text.replaceAll(s, "***");
  return text;
}

/** Keys every JSON line starts with, in this order, when the record has them. */
const LEADING_KEYS = ["run_id", "pipeline", "stage"] as const;

/**
 * Formats a record as one JSON object per line.
 *
 * @example
 * ```ts
 * import { formatJsonLine } from "./logging.ts";
 * const line = formatJsonLine({
 *   category: ["sluice", "silver"], level: "info", message: ["table built"],
 *   rawMessage: "table built", timestamp: Date.UTC(2026, 0, 1),
 *   properties: { run_id: "r1", rows: 10 },
 * });
 * // {"ts":"2026-01-01T00:00:00.000Z","level":"info","logger":"sluice.silver",...}
 * ```
 */
export function formatJsonLine(record: LogRecord, options: FormatOptions = {}): string {
  const obj: Record<string, unknown> = {
    ts: new Date(record.timestamp).toISOString(),
    level: LEVEL_NAMES[record.level],
    logger: record.category.join("."),
    message: renderMessage(record),
  };
  for (const k of LEADING_KEYS) {
    if (record.properties[k] !== undefined) obj[k] = record.properties[k];
  }
  for (const [k, v] of Object.entries(record.properties)) {
    if (!(k in obj)) obj[k] = v;
  }
  return redact(JSON.stringify(obj, jsonReplacer), options.secrets) + "\n";
}

/**
 * Formats a record as readable text for a terminal:
 * `12:00:01.123 INFO  silver  table built  rows=10 table=orders`.
 *
 * @example
 * ```ts
 * import { formatTextLine } from "./logging.ts";
 * formatTextLine({
 *   category: ["sluice", "silver"], level: "info", message: ["table built"],
 *   rawMessage: "table built", timestamp: 0, properties: { rows: 10 },
 * });
 * ```
 */
export function formatTextLine(record: LogRecord, options: FormatOptions = {}): string {
  const time = new Date(record.timestamp).toISOString().slice(11, 23);
  const level = LEVEL_NAMES[record.level].toUpperCase().padEnd(5);
  const logger = record.category.slice(1).join(".") || record.category.join(".");
  const fields = Object.entries(record.properties)
    .filter(([k]) => k !== "pipeline" && k !== "run_id")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : safeJson(v)}`)
    .join(" ");
  const line = `${time} ${level} ${logger.padEnd(8)} ${renderMessage(record)}${
    fields ? `  ${fields}` : ""
  }`;
  return redact(line, options.secrets) + "\n";
}

/** Options of {@linkcode configureLogging}. */
export interface LoggingOptions extends FormatOptions {
  /** `json`, `text`, or `auto` (text on a TTY, JSON otherwise). */
  format?: "json" | "text" | "auto";
  /** Lowest level written. Default `info`. */
  level?: LogLevel;
  /** Where lines go; default: synchronous writes to stderr. */
  write?: (line: string) => void;
  /**
   * Also sees every `info` (and higher) record before it is written, even
   * those below `level`: the CLI's progress view on a terminal. `written`
   * says whether the record is about to be written as a line.
   */
  tap?: (record: LogRecord, written: boolean) => void;
  /** Records for which this returns false are not written (the tap still sees them). */
  filter?: (record: LogRecord) => boolean;
}

const LEVEL_RANK: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  info: 2,
  warning: 3,
  error: 4,
  fatal: 5,
};

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  const bytes = encoder.encode(line);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

/**
 * Configures LogTape's sinks for the `sluice` category. Call once, from the
 * CLI (or a test); library code never configures logging.
 *
 * @example
 * ```ts
 * import { configureLogging } from "./logging.ts";
 * await configureLogging({ format: "json", level: "info" });
 * ```
 */
export async function configureLogging(options: LoggingOptions = {}): Promise<void> {
  const format = options.format === "auto" || options.format === undefined
    ? (Deno.stderr.isTerminal() ? "text" : "json")
    : options.format;
  const write = options.write ?? writeStderr;
  const formatter = format === "json" ? formatJsonLine : formatTextLine;
  const level = options.level ?? "info";
  const tap = options.tap;
  const sink: Sink = (record) => {
    const written = LEVEL_RANK[record.level] >= LEVEL_RANK[level] &&
      (options.filter?.(record) ?? true);
    tap?.(record, written);
    if (written) write(formatter(record, options));
  };
  const lowest = tap && LEVEL_RANK[level] > LEVEL_RANK.info ? "info" : level;
  activeFormat = format;
  activeSecrets = [...(options.secrets ?? [])].sort((a, b) => b.length - a.length);
  await configure({
    reset: true,
    contextLocalStorage: new AsyncLocalStorage(),
    sinks: { main: sink },
    loggers: [
      { category: ["sluice"], lowestLevel: lowest, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
}

/**
 * Removes the configured sinks (tests call it between cases).
 *
 * @example
 * ```ts
 * import { resetLogging } from "./logging.ts";
 * await resetLogging();
 * ```
 */
export async function resetLogging(): Promise<void> {
  activeFormat = undefined;
  activeSecrets = [];
  await reset();
}

let activeFormat: "json" | "text" | undefined;
let activeSecrets: readonly string[] = [];

/**
 * Replaces the secrets {@linkcode configureLogging} was given with `***` in
 * `text`: for the lines the CLI prints itself (an error line), which do not
 * go through a log sink.
 *
 * @example
 * ```ts
 * import { configureLogging, redactLogged } from "./logging.ts";
 * await configureLogging({ format: "json", secrets: ["s3cret"] });
 * redactLogged("password s3cret refused"); // "password *** refused"
 * ```
 */
export function redactLogged(text: string): string {
  return redact(text, activeSecrets);
}

/**
 * The format {@linkcode configureLogging} chose (`auto` resolved), or
 * `undefined` before logging is configured.
 *
 * @example
 * ```ts
 * import { configureLogging, logFormatInUse } from "./logging.ts";
 * await configureLogging({ format: "json" });
 * logFormatInUse(); // "json"
 * ```
 */
export function logFormatInUse(): "json" | "text" | undefined {
  return activeFormat;
}

/**
 * Runs `fn` with `fields` (e.g. `run_id`, `pipeline`) added to every log
 * record written while it runs, including records of code that does not
 * know the run (DuckDB error reports, retries, third-party loggers). Before
 * {@linkcode configureLogging} it just runs `fn`.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 * import { configureLogging, withLogContext } from "./logging.ts";
 * await configureLogging({ format: "json" });
 * await withLogContext({ run_id: "r1", pipeline: "shop" }, async () => {
 *   getLogger(["sluice", "x"]).info("carries run_id r1");
 * });
 * ```
 */
export function withLogContext<T>(fields: Record<string, unknown>, fn: () => T): T {
  return activeFormat === undefined ? fn() : withContext(fields, fn);
}
