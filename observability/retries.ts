/**
 * Retries, observed: the `onRetry` of `core/retry.ts` that writes one
 * `event: "retry"` warning per retry and counts it in
 * `sluice_retries_total{pipeline, what}` on the run's registry.
 *
 * @module
 */
import { Counter as PromCounter } from "../core/prom.ts";
import type { Counter, Logger, Registry } from "../core/npm_types.ts";
import { errorMessage } from "../core/errors.ts";
import type { RetryEvent } from "../core/retry.ts";

/** Name of the retry counter. */
export const RETRIES_METRIC = "sluice_retries_total";

/**
 * The retry counter on `registry`, registered on first use. `what` is a
 * bounded label: `database_open`, `pushgateway`, `lineage`, `source_file`.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * import { retriesCounter } from "./retries.ts";
 * retriesCounter(new Registry()).inc({ pipeline: "shop", what: "pushgateway" });
 * ```
 */
export function retriesCounter(registry: Registry): Counter<"pipeline" | "what"> {
  const existing = registry.getSingleMetric(RETRIES_METRIC);
  if (existing) return existing as Counter<"pipeline" | "what">;
  return new PromCounter({
    name: RETRIES_METRIC,
    help: "Retries of transient failures in this run",
    labelNames: ["pipeline", "what"],
    registers: [registry],
  });
}

/**
 * An `onRetry` callback for `withRetry`: logs `event: "retry"` (warning)
 * with the attempt, the delay and the error, and increments the counter.
 * `label` is the counter's bounded `what`; `redact` hides secrets in the
 * error text.
 *
 * @example
 * ```ts ignore
 * await withRetry(fn, policy, {
 *   what: "push metrics",
 *   onRetry: retryReporter(log, { registry, pipeline: "shop", label: "pushgateway" }),
 * });
 * ```
 */
export function retryReporter(
  logger: Logger,
  options: {
    registry?: Registry;
    pipeline: string;
    label: string;
    redact?: (text: string) => string;
  },
): (event: RetryEvent) => void {
  return (event) => {
    const error = errorMessage(event.error);
    logger.warn("retrying {detail} in {delay_ms} ms (attempt {attempt} of {attempts}): {error}", {
      event: "retry",
      what: options.label,
      detail: event.what,
      attempt: event.attempt,
      attempts: event.attempts,
      delay_ms: event.delayMs,
      error: options.redact ? options.redact(error) : error,
    });
    if (options.registry) {
      retriesCounter(options.registry).inc({ pipeline: options.pipeline, what: options.label });
    }
  };
}
