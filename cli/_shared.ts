/**
 * What every command of the CLI shares: the global options, stdout, log
 * setup and option parsers.
 *
 * @module
 */
import type { Command } from "commander";
import { configureLogging, logFormatInUse, UsageError } from "../mod.ts";
import type { LogRecord } from "@logtape/logtape";

/** Receives the run's log records and draws its progress on stderr (see `_progress.ts`). */
export interface ProgressView {
  /** Feeds one log record (see `LoggingOptions.tap`). */
  tap(record: LogRecord, written: boolean): void;
  /** Stops the spinner and clears its line; safe to call twice. */
  stop(): void;
}

/** The options every command inherits from `sluice`. */
export interface GlobalOptions {
  /** `json`, `text` or `auto`. */
  logFormat: "json" | "text" | "auto";
  /** Lowest level logged. */
  logLevel: "debug" | "info" | "warning" | "error";
}

/** The global options as the given command sees them. */
export function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

const encoder = new TextEncoder();

/** Writes all of `bytes` to a stream synchronously. */
function writeAll(stream: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += stream.writeSync(bytes.subarray(off));
}

/** Prints a result on stdout (tables, JSON documents): the only thing stdout carries. */
export function out(text: string): void {
  writeAll(Deno.stdout, encoder.encode(text.endsWith("\n") ? text : `${text}\n`));
}

/** Writes to stderr as is (help on errors, progress). */
export function err(text: string): void {
  writeAll(Deno.stderr, encoder.encode(text));
}

/**
 * Configures the log sinks from the global options; with `secrets` they
 * are redacted. Called before each action, and again once the config (and
 * its secrets) is loaded. With a `progress` view (a terminal at the default
 * level), only warnings and errors print as lines; the view draws the rest.
 */
export async function setupLogging(
  command: Command,
  options: { secrets?: readonly string[]; progress?: ProgressView } = {},
): Promise<void> {
  const g = globals(command);
  const progress = options.progress;
  await configureLogging({
    format: g.logFormat,
    level: progress ? "warning" : g.logLevel,
    secrets: options.secrets,
    tap: progress ? (record, written) => progress.tap(record, written) : undefined,
    // In text, a failed run's error is printed once, by cli/_errors.ts, not
    // also as the run's `run_failed` line; JSON keeps the event for machines.
    filter: (record) => {
      if (logFormatInUse() !== "text") return true;
      const event = record.properties.event;
      // With progress, failed checks show in the summary's warnings or in the
      // error line of a failed gate, which lists them.
      const detail = event === "check_failed" || event === "quality_gate_failed";
      return event !== "run_failed" && !(progress && detail);
    },
  });
}

/** An option parser that accepts integers only. */
export function intOption(name: string): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) {
      throw new UsageError(`Cannot use ${name} ${value}: expected an integer`);
    }
    return n;
  };
}

/** Throws a usage error when `value` is below `min`. */
export function atLeast(name: string, value: number | undefined, min: number): void {
  if (value !== undefined && value < min) {
    throw new UsageError(`Cannot use ${name} ${value}: must be ${min} or more`);
  }
}
