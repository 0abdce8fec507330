/**
 * Data-quality config: the checks declared next to each table (`checks:` on
 * sources, silver tables and gold models, `quarantine_checks:` on silver
 * tables) and the pipeline-wide `quality:` section. Every object is strict.
 *
 * A check is a one-key mapping whose key is the check type:
 *
 * ```yaml
 * checks:
 *   - unique: { column: order_id }
 *   - not_null: { column: email, severity: warn }
 *   - accepted_values: { column: status, values: [completed, shipped, pending] }
 *   - relationships: { column: customer_id, to: customers, threshold: "1%" }
 *   - row_count: { min: 1, max_change_pct: 50 }
 *   - freshness: { column: order_ts, max_age: 36h }
 *   - drift: { metric: null_ratio, column: email, max_delta: 0.02, runs: 7 }
 * ```
 *
 * @module
 */
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";
import { DLQ_COLUMNS } from "../dlq.ts";
import { durationProblem } from "../duration.ts";
import { IDENTIFIER_PATTERN } from "../quote.ts";

const identifier: z.ZodString = z.string().regex(IDENTIFIER_PATTERN, {
  error: "must be an identifier (letters, digits and _, not starting with a digit, at most 63)",
});

/** `25` (rows) or `"0.5%"` (of the rows checked). */
const THRESHOLD_TEXT = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/;

/**
 * Failing rows a check allows: a whole number of rows (`25`) or a
 * percentage of the rows checked (`"0.5%"`).
 *
 * @example
 * ```ts
 * import { ThresholdSchema } from "./quality.ts";
 * ThresholdSchema.parse(25); // 25 rows
 * ThresholdSchema.parse("0.5%"); // half a percent of the rows checked
 * ```
 */
export const ThresholdSchema: z.ZodCustom<string | number, string | number> = z.custom<
  number | string
>(
  (v) =>
    (typeof v === "number" && Number.isInteger(v) && v >= 0) ||
    (typeof v === "string" && THRESHOLD_TEXT.test(v) && Number(THRESHOLD_TEXT.exec(v)![1]) <= 100),
  {
    error: 'must be a number of rows such as 25 or a percentage of the rows checked such as "0.5%"',
  },
);

const severity: z.ZodEnum<{ error: "error"; warn: "warn" }> = z.enum(["warn", "error"]);
const scalar: z.ZodUnion<readonly [z.ZodString, z.ZodNumber, z.ZodBoolean]> = z.union([
  z.string(),
  z.number(),
  z.boolean(),
]);
const bound: z.ZodUnion<readonly [z.ZodNumber, z.ZodString]> = z.union([
  z.number(),
  z.string().min(1),
]);

/** Fields every check accepts. */
const common: {
  name: z.ZodOptional<z.ZodString>;
  severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
  description: z.ZodOptional<z.ZodString>;
} = {
  name: identifier.optional().describe(
    "Name shown in logs, metrics and reports; default derived from type and column.",
  ),
  severity: severity.optional().describe(
    "`error` stops the run (nothing is published); `warn` only reports. Default `error`.",
  ),
  description: z.string().optional().describe("Free text for reports."),
};

/** The `where` of checks over the whole table. */
const tableWhere: z.ZodOptional<z.ZodString> = z.string().min(1).optional().describe(
  "SQL filter: only rows where it is true are counted.",
);

/** Fields of checks that look at rows one by one. */
const rowLevel: {
  where: z.ZodOptional<z.ZodString>;
  threshold: z.ZodOptional<typeof ThresholdSchema>;
  name: z.ZodOptional<z.ZodString>;
  severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
  description: z.ZodOptional<z.ZodString>;
} = {
  ...common,
  where: z.string().min(1).optional().describe(
    "SQL filter: only rows where it is true are checked.",
  ),
  threshold: ThresholdSchema.optional().describe(
    'Failing rows allowed: a count (`25`) or a percentage (`"0.5%"`). Default 0.',
  ),
};

/**
 * `not_null`: the column has no NULL.
 *
 * @example
 * ```ts
 * import { NotNullCheckSchema } from "./quality.ts";
 * NotNullCheckSchema.parse({ column: "email", severity: "warn" });
 * ```
 */
export const NotNullCheckSchema: z.ZodObject<
  {
    column: z.ZodString;
    where: z.ZodOptional<z.ZodString>;
    threshold: z.ZodOptional<typeof ThresholdSchema>;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...rowLevel,
  column: identifier.describe("Column that must not be NULL."),
});

/**
 * `unique`: no value (or combination of values) occurs twice; NULLs are ignored.
 *
 * @example
 * ```ts
 * import { UniqueCheckSchema } from "./quality.ts";
 * UniqueCheckSchema.parse({ columns: ["date", "country"] });
 * ```
 */
export const UniqueCheckSchema: z.ZodObject<
  {
    column: z.ZodOptional<z.ZodString>;
    columns: z.ZodOptional<z.ZodArray<z.ZodString>>;
    where: z.ZodOptional<z.ZodString>;
    threshold: z.ZodOptional<typeof ThresholdSchema>;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...rowLevel,
  column: identifier.optional().describe("Column whose values must be unique (or give `columns`)."),
  columns: z.array(identifier).min(1).optional().describe(
    "Columns whose combination must be unique (or give `column`).",
  ),
}).refine((c) => (c.column === undefined) !== (c.columns === undefined), {
  error: "give either column: NAME or columns: [A, B] (not both)",
});

/**
 * `accepted_values`: every non-NULL value is one of `values`.
 *
 * @example
 * ```ts
 * import { AcceptedValuesCheckSchema } from "./quality.ts";
 * AcceptedValuesCheckSchema.parse({ column: "status", values: ["new", "paid"] });
 * ```
 */
export const AcceptedValuesCheckSchema: z.ZodObject<
  {
    column: z.ZodString;
    values: z.ZodArray<z.ZodUnion<readonly [z.ZodString, z.ZodNumber, z.ZodBoolean]>>;
    where: z.ZodOptional<z.ZodString>;
    threshold: z.ZodOptional<typeof ThresholdSchema>;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...rowLevel,
  column: identifier.describe("Column to check."),
  values: z.array(scalar).min(1).describe("The allowed values; NULL passes (use not_null)."),
});

/**
 * `range`: every non-NULL value lies between `min` and `max`.
 *
 * @example
 * ```ts
 * import { RangeCheckSchema } from "./quality.ts";
 * RangeCheckSchema.parse({ column: "unit_price", min: 0, min_inclusive: false });
 * ```
 */
export const RangeCheckSchema: z.ZodObject<
  {
    column: z.ZodString;
    min: z.ZodOptional<z.ZodUnion<readonly [z.ZodNumber, z.ZodString]>>;
    max: z.ZodOptional<z.ZodUnion<readonly [z.ZodNumber, z.ZodString]>>;
    min_inclusive: z.ZodOptional<z.ZodBoolean>;
    max_inclusive: z.ZodOptional<z.ZodBoolean>;
    where: z.ZodOptional<z.ZodString>;
    threshold: z.ZodOptional<typeof ThresholdSchema>;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...rowLevel,
  column: identifier.describe("Column to check."),
  min: bound.optional().describe("Smallest allowed value (a number, or text such as a date)."),
  max: bound.optional().describe("Largest allowed value (a number, or text such as a date)."),
  min_inclusive: z.boolean().optional().describe("Whether `min` itself is allowed. Default true."),
  max_inclusive: z.boolean().optional().describe("Whether `max` itself is allowed. Default true."),
}).refine((c) => c.min !== undefined || c.max !== undefined, {
  error: "needs min, max or both",
});

/**
 * `regex`: every non-NULL value matches `pattern` (RE2; use ^ and $ for a full match).
 *
 * @example
 * ```ts
 * import { RegexCheckSchema } from "./quality.ts";
 * RegexCheckSchema.parse({ column: "country", pattern: "^[A-Z]{2}$" });
 * ```
 */
export const RegexCheckSchema: z.ZodObject<
  {
    column: z.ZodString;
    pattern: z.ZodString;
    where: z.ZodOptional<z.ZodString>;
    threshold: z.ZodOptional<typeof ThresholdSchema>;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...rowLevel,
  column: identifier.describe("Column to check."),
  pattern: z.string().min(1).describe(
    "RE2 regular expression each non-NULL value must contain a match of (anchor with ^...$).",
  ),
});

/**
 * `relationships`: every non-NULL value exists in `to`'s column `field`.
 *
 * @example
 * ```ts
 * import { RelationshipsCheckSchema } from "./quality.ts";
 * RelationshipsCheckSchema.parse({ column: "customer_id", to: "customers" });
 * ```
 */
export const RelationshipsCheckSchema: z.ZodObject<
  {
    column: z.ZodString;
    to: z.ZodString;
    field: z.ZodOptional<z.ZodString>;
    where: z.ZodOptional<z.ZodString>;
    threshold: z.ZodOptional<typeof ThresholdSchema>;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...rowLevel,
  column: identifier.describe("Column whose values must exist in `to`."),
  to: z.string().regex(/^((bronze|silver|gold)\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$/, {
    error: "must name a table, e.g. customers or silver.customers",
  }).describe("Table holding the valid values: `customers` or `silver.customers`."),
  field: identifier.optional().describe("Column of `to`; default the same name as `column`."),
});

/**
 * `expression`: a named SQL boolean that is not false for any row (NULL passes).
 *
 * @example
 * ```ts
 * import { ExpressionCheckSchema } from "./quality.ts";
 * ExpressionCheckSchema.parse({ name: "positive_total", sql: "quantity * unit_price > 0" });
 * ```
 */
export const ExpressionCheckSchema: z.ZodObject<
  {
    name: z.ZodString;
    sql: z.ZodString;
    where: z.ZodOptional<z.ZodString>;
    threshold: z.ZodOptional<typeof ThresholdSchema>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...rowLevel,
  name: identifier.describe("Name of the check (required for expression checks)."),
  sql: z.string().min(1).describe(
    "SQL boolean over a row, e.g. `total >= 0`; rows where it is false fail (NULL passes).",
  ),
});

/**
 * `null_ratio`: at most `max` (0..1) of the rows have NULL in the column.
 *
 * @example
 * ```ts
 * import { NullRatioCheckSchema } from "./quality.ts";
 * NullRatioCheckSchema.parse({ column: "email", max: 0.05 });
 * ```
 */
export const NullRatioCheckSchema: z.ZodObject<
  {
    where: z.ZodOptional<z.ZodString>;
    column: z.ZodString;
    max: z.ZodNumber;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...common,
  where: tableWhere,
  column: identifier.describe("Column whose share of NULLs is checked."),
  max: z.number().min(0).max(1).describe("Largest allowed NULL ratio, 0 to 1 (e.g. 0.05)."),
});

/**
 * `row_count`: bounds on the row count and on its change since the last successful run.
 *
 * @example
 * ```ts
 * import { RowCountCheckSchema } from "./quality.ts";
 * RowCountCheckSchema.parse({ min: 1, max_change_pct: 50 });
 * ```
 */
export const RowCountCheckSchema: z.ZodObject<
  {
    where: z.ZodOptional<z.ZodString>;
    min: z.ZodOptional<z.ZodNumber>;
    max: z.ZodOptional<z.ZodNumber>;
    max_change_pct: z.ZodOptional<z.ZodNumber>;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...common,
  where: tableWhere,
  min: z.number().int().min(0).optional().describe("Fewest rows allowed."),
  max: z.number().int().min(0).optional().describe("Most rows allowed."),
  max_change_pct: z.number().positive().optional().describe(
    "Largest change versus the last successful run, in percent (either direction).",
  ),
}).refine((c) => c.min !== undefined || c.max !== undefined || c.max_change_pct !== undefined, {
  error: "needs min, max or max_change_pct",
});

/**
 * `freshness`: the newest value of a date/time column is at most `max_age` old.
 *
 * @example
 * ```ts
 * import { FreshnessCheckSchema } from "./quality.ts";
 * FreshnessCheckSchema.parse({ column: "order_ts", max_age: "36h" });
 * ```
 */
export const FreshnessCheckSchema: z.ZodObject<
  {
    where: z.ZodOptional<z.ZodString>;
    column: z.ZodString;
    max_age: z.ZodString;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...common,
  where: tableWhere,
  column: identifier.describe("Timestamp or date column; its newest value is checked."),
  max_age: z.string().superRefine((v, ctx) => {
    const problem = durationProblem(v);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  }).describe("Oldest the newest value may be, e.g. `36 hours` or `2 days`."),
});

/**
 * `drift`: a profile figure moved more than allowed versus the median of recent runs.
 *
 * @example
 * ```ts
 * import { DriftCheckSchema } from "./quality.ts";
 * DriftCheckSchema.parse({ metric: "null_ratio", column: "email", max_delta: 0.02 });
 * ```
 */
export const DriftCheckSchema: z.ZodObject<
  {
    metric: z.ZodEnum<
      { row_count: "row_count"; null_ratio: "null_ratio"; distinct_count: "distinct_count" }
    >;
    column: z.ZodOptional<z.ZodString>;
    max_change_pct: z.ZodOptional<z.ZodNumber>;
    max_delta: z.ZodOptional<z.ZodNumber>;
    runs: z.ZodOptional<z.ZodNumber>;
    min_runs: z.ZodOptional<z.ZodNumber>;
    name: z.ZodOptional<z.ZodString>;
    severity: z.ZodOptional<z.ZodEnum<{ error: "error"; warn: "warn" }>>;
    description: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  ...common,
  metric: z.enum(["null_ratio", "row_count", "distinct_count"]).describe(
    "`null_ratio` and `distinct_count` need a column; `row_count` is per table.",
  ),
  column: identifier.optional().describe("Column of `null_ratio` and `distinct_count`."),
  max_change_pct: z.number().positive().optional().describe(
    "Largest relative change versus the median, in percent.",
  ),
  max_delta: z.number().min(0).optional().describe(
    "Largest absolute change versus the median (e.g. 0.02 for null ratios).",
  ),
  runs: z.number().int().min(1).max(1000).optional().describe(
    "Successful runs the median is taken over. Default 7.",
  ),
  min_runs: z.number().int().min(1).max(1000).optional().describe(
    "Fewer successful runs than this in the history: the check passes with a note. Default 3 (at most `runs`).",
  ),
}).superRefine((c, ctx) => {
  if ((c.max_change_pct === undefined) === (c.max_delta === undefined)) {
    ctx.addIssue({
      code: "custom",
      message: "give either max_change_pct (relative) or max_delta (absolute)",
    });
  }
  if (c.metric !== "row_count" && c.column === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["column"],
      message: `metric ${c.metric} needs a column`,
    });
  }
  if (c.metric === "row_count" && c.column !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["column"],
      message: "metric row_count is per table; remove column",
    });
  }
});

/**
 * The check types, in documentation order.
 *
 * @example
 * ```ts
 * import { CHECK_TYPES } from "./quality.ts";
 * CHECK_TYPES.includes("unique"); // true
 * ```
 */
export const CHECK_TYPES = [
  "not_null",
  "unique",
  "accepted_values",
  "range",
  "regex",
  "relationships",
  "row_count",
  "freshness",
  "null_ratio",
  "expression",
  "drift",
] as const;

/** One check type name. */
export type CheckType = (typeof CHECK_TYPES)[number];

const checkItemSchema: z.ZodObject<
  {
    not_null: z.ZodOptional<typeof NotNullCheckSchema>;
    unique: z.ZodOptional<typeof UniqueCheckSchema>;
    accepted_values: z.ZodOptional<typeof AcceptedValuesCheckSchema>;
    range: z.ZodOptional<typeof RangeCheckSchema>;
    regex: z.ZodOptional<typeof RegexCheckSchema>;
    relationships: z.ZodOptional<typeof RelationshipsCheckSchema>;
    row_count: z.ZodOptional<typeof RowCountCheckSchema>;
    freshness: z.ZodOptional<typeof FreshnessCheckSchema>;
    null_ratio: z.ZodOptional<typeof NullRatioCheckSchema>;
    expression: z.ZodOptional<typeof ExpressionCheckSchema>;
    drift: z.ZodOptional<typeof DriftCheckSchema>;
  },
  z.core.$strict
> = z.strictObject({
  not_null: NotNullCheckSchema.optional().describe("Rows where `column` is NULL fail."),
  unique: UniqueCheckSchema.optional().describe("Rows that repeat a value of `column(s)` fail."),
  accepted_values: AcceptedValuesCheckSchema.optional().describe(
    "Rows whose `column` is not one of `values` fail.",
  ),
  range: RangeCheckSchema.optional().describe("Rows whose `column` is outside `min`..`max` fail."),
  regex: RegexCheckSchema.optional().describe("Rows whose `column` does not match `pattern` fail."),
  relationships: RelationshipsCheckSchema.optional().describe(
    "Rows whose `column` has no match in the table `to` fail (a foreign key).",
  ),
  row_count: RowCountCheckSchema.optional().describe(
    "The table's row count must be within `min`/`max` (or `max_change_pct` of the last run).",
  ),
  freshness: FreshnessCheckSchema.optional().describe(
    "The newest value of `column` must be at most `max_age` old.",
  ),
  null_ratio: NullRatioCheckSchema.optional().describe(
    "The share of NULLs in `column` must be at most `max`.",
  ),
  expression: ExpressionCheckSchema.optional().describe("Rows where `sql` is false fail."),
  drift: DriftCheckSchema.optional().describe(
    "A profile figure must not move more than allowed versus the median of recent runs.",
  ),
}).refine((c) => Object.keys(c).filter((k) => c[k as CheckType] !== undefined).length === 1, {
  // An unknown key already got its own "did you mean" problem.
  when: (payload) => payload.issues.length === 0,
  error: `a check is a mapping with exactly one check type as its key (${
    CHECK_TYPES.join(", ")
  }), e.g. - not_null: { column: email }`,
});

/**
 * The zod type of {@linkcode CheckItemSchema} (a strict object schema). It
 * is spelled out by zod, so the documentation shows {@linkcode CheckItem}.
 *
 * @internal
 */
type CheckItemSchemaType = typeof checkItemSchema;

/**
 * One entry of a `checks:` list: a one-key mapping from check type to its settings.
 *
 * @example
 * ```ts
 * import { CheckItemSchema } from "./quality.ts";
 * CheckItemSchema.parse({ unique: { column: "order_id" } });
 * ```
 */
export const CheckItemSchema: CheckItemSchemaType = checkItemSchema;

/**
 * A `checks:` list.
 *
 * @example
 * ```ts
 * import { ChecksSchema } from "./quality.ts";
 * ChecksSchema.parse([{ not_null: { column: "email" } }, { row_count: { min: 1 } }]);
 * ```
 */
export const ChecksSchema: z.ZodArray<typeof checkItemSchema> = z.array(CheckItemSchema);

/**
 * How long quarantine rows are kept.
 *
 * @example
 * ```ts
 * import { QuarantineRetentionSchema } from "./quality.ts";
 * QuarantineRetentionSchema.parse({ runs: 30, days: 90 });
 * ```
 */
export const QuarantineRetentionSchema: z.ZodObject<
  { runs: z.ZodOptional<z.ZodNumber>; days: z.ZodOptional<z.ZodNumber> },
  z.core.$strict
> = z.strictObject({
  runs: z.number().int().min(1).optional().describe(
    "Keep the rows of this many most recent runs (per quarantine table).",
  ),
  days: z.number().int().min(1).optional().describe(
    "Drop rows quarantined more than this many days ago.",
  ),
});

const qualitySchema: z.ZodObject<
  {
    checks: z.ZodDefault<z.ZodBoolean>;
    profiling: z.ZodDefault<z.ZodBoolean>;
    sample_size: z.ZodDefault<z.ZodNumber>;
    quarantine_retention: z.ZodOptional<typeof QuarantineRetentionSchema>;
    payload_max_bytes: z.ZodOptional<z.ZodNumber>;
    scope: z.ZodOptional<z.ZodEnum<{ changed: "changed"; full: "full" }>>;
  },
  z.core.$strict
> = z.strictObject({
  checks: z.boolean().default(true).describe(
    "Run the declared checks in `sluice run`. Default true.",
  ),
  profiling: z.boolean().default(true).describe(
    "Profile every table every run. Default true (tables with drift checks are always profiled).",
  ),
  sample_size: z.number().int().min(0).max(1000).default(5).describe(
    "Failing rows kept per failing check in `_sluice.check_failures`. Default 5.",
  ),
  quarantine_retention: QuarantineRetentionSchema.optional().describe(
    "Pruning of `silver.<table>__quarantine`; default keep everything.",
  ),
  payload_max_bytes: z.number().int().min(64).max(1_000_000_000).optional().describe(
    "Largest copy of a raw row in failing samples, `dlq list` and the report; longer copies " +
      "are cut and say `[capped: N bytes]` (the DLQ and quarantine tables keep it whole). " +
      "Default 16384.",
  ),
  scope: z.enum(["changed", "full"]).optional().describe(
    "Which silver rows `sluice run` checks: `changed` (the rows the run wrote plus the rows that " +
      "failed each check last time; the results equal a full check, and a table or check that " +
      "cannot be proven so is checked in full) or `full` (every row). Default `changed`.",
  ),
});

/**
 * The zod type of {@linkcode QualitySchema} (a strict object schema). It is
 * spelled out by zod, so the documentation shows {@linkcode QualityConfig}.
 *
 * @internal
 */
type QualitySchemaType = typeof qualitySchema;

/**
 * The `quality:` section.
 *
 * @example
 * ```ts
 * import { QualitySchema } from "./quality.ts";
 * QualitySchema.parse({ profiling: false }); // { checks: true, profiling: false, sample_size: 5 }
 * ```
 */
export const QualitySchema: QualitySchemaType = qualitySchema;

/**
 * One entry of a `checks:` list after validation.
 *
 * @example
 * ```ts
 * import type { CheckItem } from "./quality.ts";
 * const check: CheckItem = { not_null: { column: "email", severity: "warn" } };
 * ```
 */
export type CheckItem = ZodOutput<typeof CheckItemSchema>;
/**
 * The `quality:` section after validation.
 *
 * @example
 * ```ts
 * import type { QualityConfig } from "./quality.ts";
 * const quality: QualityConfig = { checks: true, profiling: false, sample_size: 5 };
 * ```
 */
export type QualityConfig = ZodOutput<typeof QualitySchema>;

/**
 * Settings used when a config has no `quality:` section.
 *
 * @example
 * ```ts
 * import { QUALITY_DEFAULTS } from "./quality.ts";
 * QUALITY_DEFAULTS.sample_size; // 5
 * ```
 */
export const QUALITY_DEFAULTS: QualityConfig = {
  checks: true,
  profiling: true,
  sample_size: 5,
};

/** A check with its type, name and severity settled; the rest are its settings. */
export interface CheckSpec {
  /** The check type. */
  type: CheckType;
  /** The check's name (given, or derived from type and columns). */
  name: string;
  /** `error` or `warn`. */
  severity: "error" | "warn";
  /** The columns the check looks at (empty for table-level checks). */
  columns: string[];
  /** The settings as written in the config. */
  settings: Record<string, unknown>;
}

/**
 * Settles one `checks:` entry: its type, its name (given, or `<type>_<columns>`),
 * its severity (default `error`) and the columns it reads.
 *
 * @example
 * ```ts
 * import { checkSpec } from "./quality.ts";
 * checkSpec({ not_null: { column: "email", severity: "warn" } });
 * // { type: "not_null", name: "not_null_email", severity: "warn", columns: ["email"], settings: {...} }
 * ```
 */
export function checkSpec(item: CheckItem): CheckSpec {
  const type = CHECK_TYPES.find((t) => item[t] !== undefined);
  if (type === undefined) throw new TypeError("Cannot read check: it names no check type");
  const settings = item[type] as Record<string, unknown>;
  const columns = typeof settings.column === "string"
    ? [settings.column]
    : Array.isArray(settings.columns)
    ? settings.columns.map(String)
    : [];
  let derived: string = type;
  if (type === "drift") derived = `drift_${settings.metric}`;
  if (columns.length > 0) derived += `_${columns.join("_")}`;
  return {
    type,
    name: typeof settings.name === "string" ? settings.name : derived,
    severity: settings.severity === "warn" ? "warn" : "error",
    columns,
    settings,
  };
}

/**
 * Effective quality settings of a config (defaults when it has no
 * `quality:` section).
 *
 * @example
 * ```ts
 * import { qualitySettings } from "./quality.ts";
 * qualitySettings({}).sample_size; // 5
 * ```
 */
export function qualitySettings(config: { quality?: QualityConfig }): QualityConfig {
  return { ...QUALITY_DEFAULTS, ...(config.quality ?? {}) };
}

/** A problem in the checks of a config, at a key path. */
export interface CheckProblem {
  /** Key path, e.g. `["silver", "orders", "checks", 2, "not_null", "column"]`. */
  path: (string | number)[];
  /** What is wrong. */
  message: string;
}

/**
 * Resolves the `to:` of a `relationships` check: `schema.table` as written,
 * or a bare name looked up in the checked table's layer first (bronze:
 * sources; silver: silver then gold; gold: gold then silver). `null` when
 * no declared table has that name.
 *
 * @example
 * ```ts
 * import { resolveCheckTable } from "./quality.ts";
 * resolveCheckTable({ sources: {}, silver: { customers: {} }, gold: {} }, "silver", "customers");
 * // { schema: "silver", table: "customers" }
 * ```
 */
export function resolveCheckTable(
  declared: { sources: object; silver: object; gold: object },
  layer: string,
  to: string,
): { schema: "bronze" | "silver" | "gold"; table: string } | null {
  const names = (schema: string): object =>
    schema === "bronze" ? declared.sources : schema === "silver" ? declared.silver : declared.gold;
  const dot = to.indexOf(".");
  if (dot > 0) {
    const schema = to.slice(0, dot);
    const table = to.slice(dot + 1);
    if (schema !== "bronze" && schema !== "silver" && schema !== "gold") return null;
    return Object.hasOwn(names(schema), table) ? { schema, table } : null;
  }
  const order = layer === "bronze"
    ? (["bronze"] as const)
    : layer === "gold"
    ? (["gold", "silver"] as const)
    : (["silver", "gold"] as const);
  for (const schema of order) {
    if (Object.hasOwn(names(schema), to)) return { schema, table: to };
  }
  return null;
}

type Hint = (word: string, candidates: readonly string[], label?: string) => string;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Cross-references the checks of a raw (validated or not) config: names
 * unique per table, silver and quarantine check columns declared,
 * `relationships` targets declared, no `drift` on quarantine tables.
 * Tolerates values of the wrong type (the schema reports those).
 *
 * @example
 * ```ts
 * import { checkProblems } from "./quality.ts";
 * checkProblems({ silver: { o: { from: "o", columns: { id: {} },
 *   checks: [{ not_null: { column: "idd" } }] } } }, { hint: () => "" });
 * // [{ path: ["silver", "o", "checks", 0, "not_null", "column"], message: 'column "idd" is not ...' }]
 * ```
 */
export function checkProblems(raw: unknown, options: { hint: Hint }): CheckProblem[] {
  const problems: CheckProblem[] = [];
  if (!isRecord(raw)) return problems;
  const sources = isRecord(raw.sources) ? raw.sources : {};
  const silver = isRecord(raw.silver) ? raw.silver : {};
  const gold = isRecord(raw.gold) ? raw.gold : {};
  const dlqColumns = DLQ_COLUMNS.map(([n]) => n);

  const silverColumns = (name: string): string[] | undefined => {
    const table = silver[name];
    if (!isRecord(table) || !isRecord(table.columns)) return undefined;
    const cols = Object.keys(table.columns);
    return table.mode === "scd2" ? [...cols, "valid_from", "valid_to", "is_current"] : cols;
  };
  const resolveTarget = (layer: string, to: string) =>
    resolveCheckTable({ sources, silver, gold }, layer, to);

  const visit = (
    list: unknown,
    path: (string | number)[],
    layer: string,
    columns: string[] | undefined,
    quarantine: boolean,
  ) => {
    if (!Array.isArray(list)) return;
    const seen = new Map<string, number>();
    list.forEach((item, i) => {
      if (!isRecord(item)) return;
      const keys = Object.keys(item).filter((k) => (CHECK_TYPES as readonly string[]).includes(k));
      if (keys.length !== 1 || !isRecord(item[keys[0]])) return;
      const type = keys[0] as CheckType;
      const settings = item[type] as Record<string, unknown>;
      const at = [...path, i, type];
      let spec: CheckSpec;
      try {
        spec = checkSpec({ [type]: settings } as CheckItem);
      } catch {
        return;
      }
      const earlier = seen.get(spec.name);
      if (earlier !== undefined) {
        problems.push({
          path: typeof settings.name === "string" ? [...at, "name"] : at,
          message: `check name "${spec.name}" is already used by entry ${
            earlier + 1
          } of this list (give one of them another name: NAME)`,
        });
      } else {
        seen.set(spec.name, i);
      }
      if (quarantine && type === "drift") {
        problems.push({
          path: at,
          message: "drift compares table profiles; quarantine tables are not profiled " +
            "(use row_count or expression on quarantine tables)",
        });
      }
      if (columns !== undefined) {
        const label = quarantine ? "quarantine columns" : "columns";
        const checkCol = (col: unknown, p: (string | number)[]) => {
          if (typeof col === "string" && !columns.includes(col)) {
            problems.push({
              path: p,
              message: `column "${col}" is not ${
                quarantine ? "a quarantine table column" : "among the declared columns"
              }${options.hint(col, columns, label)}`,
            });
          }
        };
        checkCol(settings.column, [...at, "column"]);
        if (Array.isArray(settings.columns)) {
          settings.columns.forEach((c, j) => checkCol(c, [...at, "columns", j]));
        }
      }
      if (type === "relationships" && typeof settings.to === "string") {
        const target = resolveTarget(layer, settings.to);
        if (target === null) {
          const names = layer === "bronze"
            ? Object.keys(sources)
            : [...Object.keys(silver), ...Object.keys(gold)];
          const bare = settings.to.includes(".") ? settings.to.split(".")[1] : settings.to;
          problems.push({
            path: [...at, "to"],
            message: `unknown table "${settings.to}"${options.hint(bare, names, "tables")}`,
          });
        } else if (target.schema === "silver") {
          const targetCols = silverColumns(target.table);
          const field = typeof settings.field === "string" ? settings.field : settings.column;
          if (targetCols && typeof field === "string" && !targetCols.includes(field)) {
            problems.push({
              path: [...at, typeof settings.field === "string" ? "field" : "column"],
              message: `column "${field}" is not among the columns of silver.${target.table}` +
                options.hint(field, targetCols, "columns") +
                (typeof settings.field === "string" ? "" : "; name its column with field: NAME"),
            });
          }
        }
      }
    });
  };

  for (const [name, source] of Object.entries(sources)) {
    if (isRecord(source)) {
      visit(source.checks, ["sources", name, "checks"], "bronze", undefined, false);
    }
  }
  for (const [name, table] of Object.entries(silver)) {
    if (!isRecord(table)) continue;
    visit(table.checks, ["silver", name, "checks"], "silver", silverColumns(name), false);
    visit(
      table.quarantine_checks,
      ["silver", name, "quarantine_checks"],
      "silver",
      dlqColumns,
      true,
    );
  }
  for (const [name, model] of Object.entries(gold)) {
    if (isRecord(model)) visit(model.checks, ["gold", name, "checks"], "gold", undefined, false);
  }
  return problems;
}
