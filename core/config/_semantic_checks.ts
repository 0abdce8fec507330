/**
 * Runs the checks the schema cannot express (names that refer to each other,
 * paths that must stay in the project or the lake). Each section's check
 * lives in its section file (`silver.ts`, `sources.ts`, ...); this file
 * calls them in file order and adds the one cross-cutting rule: a `!secret`
 * cannot mark a name. Every check is tolerant of values of the wrong type:
 * the schema reports those.
 *
 * @module
 */
import type { ConfigProblem } from "../errors.ts";
import { enginePathProblems } from "./engine.ts";
import { goldProblems } from "./gold.ts";
import { outputProblems } from "./output.ts";
import { checkProblems } from "./quality.ts";
import { silverProblems } from "./silver.ts";
import { sourcePathProblems } from "./sources.ts";
import { streamingFolderProblems } from "./streaming.ts";
import type { CheckContext } from "./_check_context.ts";
import { hint } from "./_hint.ts";
import { type SecretsSeen, showValue } from "./_issue_messages.ts";
import { isNameField } from "./_schema_walk.ts";
import { isRecord, pathKey, type Positions } from "./_yaml_positions.ts";

/** Every semantic problem of the raw config, secrets-as-names last and winning. */
export function semanticProblems(
  raw: unknown,
  options: { dir: string; positions: Positions; seen: SecretsSeen },
): ConfigProblem[] {
  const { positions, seen, dir } = options;
  const problems: ConfigProblem[] = [];
  if (!isRecord(raw)) return problems;
  const ctx: CheckContext = {
    at: (path, message, onKey = false) => problems.push(positions.at(path, message, onKey)),
    show: (value) => showValue(value, seen.secrets),
    isSecret: (path) => seen.secretPaths.has(pathKey(path)),
    dir,
  };
  silverProblems(raw, ctx);
  goldProblems(raw, ctx);
  outputProblems(raw, ctx);
  sourcePathProblems(raw, ctx);
  streamingFolderProblems(raw, ctx);
  enginePathProblems(raw, ctx);
  // Data-quality checks: names, columns and relationships targets.
  for (const p of checkProblems(raw, { hint })) ctx.at(p.path, p.message);
  // A secret cannot be a name: names reach metrics, lineage, reports and
  // the database, where it could not be redacted. This problem replaces
  // any other at the same path (which would only show "***").
  const before = problems.length;
  secretNameProblems(seen, ctx);
  const named = problems.splice(before);
  const namedPaths = new Set(named.map((p) => p.path));
  return [...problems.filter((p) => !namedPaths.has(p.path)), ...named];
}

/** A `!secret` cannot mark a name (names cannot be redacted where they go). */
function secretNameProblems(seen: SecretsSeen, ctx: CheckContext): void {
  for (const key of seen.secretPaths) {
    const path = key.split("\u0000");
    if (!isNameField(path)) continue;
    ctx.at(
      path,
      "!secret cannot mark a name (pipeline, source, table, column, check and stream names " +
        "appear in metrics, lineage, reports and the database); write the name without !secret",
    );
  }
}
