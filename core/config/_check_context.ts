/**
 * What every section's semantic check gets: where to put a problem and how
 * to show a value without leaking a secret.
 *
 * @module
 */
import { isAbsolute, relative, sep } from "node:path";
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
