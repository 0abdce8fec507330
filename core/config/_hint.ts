/**
 * "Did you mean" hints: the closest valid word to a typo, or the list of
 * valid words.
 *
 * @module
 */
import { levenshtein } from "../_levenshtein.ts";

/**
 * The candidate closest to `word` by edit distance (ignoring case), or
 * `undefined` when none is close enough to be a likely typo: at most 2 edits
 * (1 for words of up to 3 characters), or at most a third of the word's
 * length for long words, and fewer edits than the word has characters.
 *
 * @example
 * ```ts
 * import { closest } from "./_hint.ts";
 * closest("lakee", ["pipeline", "lake", "engine"]); // "lake"
 * closest("xyz", ["pipeline", "lake", "engine"]); // undefined
 * ```
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const limit = word.length <= 3 ? 1 : Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = levenshtein(lower, candidate.toLowerCase());
    if (d <= limit && d < word.length && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

export function quoted(names: readonly string[]): string {
  return names.join(", ");
}

/** ` (did you mean "x"?)` or ` (valid: a, b)` or `` when there is nothing to list. */
export function hint(word: string, candidates: readonly string[], label = "valid"): string {
  const guess = closest(word, candidates);
  if (guess !== undefined) return ` (did you mean "${guess}"?)`;
  return candidates.length > 0 ? ` (${label}: ${quoted(candidates)})` : "";
}
