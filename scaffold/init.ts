/**
 * `sluice init`: scaffolds a new pipeline project with a commented starter
 * config, its JSON Schema (for editor completion and checking), a landing
 * folder and a `.gitignore` for the lake. The template is embedded here, and
 * the schema generated from the loader's zod schema, so a compiled binary
 * needs no file reads.
 *
 * @module
 */
import { basename, join, resolve } from "node:path";
import { pipelineJsonSchemaText } from "../core/config/mod.ts";
import { UsageError } from "../core/errors.ts";
import { isIdentifier } from "../core/quote.ts";

/**
 * Options of {@linkcode initProject}.
 *
 * @example
 * ```ts
 * import { initProject } from "./init.ts";
 * await initProject("./clicks", { name: "clicks" });
 * ```
 */
export interface InitOptions {
  /** Pipeline name (an identifier); default: derived from the folder name. */
  name?: string;
}

/**
 * Name of the JSON Schema file `sluice init` writes beside `pipeline.yaml`.
 *
 * @example
 * ```ts
 * import { SCHEMA_FILE } from "./init.ts";
 * SCHEMA_FILE; // "pipeline.schema.json"
 * ```
 */
export const SCHEMA_FILE = "pipeline.schema.json";

/**
 * The starter `pipeline.yaml`, with `{{name}}` standing for the pipeline name.
 * Its first line points the YAML language server at {@linkcode SCHEMA_FILE}.
 *
 * @example
 * ```ts
 * import { STARTER_TEMPLATE } from "./init.ts";
 * console.log(STARTER_TEMPLATE.includes("pipeline: {{name}}")); // true
 * ```
 */
export const STARTER_TEMPLATE: string = `# yaml-language-server: $schema=./${SCHEMA_FILE}
# Sluice pipeline "{{name}}".
#
# The line above lets editors with the YAML language server complete and check
# keys against ${SCHEMA_FILE}; after upgrading Sluice, refresh it with
# \`sluice schema > ${SCHEMA_FILE}\`.
#
# Put CSV files with this header into landing/events/:
#
#   event_id,user_id,event_type,occurred_at
#   1,42,Signup,2026-06-01T09:30:00
#
# then run \`sluice run\` in this folder. Paths are relative to this file.
# Layers: bronze = raw rows as text, silver = typed, cleaned and deduplicated,
# gold = SQL models over silver, output = published Parquet.

pipeline: {{name}}

# Database, published tables and spill files live here (see .gitignore).
lake: ./lake

# engine:
#   threads: 4          # default: all cores
#   memory_limit: 2GB   # default: DuckDB's (80% of RAM)

sources:
  events:
    format: csv
    path: ./landing/events
    glob: "*.csv"

silver:
  events:
    from: events
    # Upsert by event_id; the row with the latest occurred_at wins.
    key: [event_id]
    order_by: occurred_at
    mode: merge
    columns:
      event_id: { type: BIGINT, nullable: false }
      user_id: { type: BIGINT }
      event_type: { type: VARCHAR, expr: "lower(trim(event_type))" }
      # Values that do not parse go to quarantine, not to silver.
      occurred_at: { type: TIMESTAMP }
    rules:
      - name: known_user
        sql: user_id is not null

gold:
  daily_events:
    description: Events and distinct users per day and event type.
    sql: |
      select
        cast(occurred_at as date) as day,
        event_type,
        count(*) as events,
        count(distinct user_id) as users
      from events
      group by all
      order by day, event_type

output:
  tables:
    daily_events: {}
`;

/**
 * Renders the starter `pipeline.yaml` for a pipeline name. Throws
 * {@linkcode UsageError} when the name is not an identifier.
 *
 * @example
 * ```ts
 * import { renderStarterConfig } from "./init.ts";
 * const yaml = renderStarterConfig("clicks"); // "... pipeline: clicks ..."
 * ```
 */
export function renderStarterConfig(name: string): string {
  if (!isIdentifier(name)) {
    throw new UsageError(
      `Cannot init: --name must be letters, digits and _, not starting with a digit (got ${
        JSON.stringify(name)
      })`,
    );
  }
  return STARTER_TEMPLATE.replaceAll("{{name}}", name);
}

/** A pipeline name made from a folder name: `my-shop` becomes `my_shop`. */
function nameFromFolder(dir: string): string {
  let name = basename(resolve(dir)).replace(/[^A-Za-z0-9_]/g, "_").slice(0, 63);
  if (/^[0-9]/.test(name)) name = `p_${name}`.slice(0, 63);
  return isIdentifier(name) ? name : "pipeline";
}

/** Writes `text` to `path` unless the file exists; true when written. */
async function writeNew(path: string, text: string): Promise<boolean> {
  try {
    await Deno.writeTextFile(path, text, { createNew: true });
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  }
}

/**
 * Scaffolds a pipeline project in `dir` (created if missing):
 * `pipeline.yaml` (a commented starter config with one CSV source, one
 * silver table, one gold model and its output), `pipeline.schema.json` (the
 * config's JSON Schema, which the config's first line names; rewritten when
 * present), `landing/events/.gitkeep` and a `.gitignore` that ignores `lake/`
 * (appended to an existing one).
 * Refuses, with {@linkcode UsageError}, when `dir/pipeline.yaml` exists.
 * Returns the absolute paths it created or changed.
 *
 * @example
 * ```ts
 * import { initProject } from "./init.ts";
 * const created = await initProject("./my-shop");
 * console.log(created.join("\n"));
 * ```
 */
export async function initProject(dir: string, options: InitOptions = {}): Promise<string[]> {
  const config = renderStarterConfig(options.name ?? nameFromFolder(dir));
  const root = resolve(dir);
  await Deno.mkdir(root, { recursive: true });
  const configPath = join(root, "pipeline.yaml");
  if (!await writeNew(configPath, config)) {
    throw new UsageError(`Cannot init "${dir}": pipeline.yaml already exists`);
  }
  const written = [configPath];

  const schemaPath = join(root, SCHEMA_FILE);
  await Deno.writeTextFile(schemaPath, pipelineJsonSchemaText());
  written.push(schemaPath);

  const landing = join(root, "landing", "events");
  await Deno.mkdir(landing, { recursive: true });
  const keep = join(landing, ".gitkeep");
  if (await writeNew(keep, "")) written.push(keep);

  const gitignore = join(root, ".gitignore");
  if (await writeNew(gitignore, "lake/\n")) {
    written.push(gitignore);
  } else {
    const text = await Deno.readTextFile(gitignore);
    const lines = text.split(/\r?\n/).map((l) => l.trim());
    if (!lines.some((l) => l === "lake/" || l === "/lake/" || l === "lake" || l === "/lake")) {
      const sep = text === "" || text.endsWith("\n") ? "" : "\n";
      await Deno.writeTextFile(gitignore, `${sep}lake/\n`, { append: true });
      written.push(gitignore);
    }
  }
  return written;
}
