/**
 * How a run stops early: a time limit (`--max-runtime`, `run.max_runtime`)
 * or SIGINT/SIGTERM. On the first of them the run is told to stop at its
 * next safe point: its `AbortSignal` aborts and, for a batch run, the
 * statement running on each of its connections is interrupted (DuckDB's
 * `interrupt()`), so the open transaction rolls back and nothing partial is
 * published; the run then ends with a {@linkcode TimedOutError} (exit 124)
 * or a {@linkcode CancelledError} (exit 130 / 143). A stream is not
 * interrupted: it finishes the batch in flight (or never starts the next)
 * and stops. A second signal exits the process at once with the signal's
 * code: whatever was not committed is lost, as after a kill, and the next
 * run marks the run `abandoned`.
 *
 * @module
 */
import type { Logger } from "../core/npm_types.ts";
import { formatDuration } from "../core/duration.ts";
import type { Engine } from "../core/engine.ts";
import { CancelledError, EXIT, TimedOutError } from "../core/errors.ts";

/** Options of {@linkcode watchStops}. */
export interface StopOptions {
  /** Stop the run after this many milliseconds. */
  maxRuntimeMs?: number;
  /** Listen to SIGINT and SIGTERM (the CLI does; a library caller may not). */
  signals?: boolean;
  /**
   * Interrupt the running statements when the run must stop (a batch run).
   * False: only abort the signal, for code that stops between steps by
   * itself (a stream finishes its batch). Default true.
   */
  interrupt?: boolean;
  /** A caller's signal: when it aborts, {@linkcode RunStops.signal} aborts too (no interrupt). */
  parent?: AbortSignal;
  /** Where the stop is logged. */
  logger?: Logger;
  /** Ends the process on a second signal; default `Deno.exit`. */
  exit?: (code: number) => void;
}

/** The stop watch of one run. */
export interface RunStops {
  /** Aborts when the run must stop; its reason is the stop error. */
  readonly signal: AbortSignal;
  /** Why the run stopped, once it must. */
  readonly reason: TimedOutError | CancelledError | undefined;
  /** Interrupts `db` too when the run must stop (now, if it already must). */
  attach(db: Engine): void;
  /** Starts the time limit now: the run stops `ms` milliseconds from now. */
  limit(ms: number): void;
  /** Asks the run to stop with `reason`; later calls are ignored. */
  stop(reason: TimedOutError | CancelledError): void;
  /** Removes the timer and the signal listeners. */
  dispose(): void;
}

/**
 * Starts watching for the run's time limit and SIGINT/SIGTERM. Dispose of
 * it when the run ends.
 *
 * @example
 * ```ts ignore
 * const stops = watchStops({ maxRuntimeMs: 3_600_000, signals: true });
 * stops.attach(ctx.db);
 * try { await runPipeline(ctx); } finally { stops.dispose(); }
 * ```
 */
export function watchStops(options: StopOptions = {}): RunStops {
  const controller = new AbortController();
  const engines = new Set<Engine>();
  const interrupt = options.interrupt ?? true;
  const exit = options.exit ?? ((code: number) => Deno.exit(code));
  let reason: TimedOutError | CancelledError | undefined;
  const cleanups: (() => void)[] = [];

  const stop = (why: TimedOutError | CancelledError) => {
    if (reason) return;
    reason = why;
    options.logger?.warn("stopping the run at its next safe point: {reason}", {
      event: "run_stopping",
      reason: why.message,
      stop_kind: why.kind,
      ...(why instanceof CancelledError ? { signal: why.signal } : {}),
    });
    if (interrupt) { for (const db of engines) db.interrupt(why); }
    controller.abort(why);
  };

  const limit = (ms: number) => {
    const timer = setTimeout(
      () =>
        stop(new TimedOutError(`Run stopped: it passed its max runtime of ${formatDuration(ms)}`)),
      ms,
    );
    Deno.unrefTimer(timer);
    cleanups.push(() => clearTimeout(timer));
  };
  if (options.maxRuntimeMs !== undefined && options.maxRuntimeMs > 0) limit(options.maxRuntimeMs);

  if (options.signals) {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const code = sig === "SIGINT" ? EXIT.sigint : EXIT.sigterm;
      const listener = () => {
        if (reason) {
          options.logger?.error("second signal, exiting at once", {
            event: "run_exit_now",
            signal: sig,
            exit_code: code,
          });
          exit(code);
          return;
        }
        stop(new CancelledError(`Run stopped by ${sig}`, { signal: sig }));
      };
      Deno.addSignalListener(sig, listener);
      cleanups.push(() => Deno.removeSignalListener(sig, listener));
    }
  }

  if (options.parent) {
    // A caller's own signal: passed on as it is (the caller decides what a stop means).
    const parent = options.parent;
    const onAbort = () => controller.abort(parent.reason);
    if (parent.aborted) onAbort();
    else {
      parent.addEventListener("abort", onAbort, { once: true });
      cleanups.push(() => parent.removeEventListener("abort", onAbort));
    }
  }

  return {
    signal: controller.signal,
    get reason() {
      return reason;
    },
    attach(db: Engine) {
      engines.add(db);
      if (reason && interrupt) db.interrupt(reason);
    },
    limit,
    stop,
    dispose() {
      for (const c of cleanups.splice(0)) c();
      engines.clear();
    },
  };
}
