/**
 * The `engine:` section: schema, the check that its files stay in the lake,
 * and their resolution against the lake.
 *
 * @module
 */
import { resolve } from "node:path";
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";
import { type CheckContext, isInside } from "./_check_context.ts";
import { sizeText } from "./_fields.ts";
import { isRecord } from "./_yaml_positions.ts";

/** Engine settings applied to DuckDB before the sandbox is locked. */
export const EngineSchema: z.ZodObject<
  {
    database: z.ZodOptional<z.ZodString>;
    threads: z.ZodOptional<z.ZodNumber>;
    memory_limit: z.ZodOptional<z.ZodString>;
    temp_directory: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  database: z.string().min(1).optional().describe("Database file; default `<lake>/sluice.duckdb`."),
  threads: z.number().int().min(1).max(1024).optional().describe(
    "DuckDB worker threads; default: all cores.",
  ),
  memory_limit: sizeText.optional().describe("DuckDB memory limit, e.g. `2GB`."),
  temp_directory: z.string().min(1).optional().describe("Spill folder; default `<lake>/tmp`."),
});

/** Engine settings after validation, paths not yet resolved. */
export type EngineInput = ZodOutput<typeof EngineSchema>;

/** `engine.database` and `engine.temp_directory` stay inside the lake. */
export function enginePathProblems(raw: Record<string, unknown>, ctx: CheckContext): void {
  const { dir } = ctx;
  const engine = isRecord(raw.engine) ? raw.engine : undefined;
  if (typeof raw.lake !== "string" || raw.lake.length === 0 || !engine) return;
  const lake = resolve(dir, raw.lake);
  for (const key of ["database", "temp_directory"]) {
    const value = engine[key];
    if (typeof value !== "string" || value.length === 0) continue;
    if (!isInside(lake, resolve(dir, value))) {
      const secret = ctx.isSecret(["engine", key]);
      ctx.at(
        ["engine", key],
        `must be inside the lake folder ${ctx.show(lake)}` +
          (secret ? "" : `, got ${ctx.show(resolve(dir, value))}`) +
          " (the DuckDB sandbox only allows the lake and the source folders)",
      );
    }
  }
}

/** Engine settings with absolute `database` and `temp_directory` (defaults in the lake). */
export function resolveEngine(
  engine: EngineInput,
  where: { dir: string; lake: string },
): EngineInput & { database: string; temp_directory: string } {
  const { dir, lake } = where;
  return {
    ...engine,
    database: engine.database === undefined
      ? resolve(lake, "sluice.duckdb")
      : resolve(dir, engine.database),
    temp_directory: engine.temp_directory === undefined
      ? resolve(lake, "tmp")
      : resolve(dir, engine.temp_directory),
  };
}
