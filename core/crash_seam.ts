/**
 * The one test seam for crash tests: {@linkcode crashPoint} kills this
 * process with SIGKILL when the environment variable `SLUICE_CRASH_AT`
 * names the point it is called with; otherwise it does nothing.
 *
 * `SLUICE_CRASH_AT=<point>[@<n>]` kills at the n-th time (default the 1st)
 * the point is reached in this process. The stream passes its batch number
 * as `occurrence`, so `appended@2` is "step `appended` of the 2nd batch",
 * as it always was; batch runs count the hits of each point themselves.
 * `SLUICE_CRASH_AT=<point>[@<n>]:stop` stops the process with SIGSTOP there
 * instead: a test changes the files under it (deletes a landing file
 * between extract and bronze) and resumes it with SIGCONT.
 *
 * The variable is read once, lazily, on the first call; without permission
 * to read it (`--allow-env` not covering it) the seam stays off. A value
 * that is not `<point>[@<n>]` also leaves it off (see
 * {@linkcode crashTarget}, which callers may use to refuse such a value).
 *
 * Point names used by the batch run are listed in
 * {@linkcode BATCH_CRASH_POINTS}; the stream's are its `CRASH_STEPS`.
 *
 * @module
 */
import { UsageError } from "./errors.ts";

/**
 * The named crash points of a batch run (`sluice run`), in the order a run
 * reaches them.
 *
 * | point | where |
 * | --- | --- |
 * | `run_recorded` | ledger row `running` committed, nothing read |
 * | `extracted` | files listed and planned, nothing landed |
 * | `bronze_landing` | a source's rows and manifest inserted, not committed |
 * | `bronze_landed` | a source's landing committed, rows not numbered |
 * | `bronze_numbered` | a source's `_source_row` numbering committed |
 * | `stage_recorded` | a stage's ledger rows committed (once per stage) |
 * | `bronze_audited` | bronze checks recorded |
 * | `silver_staged` | silver's temp tables built, transaction not open |
 * | `gold_built` | silver and gold built and audited, COMMIT not sent |
 * | `gold_committed` | silver and gold committed, nothing published |
 * | `output_written` | new Parquet versions written, no link swapped |
 * | `output_linking` | a temporary link made, not yet renamed over the table's link |
 * | `output_swapping` | some links swapped (after each swap), not all |
 * | `output_published` | every link swapped, old versions not pruned |
 * | `run_finishing` | before the ledger row gets its final status |
 * | `run_finished` | final status committed, CHECKPOINT not run |
 * | `checkpointed` | CHECKPOINT done, database not closed |
 *
 * @example
 * ```ts
 * import { BATCH_CRASH_POINTS } from "./crash_seam.ts";
 * BATCH_CRASH_POINTS.includes("gold_committed"); // true
 * ```
 */
export const BATCH_CRASH_POINTS = [
  "run_recorded",
  "extracted",
  "bronze_landing",
  "bronze_landed",
  "bronze_numbered",
  "stage_recorded",
  "bronze_audited",
  "silver_staged",
  "gold_built",
  "gold_committed",
  "output_written",
  "output_linking",
  "output_swapping",
  "output_published",
  "run_finishing",
  "run_finished",
  "checkpointed",
] as const;

/** One batch crash point. */
export type BatchCrashPoint = (typeof BATCH_CRASH_POINTS)[number];

/** Where `SLUICE_CRASH_AT` asks the process to die. */
export interface CrashTarget {
  /** The point's name. */
  point: string;
  /** 1-based occurrence of the point in this process. */
  occurrence: number;
  /** `kill` (SIGKILL, the default) or `stop` (SIGSTOP until a SIGCONT). */
  action: "kill" | "stop";
}

/**
 * Parses `<point>[@<n>][:stop]`; undefined when the text is not of that form.
 *
 * @example
 * ```ts
 * import { parseCrashTarget } from "./crash_seam.ts";
 * parseCrashTarget("bronze_landed@2"); // { point: "bronze_landed", occurrence: 2, action: "kill" }
 * parseCrashTarget("extracted:stop"); // { point: "extracted", occurrence: 1, action: "stop" }
 * parseCrashTarget("nope@0"); // undefined
 * ```
 */
export function parseCrashTarget(text: string): CrashTarget | undefined {
  const m = /^([a-z][a-z_]*)(?:@([1-9][0-9]*))?(:stop)?$/.exec(text.trim());
  if (!m) return undefined;
  return { point: m[1], occurrence: m[2] ? Number(m[2]) : 1, action: m[3] ? "stop" : "kill" };
}

let target: CrashTarget | undefined | null = null;
const hits = new Map<string, number>();

/**
 * The raw `SLUICE_CRASH_AT` value, read once; undefined when unset or not
 * readable, and the parsed target when it is well-formed.
 *
 * @example
 * ```ts
 * import { crashTarget } from "./crash_seam.ts";
 * const armed = crashTarget().target !== undefined;
 * ```
 */
export function crashTarget(): { raw?: string; target?: CrashTarget } {
  let raw: string | undefined;
  try {
    raw = Deno.env.get("SLUICE_CRASH_AT");
  } catch { /* no env permission: the seam is off */ }
  if (target === null) target = raw ? parseCrashTarget(raw) : undefined;
  return { raw, target };
}

/**
 * Kills this process with SIGKILL (or stops it with SIGSTOP, for `:stop`)
 * if `SLUICE_CRASH_AT` names `name` and this is its chosen occurrence; a
 * no-op otherwise (one map update). `occurrence` overrides the hit count
 * (the stream passes its batch number); `onHit` runs just before the signal.
 *
 * @example
 * ```ts
 * import { crashPoint } from "./crash_seam.ts";
 * crashPoint("gold_committed"); // returns, unless SLUICE_CRASH_AT=gold_committed
 * crashPoint("appended", { occurrence: 2 }); // the stream passes its batch number
 * crashPoint("read", { onHit: () => {} }); // onHit runs just before the kill (to log it)
 * ```
 */
export function crashPoint(
  name: string,
  options: { occurrence?: number; onHit?: () => void } = {},
): void {
  if (target === null) crashTarget();
  if (target === undefined || target === null || target.point !== name) return;
  const n = options.occurrence ?? (hits.get(name) ?? 0) + 1;
  hits.set(name, n);
  if (n === target.occurrence) {
    options.onHit?.();
    Deno.kill(Deno.pid, target.action === "stop" ? "SIGSTOP" : "SIGKILL");
  }
}

/**
 * Refuses a `SLUICE_CRASH_AT` that is set but names no point among `points`
 * (or is not `<point>[@<n>][:stop]`), so a crash test with a misspelt point
 * fails at once instead of running to the end unharmed. Unset: no-op.
 *
 * @example
 * ```ts
 * import { BATCH_CRASH_POINTS, requireKnownCrashPoint } from "./crash_seam.ts";
 * requireKnownCrashPoint(BATCH_CRASH_POINTS); // throws UsageError for SLUICE_CRASH_AT=nope
 * ```
 */
export function requireKnownCrashPoint(points: readonly string[]): void {
  const { raw, target } = crashTarget();
  if (raw === undefined || raw === "") return;
  if (target !== undefined && points.includes(target.point)) return;
  throw new UsageError(
    `Cannot use SLUICE_CRASH_AT=${JSON.stringify(raw)}: write <point>[@<n>][:stop] with a ` +
      `point among ${points.join(", ")}`,
  );
}
