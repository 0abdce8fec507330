/**
 * The stream's target table `silver.<target>`: the declared columns plus
 * `_batch_id`, `_source_file`, `_source_line` and `_ingested_at`.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { StreamingConfig } from "../core/config/mod.ts";
import { SchemaDriftError } from "../core/errors.ts";
import { ident, qualified, sqlType } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { TARGET_META_COLUMNS } from "./_sql.ts";

/**
 * Creates `silver.<target>` with the declared columns plus `_batch_id`,
 * `_source_file`, `_source_line` and `_ingested_at`, or checks an existing
 * one: declared columns it lacks are added; a column whose type differs is
 * a {@linkcode SchemaDriftError}.
 *
 * @example
 * ```ts ignore
 * await ensureTargetTable(ctx, config.streaming);
 * ```
 */
export async function ensureTargetTable(ctx: RunContext, s: StreamingConfig): Promise<void> {
  const db = ctx.db;
  const table = qualified("silver", s.target);
  const declared: [string, string][] = [
    ...Object.entries(s.columns).map(([n, c]) => [n, sqlType(c.type)] as [string, string]),
    ...TARGET_META_COLUMNS.map(([n, t]) => [n, t] as [string, string]),
  ];
  const existing = await db.all<
    { column_name: string; data_type: string } & Record<string, unknown>
  >(
    `SELECT column_name, data_type FROM duckdb_columns()
     WHERE schema_name = 'silver' AND table_name = $t`,
    { t: s.target },
  );
  if (existing.length === 0) {
    await db.run(
      `CREATE TABLE IF NOT EXISTS ${table} (${
        declared.map(([n, t]) => `${ident(n)} ${t}`).join(", ")
      })`,
    );
    return;
  }
  const have = new Map(existing.map((c) => [c.column_name, c.data_type]));
  const probe = await db.one<Record<string, string>>(
    `SELECT ${declared.map(([_n, t], i) => `typeof(NULL::${t}) AS c${i}`).join(", ")}`,
  );
  for (const [i, [name, type]] of declared.entries()) {
    const current = have.get(name);
    if (current === undefined) {
      await db.run(`ALTER TABLE ${table} ADD COLUMN ${ident(name)} ${type}`);
      getLogger(["sluice", "stream"]).warn("column added to the stream target", {
        run_id: ctx.runId,
        pipeline: ctx.config.pipeline,
        stage: "stream",
        event: "schema_evolved",
        table: s.target,
        column: name,
        type,
      });
    } else if (probe && current !== probe[`c${i}`]) {
      throw new SchemaDriftError(
        `Cannot stream into silver.${s.target}: column "${name}" is ${current} in the table but ` +
          `declared ${type} (change the declared type back, or migrate the table)`,
        { context: { table: s.target, column: name } },
      );
    }
  }
}
