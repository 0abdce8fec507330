/**
 * Edit distance for "did you mean" hints. Private to `core/`.
 *
 * @module
 */

/**
 * Levenshtein distance: the number of single-character insertions, deletions
 * and substitutions that turn `a` into `b`.
 *
 * @example
 * ```ts
 * import { levenshtein } from "./_levenshtein.ts";
 * levenshtein("lakee", "lake"); // 1
 * levenshtein("kitten", "sitting"); // 3
 * ```
 */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length];
}
