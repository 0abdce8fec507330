/**
 * The `silver:` section: schema, and the checks that `from` names a source
 * and key, order_by and mask name declared columns.
 *
 * @module
 */
import { z } from "zod";
import { ChecksSchema, ThresholdSchema } from "./quality.ts";
import type { CheckContext } from "./_check_context.ts";
import { identifier, sqlTypeName } from "./_fields.ts";
import { hint } from "./_hint.ts";
import { isRecord, type Path } from "./_yaml_positions.ts";

/** One typed silver column. */
export const SilverColumnSchema: z.ZodObject<
  {
    type: z.ZodString;
    from: z.ZodOptional<z.ZodString>;
    expr: z.ZodOptional<z.ZodString>;
    nullable: z.ZodDefault<z.ZodBoolean>;
    format: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  type: sqlTypeName.describe("DuckDB type to cast to; a value that fails its cast is quarantined."),
  from: z.string().min(1).optional().describe("Bronze column to read; default: the same name."),
  expr: z.string().min(1).optional().describe(
    "Normalisation expression over bronze columns, e.g. `upper(trim(country))`.",
  ),
  nullable: z.boolean().default(true).describe(
    "When false, a null value sends the row to quarantine. Default true.",
  ),
  format: z.string().min(1).optional().describe(
    "Date/time format for DATE and TIMESTAMP columns (strptime), e.g. `%d/%m/%Y`.",
  ),
});

/** A named validation rule: a SQL boolean that must hold for a row to pass. */
export const RuleSchema: z.ZodObject<{ name: z.ZodString; sql: z.ZodString }, z.core.$strict> = z
  .strictObject({
    name: identifier.describe("Rule name, shown in the quarantine reason of the rows it rejects."),
    sql: z.string().min(1).describe(
      "SQL boolean over the row's typed columns, e.g. `total >= 0`; rows where it is false go to quarantine.",
    ),
  });

/** A silver table: typed, cleaned and deduplicated rows of one source. */
export const SilverTableSchema: z.ZodObject<
  {
    from: z.ZodString;
    columns: z.ZodRecord<z.ZodString, typeof SilverColumnSchema>;
    key: z.ZodOptional<z.ZodArray<z.ZodString>>;
    order_by: z.ZodOptional<z.ZodString>;
    rules: z.ZodDefault<z.ZodArray<typeof RuleSchema>>;
    mode: z.ZodDefault<
      z.ZodEnum<{ replace: "replace"; append: "append"; merge: "merge"; scd2: "scd2" }>
    >;
    checks: z.ZodOptional<typeof ChecksSchema>;
    quarantine_checks: z.ZodOptional<typeof ChecksSchema>;
    mask: z.ZodOptional<z.ZodArray<z.ZodString>>;
    max_quarantine: z.ZodDefault<typeof ThresholdSchema>;
  },
  z.core.$strict
> = z.strictObject({
  from: identifier.describe("Source (bronze table) to read."),
  columns: z.record(identifier, SilverColumnSchema).refine((c) => Object.keys(c).length > 0, {
    error: "needs at least one column",
  }).describe("Typed columns, in output order."),
  key: z.array(identifier).min(1).optional().describe("Key columns for dedup, merge and scd2."),
  order_by: identifier.optional().describe(
    "Column deciding which duplicate is the latest (largest wins).",
  ),
  rules: z.array(RuleSchema).default([]).describe(
    "Named row rules; failing rows go to quarantine with the rule's name.",
  ),
  mode: z.enum(["replace", "append", "merge", "scd2"]).default("replace").describe(
    "replace, append, merge (upsert by key) or scd2.",
  ),
  checks: ChecksSchema.optional().describe(
    "Data-quality checks on the table (`core/config/quality.ts`).",
  ),
  quarantine_checks: ChecksSchema.optional().describe(
    "Data-quality checks on the rows this run sent to `<table>__quarantine`.",
  ),
  mask: z.array(identifier).optional().describe(
    "Columns whose values are shown as `***` in failing-row samples, quarantine payloads and " +
      "reasons, and the report (e.g. `[email, phone]`). The table itself keeps the values.",
  ),
  max_quarantine: ThresholdSchema.default("10%").describe(
    'Quarantine budget per run: rows (25) or a share of the rows in ("5%"). More fails the ' +
      "quality gate (nothing is published, exit 3); any quarantined row is a warning. " +
      'Default "10%".',
  ),
});

/** `silver.*`: `from` names a source; key/order_by/mask name declared columns. */
export function silverProblems(raw: Record<string, unknown>, ctx: CheckContext): void {
  const sources = isRecord(raw.sources) ? Object.keys(raw.sources) : [];
  const silver = isRecord(raw.silver) ? raw.silver : {};
  for (const [name, table] of Object.entries(silver)) {
    if (!isRecord(table)) continue;
    const base = ["silver", name];
    if (typeof table.from === "string" && !sources.includes(table.from)) {
      ctx.at(
        [...base, "from"],
        `unknown source ${ctx.show(table.from)}${hint(table.from, sources, "declared sources")}`,
      );
    }
    const columns = isRecord(table.columns) ? Object.keys(table.columns) : undefined;
    if (columns !== undefined && columns.length > 0) {
      const checkColumn = (column: unknown, path: Path, role: string) => {
        if (typeof column === "string" && !columns.includes(column)) {
          ctx.at(
            path,
            `${role} column ${ctx.show(column)} is not among the declared columns` +
              hint(column, columns, "columns"),
          );
        }
      };
      if (Array.isArray(table.key)) {
        table.key.forEach((c, i) => checkColumn(c, [...base, "key", i], "key"));
      }
      checkColumn(table.order_by, [...base, "order_by"], "order_by");
      if (Array.isArray(table.mask)) {
        table.mask.forEach((c, i) => checkColumn(c, [...base, "mask", i], "mask"));
      }
    }
    const mode = table.mode;
    if ((mode === "merge" || mode === "scd2") && table.key === undefined) {
      ctx.at(
        [...base, "mode"],
        `mode ${mode} needs a key (add key: [column, ...] naming the columns that identify a row)`,
      );
    }
    if (table.order_by !== undefined && table.key === undefined) {
      ctx.at(
        [...base, "order_by"],
        "order_by needs a key (it picks the latest row among rows with the same key; " +
          "add key: [column, ...] or remove order_by)",
      );
    }
  }
}
