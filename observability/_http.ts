/**
 * One HTTP request with a per-attempt timeout and a bounded retry with
 * exponential backoff, shared by the Pushgateway exporter and the
 * OpenLineage HTTP transport (backoff with jitter from `core/retry.ts`). It never throws: the caller gets what
 * happened and decides how loudly to warn.
 *
 * @module
 */
import { type RetryPolicy, withRetry } from "../core/retry.ts";

/** Options of {@linkcode sendWithRetry}. */
export interface SendOptions {
  /** Milliseconds one attempt may take. */
  timeoutMs: number;
  /** Further attempts after the first one fails with a retryable error. */
  retries: number;
  /** Fetch implementation; default the global `fetch`. */
  fetch?: typeof fetch;
  /** Waits between attempts; default `setTimeout`. */
  sleep?: (ms: number) => Promise<void>;
  /** Called before each retry with the attempt that failed (1-based) and why. */
  onRetry?: (attempt: number, reason: string, delayMs: number) => void;
  /**
   * Backoff (`run.retries`); default `retries + 1` tries, 250 ms doubling to
   * at most 4 s, with jitter (`core/retry.ts`).
   */
  policy?: RetryPolicy;
  /** Jitter source in [0, 1); default `Math.random`. */
  random?: () => number;
}

/** What {@linkcode sendWithRetry} did. */
export interface SendResult {
  /** True when a 2xx response came back. */
  ok: boolean;
  /** Attempts made. */
  attempts: number;
  /** HTTP status of the last response, when there was one. */
  status?: number;
  /** Why the last attempt failed. */
  error?: string;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
}

/**
 * Sends one request, retrying network errors, timeouts, 408, 429 and 5xx
 * responses up to `retries` more times. Other 4xx responses and missing
 * network permission are not retried.
 *
 * @example
 * ```ts ignore
 * const r = await sendWithRetry("http://127.0.0.1:9091/metrics/job/sluice", { method: "PUT", body: "" },
 *   { timeoutMs: 5000, retries: 2 });
 * if (!r.ok) throw new Error(String(r.error));
 * ```
 */
export async function sendWithRetry(
  url: string,
  init: RequestInit,
  options: SendOptions,
): Promise<SendResult> {
  const doFetch = options.fetch ?? fetch;
  let attempts = 0;
  let last: SendResult = { ok: false, attempts: 0 };
  /** Thrown inside the retry loop for a failure worth another try. */
  class Retryable extends Error {}
  try {
    return await withRetry(
      async () => {
        attempts++;
        try {
          const res = await doFetch(url, {
            ...init,
            signal: AbortSignal.timeout(options.timeoutMs),
          });
          const text = await res.text().catch(() => "");
          if (res.ok) return { ok: true, attempts, status: res.status };
          last = {
            ok: false,
            attempts,
            status: res.status,
            error: `HTTP ${res.status} ${res.statusText}${
              text ? `: ${text.trim().slice(0, 300)}` : ""
            }`,
          };
          if (res.status >= 500 || res.status === 408 || res.status === 429) {
            throw new Retryable(last.error);
          }
          return last;
        } catch (e) {
          if (e instanceof Retryable) throw e;
          if (isPermissionError(e)) {
            const host = URL.canParse(url) ? new URL(url).host : url;
            last = {
              ok: false,
              attempts,
              error: `no network permission for ${host} (run with --allow-net=${host})`,
            };
            return last;
          }
          const name = (e as Error)?.name;
          const message = name === "TimeoutError"
            ? `timed out after ${options.timeoutMs} ms`
            : (e as Error)?.message ?? String(e);
          last = { ok: false, attempts, error: message };
          // Connection refused or reset, DNS, timeout: the endpoint is unreachable for now.
          throw new Retryable(message);
        }
      },
      options.policy ?? {
        attempts: options.retries + 1,
        initialMs: 250,
        maxMs: 4000,
      },
      {
        what: `send to ${url}`,
        sleep: options.sleep ?? defaultSleep,
        random: options.random,
        transient: (e) => e instanceof Retryable,
        onRetry: (r) => options.onRetry?.(r.attempt, last.error ?? "failed", r.delayMs),
      },
    );
  } catch (e) {
    if (e instanceof Retryable) return last;
    throw e;
  }
}
