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
export const GoldModelSchema = z.strictObject({
  sql: z.string().min(1).describe("The SELECT statement."),
  description: z.string().optional().describe("Free text shown in docs and reports."),
  checks: ChecksSchema.optional().describe(
    "Data-quality checks on the model's table (`core/config/quality.ts`).",
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
  }
}
