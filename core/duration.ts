/**
 * Strict durations for config values such as `trigger_interval: "30s"` or
 * `delay: "1 hour"`. A duration is one or more `<number> <unit>` parts
 * (`"90s"`, `"30 minutes"`, `"1h 30m"`, `"500ms"`, `"2.5 hours"`); a bare
 * number, an unknown unit (`"1 hourz"`) or a unit without a number
 * (`"hour"`) is an error that says what would be valid.
 *
 * @module
 */
import { levenshtein } from "./_levenshtein.ts";
import { UsageError } from "./errors.ts";

const MS: Record<string, number> = {
  ms: 1,
  msec: 1,
  msecs: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1_000,
  sec: 1_000,
  secs: 1_000,
  second: 1_000,
  seconds: 1_000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/**
 * The unit words a duration accepts.
 *
 * @example
 * ```ts
 * import { DURATION_UNITS } from "./duration.ts";
 * DURATION_UNITS.includes("minutes"); // true
 * ```
 */
export const DURATION_UNITS: readonly string[] = Object.keys(MS);

const PART = /([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)/y;

function suggestion(unit: string): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of DURATION_UNITS) {
    const d = levenshtein(unit.toLowerCase(), candidate);
    if (d < bestDistance && d <= Math.max(1, Math.floor(unit.length / 3))) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined
    ? ` (did you mean "${best}"?)`
    : " (units: ms, s, m, h, d, w, or words such as seconds, minutes, hours, days)";
}

/**
 * Checks a duration text and returns what is wrong with it, or `undefined`
 * when it is valid. Used by config validation so the problem gets a line
 * and column.
 *
 * @example
 * ```ts
 * import { durationProblem } from "./duration.ts";
 * durationProblem("90s"); // undefined
 * durationProblem("1 hourz"); // 'unknown unit "hourz" in "1 hourz" (did you mean "hour"?)'
 * ```
 */
export function durationProblem(text: string): string | undefined {
  const shown = JSON.stringify(text);
  const trimmed = text.trim();
  if (trimmed === "") return `must be a duration such as "90s", "30 minutes" or "1 hour", got ""`;
  if (/^[0-9]+(\.[0-9]+)?$/.test(trimmed)) {
    return `${shown} has no unit (write e.g. "${trimmed}s" or "${trimmed} minutes")`;
  }
  let pos = 0;
  let parts = 0;
  while (pos < trimmed.length) {
    while (trimmed[pos] === " ") pos++;
    if (pos >= trimmed.length) break;
    PART.lastIndex = pos;
    const m = PART.exec(trimmed);
    if (!m) {
      const rest = trimmed.slice(pos);
      const word = /^[A-Za-z]+/.exec(rest)?.[0];
      if (word !== undefined && parts === 0) {
        return `${shown} needs a number before "${word}" (write e.g. "1 ${word}")`;
      }
      return `${shown} is not a duration: cannot read ${
        JSON.stringify(rest)
      } (write parts like "90s", "30 minutes" or "1h 30m")`;
    }
    const unit = m[2].toLowerCase();
    if (MS[unit] === undefined) {
      return `unknown unit ${JSON.stringify(m[2])} in ${shown}${suggestion(m[2])}`;
    }
    pos = PART.lastIndex;
    parts++;
  }
  return undefined;
}

/**
 * Parses a duration into milliseconds. Throws a {@linkcode UsageError}
 * naming the problem when the text is not a valid duration.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * parseDuration("90s"); // 90000
 * parseDuration("1 hour"); // 3600000
 * parseDuration("1h 30m"); // 5400000
 * parseDuration("500ms"); // 500
 * ```
 */
export function parseDuration(text: string): number {
  const problem = durationProblem(text);
  if (problem !== undefined) throw new UsageError(`Cannot read duration: ${problem}`);
  let total = 0;
  const trimmed = text.trim();
  let pos = 0;
  while (pos < trimmed.length) {
    while (trimmed[pos] === " ") pos++;
    if (pos >= trimmed.length) break;
    PART.lastIndex = pos;
    const m = PART.exec(trimmed)!;
    total += Number(m[1]) * MS[m[2].toLowerCase()];
    pos = PART.lastIndex;
  }
  return Math.round(total);
}

/**
 * Formats milliseconds as a short readable duration: `1h 30m`, `90s` is
 * shown as `1m 30s`, `500ms`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./duration.ts";
 * formatDuration(5_400_000); // "1h 30m"
 * formatDuration(500); // "500ms"
 * ```
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (
    const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], [
      "s",
      1_000,
    ]] as const
  ) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return parts.join(" ");
}
