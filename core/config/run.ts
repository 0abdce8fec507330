/**
 * The `run:` section of `pipeline.yaml`: what a run does when another run
 * of the pipeline holds its lock, how long it may take, and how transient
 * failures are retried.
 *
 * ```yaml
 * run:
 *   on_overlap: skip        # fail | skip | wait
 *   wait_timeout: 10m       # with wait: then exit 75
 *   max_runtime: 2h         # then stop, record timed_out, exit 124
 *   retries: { attempts: 4, initial: 500ms, max: 30s }
 * ```
 *
 * @module
 */
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";
import { durationProblem, parseDuration } from "../duration.ts";
import type { RetryPolicy } from "../retry.ts";

/** A duration key: a string or bare number, checked, then kept as its text. */
type DurationField = z.ZodPipe<
  z.ZodUnion<readonly [z.ZodString, z.ZodNumber]>,
  z.ZodTransform<string, string | number>
>;

function duration(
  what: string,
): DurationField {
  // A bare YAML number (`max_runtime: 90`) gets the duration message ("has no unit").
  return z.union([z.string(), z.number()]).superRefine((value, ctx) => {
    const problem = durationProblem(String(value));
    if (problem !== undefined) {
      ctx.addIssue({ code: "custom", message: problem, input: value });
    } else if (parseDuration(String(value)) <= 0) {
      ctx.addIssue({ code: "custom", message: `must be longer than zero, got "${value}"` });
    }
  }).transform((value) => String(value)).describe(what);
}

/** `run.retries`: backoff for transient failures. */
export const RetriesSchema: z.ZodObject<
  {
    attempts: z.ZodDefault<z.ZodNumber>;
    initial: z.ZodDefault<DurationField>;
    max: z.ZodDefault<DurationField>;
  },
  z.core.$strict
> = z.strictObject({
  attempts: z.number().int().min(1).max(100).default(3).describe(
    "Tries in all, the first included (1 = no retry). Default 3.",
  ),
  initial: duration("Delay before the first retry, e.g. `200ms`. Default `200ms`.").default(
    "200ms",
  ),
  max: duration("Largest delay between two tries, e.g. `5s`. Default `5s`.").default("5s"),
}).describe(
  "Retries with exponential backoff and jitter, for transient failures only (a file still " +
    "being written, a busy database, an unreachable Pushgateway or lineage endpoint).",
);

/** The `run:` section. */
export const RunSchema: z.ZodObject<
  {
    on_overlap: z.ZodDefault<z.ZodEnum<{ fail: "fail"; skip: "skip"; wait: "wait" }>>;
    wait_timeout: z.ZodDefault<DurationField>;
    max_runtime: z.ZodOptional<DurationField>;
    retries: z.ZodDefault<typeof RetriesSchema>;
  },
  z.core.$strict
> = z.strictObject({
  on_overlap: z.enum(["fail", "skip", "wait"]).default("fail").describe(
    "When another run of this pipeline holds its lock: `fail` (exit 75 naming the holder), " +
      "`skip` (exit 0, recorded as skipped) or `wait` (up to wait_timeout, then exit 75). " +
      "Default `fail`.",
  ),
  wait_timeout: duration("With `on_overlap: wait`: how long to wait for the lock. Default `1h`.")
    .default("1h"),
  max_runtime: duration(
    "Stop the run past this time at the next safe point, publish nothing new, record " +
      "`timed_out` and exit 124. Default: no limit.",
  ).optional(),
  retries: RetriesSchema.default({ attempts: 3, initial: "200ms", max: "5s" }),
}).describe("Run policies for cron: overlap, time limit, retries.");

/**
 * The `run:` section after validation.
 *
 * @example
 * ```ts
 * import type { RunConfig } from "./run.ts";
 * const run: RunConfig = {
 *   on_overlap: "skip",
 *   wait_timeout: "1h",
 *   retries: { attempts: 3, initial: "200ms", max: "5s" },
 * };
 * ```
 */
export type RunConfig = ZodOutput<typeof RunSchema>;

/**
 * The defaults of the `run:` section (a config without one).
 *
 * @example
 * ```ts
 * import { runDefaults } from "./run.ts";
 * runDefaults().on_overlap; // "fail"
 * ```
 */
export function runDefaults(): RunConfig {
  return RunSchema.parse({});
}

/**
 * `run.retries` in milliseconds, for `withRetry`.
 *
 * @example
 * ```ts
 * import { retryPolicy } from "./run.ts";
 * retryPolicy({ attempts: 4, initial: "500ms", max: "30s" });
 * // { attempts: 4, initialMs: 500, maxMs: 30000 }
 * ```
 */
export function retryPolicy(retries: RunConfig["retries"] | undefined): RetryPolicy {
  const r = retries ?? runDefaults().retries;
  return {
    attempts: r.attempts,
    initialMs: parseDuration(r.initial),
    maxMs: Math.max(parseDuration(r.initial), parseDuration(r.max)),
  };
}
