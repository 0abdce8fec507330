/**
 * What every section's semantic check gets: where to put a problem and how
 * to show a value without leaking a secret.
 *
 * @module
 */
import { isAbsolute, relative, resolve, sep } from "node:path";
import type { Path } from "./_yaml_positions.ts";

/** Where a section check puts its problems, and what it may ask. */
export interface CheckContext {
  /** Adds a problem at the value (or, with `onKey`, the key) of `path`. */
  at(path: Path, message: string, onKey?: boolean): void;
  /** A value quoted for a message, secrets redacted. */
  show(value: string): string;
  /** True when the value at `path` was marked `!secret`. */
  isSecret(path: Path): boolean;
  /** The folder of the config file. */
  dir: string;
}

/** True when `child` is strictly inside `parent`. */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** True when a glob could match outside its folder. */
export function globEscapes(glob: string): boolean {
  return /^[/~\\]/.test(glob) || glob.split(/[/\\]/).includes("..");
}

/**
 * A landing folder (`entry.path`, `entry.glob`) stays inside the project
 * folder unless `entry.allow_outside_project` is true; its glob never
 * reaches outside the folder. `base` is the entry's key path; `pathAt`
 * overrides where a path problem is reported (default `[...base, "path"]`).
 */
export function folderProblems(
  ctx: CheckContext,
  base: Path,
  entry: Record<string, unknown>,
  options: { pathAt?: Path } = {},
): void {
  const { dir } = ctx;
  if (typeof entry.glob === "string" && globEscapes(entry.glob)) {
    ctx.at(
      [...base, "glob"],
      `glob ${ctx.show(entry.glob)} reaches outside the source folder (no "..", no leading ` +
        '"/" or "~"; point path at the folder instead)',
    );
  }
  if (typeof entry.path !== "string" || entry.path.length === 0) return;
  const folder = resolve(dir, entry.path);
  if (entry.allow_outside_project === true || folder === dir || isInside(dir, folder)) return;
  const at = options.pathAt ?? [...base, "path"];
  const secret = ctx.isSecret(at);
  ctx.at(
    at,
    `is outside the project folder ${ctx.show(dir)}` +
      (secret ? "" : ` (resolves to ${ctx.show(folder)})`) +
      "; the DuckDB sandbox would open it to all SQL (move the files into the project, or " +
      `add allow_outside_project: true to ${base.join(".")})`,
  );
}
