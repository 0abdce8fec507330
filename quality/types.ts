/**
 * The types of check results, shared by the checks (`checks.ts`), their
 * history (`history.ts`), formatting and events, in their own module so that
 * none of those imports another for a type.
 *
 * @module
 */
import type { CheckType } from "../core/config/mod.ts";

/** A layer whose tables carry checks. */
export type Layer = "bronze" | "silver" | "gold";

/** Outcome of one check. */
export type CheckStatus = "pass" | "fail" | "error";

/** One failing row kept as evidence. */
export interface FailingSample {
  /** JSON object of the row's key columns, or `null` when the table has none. */
  rowKey: string | null;
  /** JSON object of the whole row. */
  sample: string;
}

/** What one check found on one table in one run. */
export interface CheckResult {
  /** Layer of the checked table (`silver` also for quarantine tables). */
  layer: Layer;
  /** Checked table, e.g. `orders` or `orders__quarantine`. */
  table: string;
  /** The check's name. */
  check: string;
  /** The check type (`quarantine_budget`: silver's `max_quarantine`, see `quality/gate.ts`). */
  type: CheckType | "quarantine_budget";
  /** `error` fails the gate, `warn` only reports. */
  severity: "error" | "warn";
  /** Checked column(s), comma separated; `null` for table-level checks. */
  column: string | null;
  /** pass, fail, or error (the check could not be evaluated). */
  status: CheckStatus;
  /** Rows failing the check; `null` for table-level checks. */
  failingRows: number | null;
  /** Rows checked. */
  totalRows: number | null;
  /** What was allowed, as text (`0 rows`, `0.5%`, `min 1`...). */
  threshold: string | null;
  /** One readable sentence. */
  message: string;
  /** Up to `sampleSize` failing rows (failing row-level checks only). */
  samples: FailingSample[];
  /** When the check finished. */
  checkedAt: Date;
  /**
   * True when the check's SQL raised an error that aborted the enclosing
   * transaction (only possible with user SQL such as `expression`).
   */
  aborted?: boolean;
  /**
   * Silver checks of `sluice run`: `changed` when the check read only the
   * rows the run wrote and the rows that failed it last time (its figures
   * still cover the whole table), `full` when it read every row.
   */
  scope?: "changed" | "full";
  /** With `scope`: the rows the check evaluated row by row. */
  rowsChecked?: number;
}

/**
 * What the silver stage did to one table in this run (a table it did not
 * write is not listed).
 *
 * @example
 * ```ts
 * import type { SilverWrite } from "./types.ts";
 * const write: SilverWrite = { table: "orders", rebuilt: false, retracted: false };
 * ```
 */
export interface SilverWrite {
  /** Silver table name. */
  table: string;
  /** Built from scratch: a first build or a full refresh. */
  rebuilt: boolean;
  /** Rows of re-sent or retracted files were taken out (and older versions restored). */
  retracted: boolean;
  /**
   * Temp table (quoted) of the old and new versions of the rows the write
   * touched (`_sluice_old`), when silver recorded one (`stages/_silver_delta.ts`).
   */
  delta?: string;
}

/**
 * Row-level check types: their verdict on a row depends on that row alone
 * (and a `relationships` parent), so `quality.scope: changed` may narrow
 * them to candidate rows and keep their failing rows.
 *
 * @example
 * ```ts
 * import { ROW_LEVEL_CHECKS } from "./types.ts";
 * ROW_LEVEL_CHECKS.has("not_null"); // true
 * ROW_LEVEL_CHECKS.has("row_count"); // false
 * ```
 */
export const ROW_LEVEL_CHECKS: ReadonlySet<string> = new Set([
  "not_null",
  "accepted_values",
  "range",
  "regex",
  "expression",
  "unique",
  "relationships",
]);
