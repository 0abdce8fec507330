/**
 * Small pieces both stream runners share: the landing-folder
 * `StreamRunner` and the JetStream worker.
 *
 * @module
 */
import { crashPoint } from "../core/crash_seam.ts";
import type { Logger } from "@logtape/logtape";
import { errorMessage } from "../core/errors.ts";

/** Microseconds since the epoch as a `Date` (`null` stays `null`). */
export function usToDate(us: number | null): Date | null {
  return us === null ? null : new Date(Math.floor(us / 1000));
}

/** Waits `ms`, or less when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The stream's side of the crash seam (core/crash_seam.ts): kills the process
 * when `SLUICE_CRASH_AT=<step>@<batch>` names this step of this batch, and
 * logs `crash_point` first.
 */
export function crashIfAt(log: Logger, here: { step: string; batch: number }): void {
  crashPoint(here.step, {
    occurrence: here.batch,
    onHit: () =>
      log.warn("crash point reached, killing the process", {
        event: "crash_point",
        step: here.step,
      }),
  });
}

/** Logs `stream_failed` for a runner that failed after `batches` batches. */
export function logStreamFailed(log: Logger, e: unknown, batches: number): void {
  log.error("stream failed", {
    event: "stream_failed",
    error: errorMessage(e),
    error_kind: (e as { kind?: string }).kind ?? "internal",
    batches,
  });
}

/** `reason count, ...` sorted by reason, for a summary line. */
export function reasonsText(byReason: Record<string, number>): string {
  const n = (x: number) => x.toLocaleString("en-US");
  return Object.entries(byReason).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${n(v)}`).join(", ");
}
