/**
 * Retries with exponential backoff and full jitter, for transient failures
 * only: a {@linkcode SluiceError} marked `transient`, DuckDB's "database is
 * locked" / conflicting-lock errors, and network errors (connection refused,
 * reset, timed out: an unreachable Pushgateway or lineage endpoint). Bad
 * SQL, bad config or a sandbox refusal fail at once.
 *
 * The clock is injected: `sleep` and `random` are options, so tests never
 * wait for real. Each retry is reported to `onRetry` (the caller logs an
 * `event: "retry"` line and counts it in `sluice_retries_total`).
 *
 * @module
 */
import { errorMessage, SluiceError } from "./errors.ts";

/** Backoff settings: `retries: { attempts, initial, max }` in milliseconds. */
export interface RetryPolicy {
  /** Tries in all, the first included (1 = no retry). */
  attempts: number;
  /** Delay before the first retry, milliseconds. */
  initialMs: number;
  /** Largest delay between two tries, milliseconds. */
  maxMs: number;
}

/** What {@linkcode withRetry} reports before each retry. */
export interface RetryEvent {
  /** What was retried, e.g. `push metrics to http://127.0.0.1:9091`. */
  what: string;
  /** The try that failed (1-based). */
  attempt: number;
  /** Tries in all. */
  attempts: number;
  /** Milliseconds to wait before the next try. */
  delayMs: number;
  /** The transient error. */
  error: unknown;
}

/** Options of {@linkcode withRetry}. */
export interface RetryOptions {
  /** What is tried, for log lines and errors. */
  what: string;
  /** Waits `ms` milliseconds; default a real timer. Tests pass a fake. */
  sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1); default `Math.random`. Tests pass a fixed one. */
  random?: () => number;
  /** Decides whether an error is worth another try; default {@linkcode isTransient}. */
  transient?: (e: unknown) => boolean;
  /** Called before each retry (log it, count it). */
  onRetry?: (event: RetryEvent) => void;
  /** Stops retrying when aborted (the run is stopping). */
  signal?: AbortSignal;
}

/**
 * The default policy: 3 tries, 200 ms then doubling, at most 5 s apart.
 *
 * @example
 * ```ts
 * import { DEFAULT_RETRY_POLICY } from "./retry.ts";
 * DEFAULT_RETRY_POLICY.attempts; // 3
 * ```
 */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 3,
  initialMs: 200,
  maxMs: 5_000,
});

const TRANSIENT_MESSAGE =
  /database is locked|Could not set lock on file|Conflicting lock is held|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|Connection refused|connection reset|timed out|error sending request|tcp connect error/i;

/**
 * True when retrying may help: a transient {@linkcode SluiceError}, a
 * network error, or DuckDB's lock conflict. Permanent Sluice errors (config,
 * SQL, sandbox, quality gate) are never retried.
 *
 * @example
 * ```ts
 * import { isTransient } from "./retry.ts";
 * isTransient(new Deno.errors.ConnectionRefused("refused")); // true
 * isTransient(new Error("Parser Error: syntax error at or near SELEC")); // false
 * ```
 */
export function isTransient(e: unknown): boolean {
  if (e instanceof SluiceError) return e.transient;
  if (
    e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.ConnectionReset ||
    e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.TimedOut ||
    e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.NotConnected
  ) return true;
  const cause = (e as { cause?: unknown })?.cause;
  if (cause !== undefined && cause !== e && isTransient(cause)) return true;
  return TRANSIENT_MESSAGE.test(errorMessage(e));
}

/**
 * The delay before retry number `retry` (1-based): full jitter over an
 * exponential ceiling, `random() * min(max, initial * 2^(retry-1))`, never
 * below a tenth of the ceiling.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./retry.ts";
 * backoffDelay(3, { attempts: 5, initialMs: 100, maxMs: 1000 }, () => 0.5); // 200
 * ```
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, retry - 1));
  return Math.round(Math.max(ceiling / 10, random() * ceiling));
}

function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `fn`, retrying transient failures with exponential backoff and
 * jitter, at most `policy.attempts` tries in all. A permanent error, or the
 * last transient one, is thrown as it is.
 *
 * @example
 * ```ts
 * import { withRetry } from "./retry.ts";
 * let tries = 0;
 * const value = await withRetry(async () => {
 *   if (++tries < 3) throw new Deno.errors.ConnectionRefused("refused");
 *   return "ok";
 * }, { attempts: 3, initialMs: 10, maxMs: 100 }, { what: "ping", sleep: () => Promise.resolve() });
 * // value === "ok", tries === 3
 * ```
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  options: RetryOptions,
): Promise<T> {
  const sleep = options.sleep ?? realSleep;
  const random = options.random ?? Math.random;
  const transient = options.transient ?? isTransient;
  const attempts = Math.max(1, Math.floor(policy.attempts));
  for (let attempt = 1;; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= attempts || options.signal?.aborted || !transient(e)) throw e;
      const delayMs = backoffDelay(attempt, policy, random);
      options.onRetry?.({ what: options.what, attempt, attempts, delayMs, error: e });
      await sleep(delayMs);
    }
  }
}
