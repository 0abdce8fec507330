/**
 * The overlap policy of a run (`run.on_overlap`, `--on-overlap`): take the
 * pipeline's run lock (`core/run_lock.ts`) before the database opens, and,
 * once it is held, tidy what earlier runs left: fold the records of
 * skipped runs into the ledger and mark runs killed mid-way `abandoned`.
 *
 * A skipped run cannot write the ledger (the holder has the database
 * open), so it writes its record as a file beside the database
 * (`<database>.pending/<run_id>.json`); the next run that takes the lock
 * folds it into `_sluice.runs` with status `skipped` and its own times.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock } from "../core/clock.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import { parseDuration } from "../core/duration.ts";
import { RunSkippedError } from "../core/errors.ts";
import type { RunContext } from "../core/run_context.ts";
import {
  acquireRunLock,
  describeHolder,
  lockPathFor,
  type OverlapPolicy,
  type RunLock,
  type StaleLock,
} from "../core/run_lock.ts";
import { foldPendingRuns, markAbandonedRuns, recordPendingRun } from "../observability/ledger.ts";

/** Options of {@linkcode takeRunLock}. */
export interface TakeRunLockOptions {
  /** The run's id. */
  runId: string;
  /** Its ledger command (`run`, `stream`, `check`, `dlq`). */
  command: string;
  /** What started it. */
  trigger: string;
  /** Time source. */
  clock: Clock;
  /** `fail`, `skip` or `wait`. */
  policy: OverlapPolicy;
  /** With `wait`: how long, in ms. */
  waitTimeoutMs: number;
  /** Where waiting is logged. */
  logger: Logger;
  /** Stops waiting when aborted. */
  signal?: AbortSignal;
}

/** The lock this run holds, and the killed run's lock it took over, if any. */
export interface HeldRunLock {
  /** The lock; release it after the database is closed. */
  lock: RunLock;
  /** A killed run's lock that was taken over. */
  stale?: StaleLock;
}

/**
 * The overlap policy of a run: the command line's, else `run.on_overlap`
 * for `run` and `stream`, else `fail`; and the wait limit (`run.wait_timeout`).
 *
 * @example
 * ```ts ignore
 * overlapPolicy(config, { command: "run" }); // { policy: "fail", waitTimeoutMs: 3600000 }
 * ```
 */
export function overlapPolicy(
  config: PipelineConfig,
  options: { command: string; policy?: OverlapPolicy; waitTimeoutMs?: number },
): { policy: OverlapPolicy; waitTimeoutMs: number } {
  const configured = options.command === "run" || options.command === "stream"
    ? config.run?.on_overlap
    : undefined;
  return {
    policy: options.policy ?? configured ?? "fail",
    waitTimeoutMs: options.waitTimeoutMs ?? parseDuration(config.run?.wait_timeout ?? "1h"),
  };
}

/**
 * Takes the pipeline's run lock as the policy says. With `skip` and the
 * lock busy it records the run as skipped (a pending file, see the module
 * doc) and throws {@linkcode RunSkippedError} (exit 0); with `fail`, or
 * `wait` past its limit, it throws `OverlapError` (exit 75).
 *
 * @example
 * ```ts ignore
 * const held = await takeRunLock(config, { runId, command: "run", trigger: "cron", ... });
 * try { ... } finally { held.lock.release(); }
 * ```
 */
export async function takeRunLock(
  config: PipelineConfig,
  options: TakeRunLockOptions,
): Promise<HeldRunLock> {
  const path = lockPathFor(config.engine.database);
  const startedAt = options.clock.now();
  const result = await acquireRunLock(path, {
    policy: options.policy,
    waitTimeoutMs: options.waitTimeoutMs,
    runId: options.runId,
    command: options.command,
    clock: options.clock,
    signal: options.signal,
    onWait: (holder) =>
      options.logger.info("another run holds the pipeline, waiting up to {wait_ms} ms", {
        event: "lock_waiting",
        wait_ms: options.waitTimeoutMs,
        holder_pid: holder?.pid,
        holder_host: holder?.host,
        holder_run_id: holder?.run_id,
        holder_started_at: holder?.started_at,
      }),
  });
  if (result.acquired) return { lock: result.lock, stale: result.stale };
  const message = `Skipped ${options.command}: the pipeline's lock is held by ${
    describeHolder(result.holder)
  }`;
  await recordPendingRun(config.engine.database, {
    run_id: options.runId,
    pipeline: config.pipeline,
    command: options.command,
    trigger: options.trigger,
    status: "skipped",
    error: message,
    started_at: startedAt.toISOString(),
    finished_at: options.clock.now().toISOString(),
    config_hash: config.hash,
  });
  options.logger.info(message, {
    event: "run_skipped",
    holder_pid: result.holder?.pid,
    holder_host: result.holder?.host,
    holder_run_id: result.holder?.run_id,
    holder_started_at: result.holder?.started_at,
  });
  throw new RunSkippedError(message, { context: { holder: result.holder } });
}

/**
 * Once the lock is held and the database open: logs a taken-over lock
 * (warning `stale_lock_taken_over`), folds skipped runs into the ledger and
 * marks runs left `running` as `abandoned` (warning `runs_abandoned`).
 *
 * @example
 * ```ts ignore
 * await tidyAfterLock(ctx, held.stale);
 * ```
 */
export async function tidyAfterLock(ctx: RunContext, stale?: StaleLock): Promise<void> {
  const log = ctx.logger.getChild("run");
  if (stale) {
    log.warn("took over the lock of a run that was killed: {reason}", {
      event: "stale_lock_taken_over",
      reason: stale.reason,
      holder_pid: stale.holder.pid,
      holder_host: stale.holder.host,
      holder_run_id: stale.holder.run_id,
      holder_started_at: stale.holder.started_at,
    });
  }
  const folded = await foldPendingRuns(ctx);
  if (folded > 0) {
    log.info("recorded {runs} skipped runs in the ledger", {
      event: "skipped_runs_recorded",
      runs: folded,
    });
  }
  const abandoned = await markAbandonedRuns(ctx);
  if (abandoned.length > 0) {
    log.warn("marked {runs} runs abandoned: they were killed before they recorded an end", {
      event: "runs_abandoned",
      runs: abandoned.length,
      run_ids: abandoned,
    });
  }
}
