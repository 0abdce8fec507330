/**
 * The run lifecycle, in one place. Every command that works on a
 * pipeline's database (batch `run`, `check`, `dlq`, `stream`, `demo`) goes
 * through {@linkcode withRun}:
 *
 * 1. mint the run id (or check the given one), once;
 * 2. open the engine and its sandbox (`core/pipeline_db.ts`);
 * 3. attach the log context (`run_id`, `pipeline`) to every record written
 *    while the run lasts, third-party code included;
 * 4. call `fn` with the {@linkcode RunContext};
 * 5. give the run's ledger row its final status (`success`, `failed`,
 *    `quality_failed`, or the `runStatus` an error carries) when the code
 *    that ran did not;
 * 6. close the database in `finally`.
 *
 * The overlap policy (`onOverlap`, `waitTimeoutMs`) and the time limit
 * (`maxRuntimeMs`) are accepted here so that every caller passes them the
 * same way.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { Registry as PromRegistry } from "../core/prom.ts";
import type { Registry } from "../core/npm_types.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import { redactSecrets } from "../core/config/mod.ts";
import { errorMessage, QualityGateError, UsageError } from "../core/errors.ts";
import { openPipelineDb } from "../core/pipeline_db.ts";
import type { RunContext } from "../core/run_context.ts";
import { newRunId, RUN_ID_PATTERN } from "../core/run_id.ts";
import { finishRunRecord, settleRunRecord } from "../observability/ledger.ts";
import { withLogContext } from "../observability/logging.ts";
import { recordedStatus } from "../observability/run_observer.ts";
import { retryPolicy } from "../core/config/mod.ts";
import { parseDuration } from "../core/duration.ts";
import { withRetry } from "../core/retry.ts";
import { retryReporter } from "../observability/retries.ts";
import { type HeldRunLock, overlapPolicy, takeRunLock, tidyAfterLock } from "./overlap.ts";
import { type RunStops, watchStops } from "./stop.ts";

/** What a run does; the ledger's `command` when the run records itself here. */
export type RunKind = "run" | "check" | "dlq" | "stream" | "demo" | "retract";

/** What to do when another run of the same pipeline holds it. */
export type OverlapPolicy = "fail" | "skip" | "wait";

/** Options of {@linkcode withRun}. */
export interface WithRunOptions {
  /** Run id; default a new UUIDv7 from `clock`. */
  runId?: string;
  /** What started the run (`cli`, `cron`, `test`, `demo`). Default `cli` (`demo` for a demo). */
  trigger?: string;
  /** Time source; default the system clock. */
  clock?: Clock;
  /** Metrics registry; default a fresh one. */
  metrics?: Registry;
  /** What the run does. Default `run`. */
  kind?: RunKind;
  /**
   * WAL size at which DuckDB checkpoints by itself. Default `1GB` (a batch
   * run checkpoints once, at its end); a stream defaults to `null`, DuckDB's
   * own automatic checkpoints.
   */
  checkpointThreshold?: string | null;
  /** Aborts the run at its next safe point (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Another run holds the pipeline: `fail` (default), `skip` or `wait`. */
  onOverlap?: OverlapPolicy;
  /** With `onOverlap: "wait"`: how long to wait for the other run, in ms. */
  waitTimeoutMs?: number;
  /** Stops the run at its next safe point after this many ms (default `run.max_runtime`). */
  maxRuntimeMs?: number;
  /**
   * Listen to SIGINT/SIGTERM (the CLI does): the first stops the run at its
   * next safe point (exit 130/143), a second exits at once.
   */
  handleSignals?: boolean;
  /**
   * Take the pipeline's run lock (`<database>.lock`, see `core/run_lock.ts`)
   * before the database opens. Default true; a command that only reads may
   * pass false.
   */
  lock?: boolean;
}

/** `run_id` and `pipeline` of the run an error came out of. */
export interface RunFields {
  /** The run's id. */
  run_id: string;
  /** The pipeline's name. */
  pipeline: string;
}

const errorRuns = new WeakMap<object, RunFields>();

/**
 * The run an error escaped from, when it came out of {@linkcode withRun}:
 * the CLI puts its `run_id` on the error line.
 *
 * @example
 * ```ts ignore
 * try { await withRun(config, {}, (ctx) => runPipeline(ctx)); }
 * catch (e) { runFieldsOf(e)?.run_id; }
 * ```
 */
export function runFieldsOf(error: unknown): RunFields | undefined {
  return typeof error === "object" && error !== null ? errorRuns.get(error) : undefined;
}

/**
 * The ledger status of a run that ended with `error`: the error's own
 * `runStatus` (e.g. `timed_out`, `cancelled`, `skipped`), `quality_failed`
 * for a failed quality gate, else `failed`.
 *
 * @example
 * ```ts ignore
 * runStatusOf(new QualityGateError("...")); // "quality_failed"
 * ```
 */
export function runStatusOf(error: unknown): string {
  if (error === undefined) return "success";
  const own = typeof error === "object" && error !== null
    ? (error as { runStatus?: unknown }).runStatus
    : undefined;
  if (typeof own === "string") return own;
  return error instanceof QualityGateError ? "quality_failed" : "failed";
}

/**
 * Checks or mints the run id: the given one must be 1 to 64 letters, digits,
 * `_ . -`; without one, a new UUIDv7 from the clock.
 */
function runIdOf(options: WithRunOptions, clock: Clock): string {
  if (options.runId === undefined) return newRunId(clock);
  if (!RUN_ID_PATTERN.test(options.runId)) {
    throw new UsageError(
      `Cannot use run id ${JSON.stringify(options.runId)}: use 1 to 64 letters, digits, _ . -`,
    );
  }
  return options.runId;
}

/** Opens the database and builds the run context. */
async function openContext(
  config: PipelineConfig,
  options: WithRunOptions,
  runId: string,
  clock: Clock,
): Promise<RunContext> {
  const kind = options.kind ?? "run";
  const metrics = options.metrics ?? new PromRegistry();
  const logger = getLogger(["sluice"]).with({ run_id: runId, pipeline: config.pipeline });
  // A reader (`sluice runs`, `report`) may hold the database for a moment: retry.
  const db = await withRetry(
    () =>
      openPipelineDb(config, {
        checkpointThreshold: options.checkpointThreshold !== undefined
          ? options.checkpointThreshold
          : kind === "stream"
          ? null
          : "1GB",
      }),
    retryPolicy(config.run?.retries),
    {
      what: `open ${config.engine.database}`,
      signal: options.signal,
      onRetry: retryReporter(logger.getChild("run"), {
        registry: metrics,
        pipeline: config.pipeline,
        label: "database_open",
      }),
    },
  );
  return {
    runId,
    config,
    db,
    logger,
    metrics,
    clock,
    startedAt: clock.now(),
    trigger: options.trigger ?? (kind === "demo" ? "demo" : "cli"),
    signal: options.signal,
  };
}

/** The stop error when the run was stopped (statements may run again to record it). */
function stoppedBy(ctx: RunContext, stops: RunStops): RunStops["reason"] {
  if (!stops.reason) return undefined;
  ctx.db.resume();
  return stops.reason;
}

/** Records a stream's clean stop (by signal or time limit) over its own `success`. */
async function recordStop(
  ctx: RunContext,
  stop: NonNullable<RunStops["reason"]>,
  t0: number,
): Promise<void> {
  try {
    await finishRunRecord(ctx, {
      status: stop.runStatus,
      error: stop.message,
      durationMs: performance.now() - t0,
    });
  } catch (e) {
    ctx.logger.getChild("run").warn("could not record the run's final status: {error}", {
      event: "ledger_write_failed",
      error: redactSecrets(errorMessage(e), ctx.config.secrets),
    });
  }
}

/** Ledger `command` of a run kind. */
function commandOf(kind: RunKind): string {
  return kind === "demo" ? "run" : kind;
}

/** Step 5: the ledger row's final status; never hides the run's own error. */
async function settle(ctx: RunContext, kind: RunKind, error: unknown, t0: number): Promise<void> {
  // The run's observer wrote its end already (the database may not take more writes: a
  // CHECKPOINT that failed on a full disk).
  if (recordedStatus(ctx) !== undefined) return;
  try {
    await settleRunRecord(ctx, {
      command: commandOf(kind),
      status: runStatusOf(error),
      error: error === undefined
        ? undefined
        : redactSecrets(errorMessage(error), ctx.config.secrets),
      durationMs: performance.now() - t0,
    });
  } catch (e) {
    ctx.logger.getChild("run").warn("could not record the run's final status: {error}", {
      event: "ledger_write_failed",
      error: redactSecrets(errorMessage(e), ctx.config.secrets),
    });
  }
}

/**
 * Runs `fn` as one run of the pipeline: mints the run id, opens the
 * sandboxed database, attaches `run_id` and `pipeline` to every log record,
 * records the run's final status and closes the database, even on failure.
 * An error thrown out of it carries the run's fields ({@linkcode runFieldsOf}).
 *
 * @example
 * ```ts ignore
 * import { loadConfig, runPipeline, withRun } from "../mod.ts";
 * const config = await loadConfig("pipeline.yaml");
 * const summary = await withRun(config, { trigger: "cron" }, (ctx) => runPipeline(ctx));
 * ```
 */
export async function withRun<T>(
  config: PipelineConfig,
  options: WithRunOptions,
  fn: (ctx: RunContext) => Promise<T>,
): Promise<T> {
  const clock = options.clock ?? systemClock;
  const runId = runIdOf(options, clock);
  const fields: RunFields = { run_id: runId, pipeline: config.pipeline };
  const kind = options.kind ?? "run";
  return await withLogContext({ ...fields }, async () => {
    const t0 = performance.now();
    let ctx: RunContext | undefined;
    let held: HeldRunLock | undefined;
    const log = getLogger(["sluice", "run"]).with({ ...fields });
    // SIGINT/SIGTERM count from now (also while waiting for the lock).
    const stops = watchStops({
      signals: options.handleSignals,
      interrupt: kind !== "stream",
      parent: options.signal,
      logger: log,
    });
    try {
      held = options.lock === false ? undefined : await takeRunLock(config, {
        runId,
        command: commandOf(kind),
        trigger: options.trigger ?? (kind === "demo" ? "demo" : "cli"),
        clock,
        logger: log,
        signal: stops.signal,
        ...overlapPolicy(config, {
          command: commandOf(kind),
          policy: options.onOverlap,
          waitTimeoutMs: options.waitTimeoutMs,
        }),
      });
      if (stops.reason) throw stops.reason;
      // The time limit counts from the lock, not from the wait for it.
      const maxRuntimeMs = options.maxRuntimeMs ??
        (config.run?.max_runtime ? parseDuration(config.run.max_runtime) : undefined);
      if (maxRuntimeMs !== undefined && maxRuntimeMs > 0) stops.limit(maxRuntimeMs);
      ctx = await openContext(config, { ...options, signal: stops.signal }, runId, clock);
      stops.attach(ctx.db);
      if (held) {
        try {
          await tidyAfterLock(ctx, held.stale);
        } catch (e) {
          if (stops.reason) throw stops.reason;
          log.warn("could not record skipped or abandoned runs: {error}", {
            event: "ledger_write_failed",
            error: redactSecrets(errorMessage(e), config.secrets),
          });
        }
      }
      let result: T;
      try {
        result = await fn(ctx);
      } catch (e) {
        const error = stoppedBy(ctx, stops) ?? e;
        await settle(ctx, kind, error, t0);
        throw error;
      }
      const stop = kind === "stream" ? stoppedBy(ctx, stops) : undefined;
      if (stop) {
        // The stream stopped cleanly between batches: it says so in the ledger and exit code.
        stop.result = result;
        await recordStop(ctx, stop, t0);
        throw stop;
      }
      await settle(ctx, kind, undefined, t0);
      return result;
    } catch (e) {
      if (typeof e === "object" && e !== null && !errorRuns.has(e)) errorRuns.set(e, fields);
      throw e;
    } finally {
      ctx?.db.close();
      held?.lock.release();
      stops.dispose();
    }
  });
}
