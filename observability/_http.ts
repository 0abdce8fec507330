/**
 * One HTTP request with a per-attempt timeout and a bounded retry with
 * exponential backoff, shared by the Pushgateway exporter and the
 * OpenLineage HTTP transport. It never throws: the caller gets what
 * happened and decides how loudly to warn.
 *
 * @module
 */

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
 * Backoff before retry `n` (1-based): 250 ms, 500 ms, 1 s ... capped at 4 s.
 *
 * @example
 * ```ts
 * import { backoffMs } from "./_http.ts";
 * [1, 2, 3, 10].map(backoffMs); // [250, 500, 1000, 4000]
 * ```
 */
export function backoffMs(n: number): number {
  return Math.min(4000, 250 * 2 ** (n - 1));
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
  const sleep = options.sleep ?? defaultSleep;
  let attempts = 0;
  let last: SendResult = { ok: false, attempts: 0 };
  while (true) {
    attempts++;
    let retryable: boolean;
    try {
      const res = await doFetch(url, { ...init, signal: AbortSignal.timeout(options.timeoutMs) });
      const text = await res.text().catch(() => "");
      if (res.ok) return { ok: true, attempts, status: res.status };
      retryable = res.status >= 500 || res.status === 408 || res.status === 429;
      last = {
        ok: false,
        attempts,
        status: res.status,
        error: `HTTP ${res.status} ${res.statusText}${
          text ? `: ${text.trim().slice(0, 300)}` : ""
        }`,
      };
    } catch (e) {
      if (isPermissionError(e)) {
        const host = URL.canParse(url) ? new URL(url).host : url;
        return {
          ok: false,
          attempts,
          error: `no network permission for ${host} (run with --allow-net=${host})`,
        };
      }
      const name = (e as Error)?.name;
      const message = name === "TimeoutError"
        ? `timed out after ${options.timeoutMs} ms`
        : (e as Error)?.message ?? String(e);
      retryable = true;
      last = { ok: false, attempts, error: message };
    }
    if (!retryable || attempts > options.retries) return last;
    const delay = backoffMs(attempts);
    options.onRetry?.(attempts, last.error ?? "failed", delay);
    await sleep(delay);
  }
}
