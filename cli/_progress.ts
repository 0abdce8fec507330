/**
 * Stage progress on a terminal: at the default log level, when stderr is a
 * terminal and logs are text, `sluice run` and `sluice demo` show one line
 * per finished stage (rows, seconds, rows/s) and a spinner for the stages
 * running, instead of every info line; warnings and errors still print.
 * Nothing here writes to stdout, and it uses no ANSI codes (`\r` and
 * spaces redraw the spinner line).
 *
 * @module
 */
import type { Command } from "commander";
import type { LogRecord } from "@logtape/logtape";
import { err, globals, type ProgressView } from "./_shared.ts";

export type { ProgressView };

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

interface Active {
  started: number;
  rows: number;
}

function n(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

/** `1,234 rows/s`, or empty when the time is too short to say. */
function rate(rows: number, ms: number): string {
  return ms >= 1 && rows > 0 ? `${n((rows * 1000) / ms)} rows/s` : "";
}

/**
 * A progress view for the command, or `undefined` when progress is not
 * shown: stderr is not a terminal, logs are JSON, or `--log-level` was
 * given (then every line at that level prints as usual).
 *
 * @example
 * ```ts ignore
 * const progress = progressView(cmd);
 * await setupLogging(cmd, { progress });
 * ```
 */
export function progressView(command: Command): ProgressView | undefined {
  if (!Deno.stderr.isTerminal()) return undefined;
  if (globals(command).logFormat === "json") return undefined;
  if (command.getOptionValueSourceWithGlobals("logLevel") !== "default") return undefined;
  return new TerminalProgress();
}

class TerminalProgress implements ProgressView {
  readonly active = new Map<string, Active>();
  timer: ReturnType<typeof setInterval> | undefined;
  frame = 0;
  lineWidth = 0;

  tap(record: LogRecord, written: boolean): void {
    const p = record.properties;
    const stage = typeof p.stage === "string" ? p.stage : record.category[1];
    if (p.event === "stage_started" && typeof stage === "string") {
      this.active.set(stage, { started: performance.now(), rows: 0 });
      this.timer ??= setInterval(() => this.draw(), 120);
    } else if (p.event === "stage_finished" && typeof stage === "string") {
      this.active.delete(stage);
      this.finished(stage, p);
    } else if (typeof stage === "string" && typeof p.rows === "number") {
      const a = this.active.get(stage);
      if (a) a.rows += p.rows;
    }
    if (written) this.clear();
  }

  /** Prints the line of a finished stage. */
  finished(stage: string, p: Record<string, unknown>): void {
    this.clear();
    const rows = typeof p.rows_in === "number" ? p.rows_in : 0;
    const ms = typeof p.duration_ms === "number" ? p.duration_ms : 0;
    const unit = stage === "extract" ? "files" : "rows";
    const what = p.skipped === true ? "nothing to do" : `${n(rows)} ${unit}`;
    const speed = p.skipped === true || unit === "files" ? "" : rate(rows, ms);
    err(
      `✓ ${stage.padEnd(7)} ${what.padStart(14)}  ${(ms / 1000).toFixed(2).padStart(7)}s` +
        `${speed ? `  ${speed}` : ""}\n`,
    );
    if (this.active.size === 0) this.stopTimer();
  }

  draw(): void {
    if (this.active.size === 0) return;
    const now = performance.now();
    const parts = [...this.active].map(([stage, a]) => {
      const ms = now - a.started;
      const speed = rate(a.rows, ms);
      return `${stage} ${(ms / 1000).toFixed(1)}s${a.rows > 0 ? ` ${n(a.rows)} rows` : ""}${
        speed ? ` ${speed}` : ""
      }`;
    });
    const line = `${FRAMES[this.frame++ % FRAMES.length]} ${parts.join(" · ")}`;
    const pad = " ".repeat(Math.max(0, this.lineWidth - line.length));
    err(`\r${line}${pad}`);
    this.lineWidth = line.length;
  }

  clear(): void {
    if (this.lineWidth === 0) return;
    err(`\r${" ".repeat(this.lineWidth)}\r`);
    this.lineWidth = 0;
  }

  stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  stop(): void {
    this.stopTimer();
    this.clear();
    this.active.clear();
  }
}
