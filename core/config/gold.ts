/**
 * The `gold:` section: schema, and the check that a model does not share a
 * name with a silver table.
 *
 * @module
 */
import { z } from "zod";
import { ChecksSchema } from "./quality.ts";
import type { CheckContext } from "./_check_context.ts";
import { isRecord } from "./_yaml_positions.ts";

/** A gold model: one SELECT over silver and other gold tables. */
export const GoldModelSchema: z.ZodObject<
  {
    sql: z.ZodString;
    description: z.ZodOptional<z.ZodString>;
    checks: z.ZodOptional<typeof ChecksSchema>;
    materialized: z.ZodOptional<z.ZodEnum<{ table: "table"; incremental: "incremental" }>>;
    unique_key: z.ZodOptional<z.ZodUnion<readonly [z.ZodString, z.ZodArray<z.ZodString>]>>;
    partition_by: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  sql: z.string().min(1).describe("The SELECT statement."),
  description: z.string().optional().describe("Free text shown in docs and reports."),
  checks: ChecksSchema.optional().describe(
    "Data-quality checks on the model's table (`core/config/quality.ts`).",
  ),
  materialized: z.enum(["table", "incremental"]).optional().describe(
    "`table` (default) rebuilds the model every run; `incremental` recomputes only the " +
      "keys or partitions this run's silver changes touched.",
  ),
  unique_key: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional()
    .describe(
      "Output column(s) the model is grouped by; an incremental model replaces these keys.",
    ),
  partition_by: z.string().min(1).optional().describe(
    "Output column (e.g. a date) the model is grouped by; an incremental model replaces " +
      "whole partitions.",
  ),
});

/** `gold.*`: a model may not share a name with a silver table. */
export function goldProblems(raw: Record<string, unknown>, ctx: CheckContext): void {
  const silverNames = isRecord(raw.silver) ? Object.keys(raw.silver) : [];
  const gold = isRecord(raw.gold) ? raw.gold : {};
  for (const name of Object.keys(gold)) {
    if (silverNames.includes(name)) {
      ctx.at(
        ["gold", name],
        `gold model "${name}" has the same name as silver table "${name}" ` +
          "(silver and gold share one namespace; rename one)",
        true,
      );
    }
    const model = isRecord(gold[name]) ? gold[name] : {};
    const keyed = model.unique_key !== undefined || model.partition_by !== undefined;
    if (model.materialized === "incremental" && !keyed) {
      ctx.at(
        ["gold", name, "materialized"],
        `gold model "${name}" is incremental but has no unique_key or partition_by ` +
          "(name the output column(s) it is grouped by, or use materialized: table)",
      );
    } else if (model.materialized !== "incremental" && keyed) {
      ctx.at(
        ["gold", name, model.partition_by !== undefined ? "partition_by" : "unique_key"],
        `gold model "${name}" sets ${
          model.partition_by !== undefined ? "partition_by" : "unique_key"
        } ` +
          "but is not incremental (add materialized: incremental, or remove it)",
        true,
      );
    }
  }
}
