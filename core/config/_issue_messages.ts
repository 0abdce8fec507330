/**
 * Turns zod issues into positioned problems with helpful messages: the
 * expected type, the closest valid key or value ("did you mean"), and never
 * a `!secret` value.
 *
 * @module
 */
import type { z } from "zod";
import type { ConfigProblem } from "../errors.ts";
import { redactSecrets } from "./_env_secrets.ts";
import { closest, hint, quoted } from "./_hint.ts";
import { validKeys } from "./_schema_walk.ts";
import { dotted, isRecord, pathKey, type Positions } from "./_yaml_positions.ts";

/** What the reader saw of `!secret` values: their paths and resolved values. */
export interface SecretsSeen {
  /** Path keys (`pathKey`) of the `!secret` scalars. */
  readonly secretPaths: ReadonlySet<string>;
  /** Resolved secret values. */
  readonly secrets: readonly string[];
}

function lookup(root: unknown, path: readonly PropertyKey[]): { found: boolean; value: unknown } {
  let value = root;
  for (const segment of path) {
    if (Array.isArray(value) && typeof segment === "number" && segment < value.length) {
      value = value[segment];
    } else if (isRecord(value) && Object.hasOwn(value, String(segment))) {
      value = value[String(segment)];
    } else {
      return { found: false, value: undefined };
    }
  }
  return { found: true, value };
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  object: "a mapping (key: value pairs)",
  record: "a mapping (key: value pairs)",
  array: "a list",
};

/** Turns zod issues into positioned problems with helpful messages. */
export function issueProblems(
  issues: readonly z.core.$ZodIssue[],
  raw: unknown,
  options: { positions: Positions; seen: SecretsSeen },
): ConfigProblem[] {
  const { positions, seen } = options;
  const problems: ConfigProblem[] = [];
  const suggested = suggestedPaths(issues);
  for (const issue of issues) {
    const path = issue.path;
    if (issue.code === "unrecognized_keys") {
      const valid = validKeys(path);
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        problems.push(
          positions.problem(
            positions.get(keyPath)?.key ?? positions.offsetOf(path),
            dotted(keyPath),
            `unknown key "${key}"${hint(key, valid)}`,
          ),
        );
      }
      continue;
    }
    if (issue.code === "invalid_key") {
      const inner = issue.issues[0]?.message ?? issue.message;
      problems.push(
        positions.problem(
          positions.get(path)?.key ?? positions.offsetOf(path),
          dotted(path),
          `invalid name "${String(path.at(-1))}": ${inner}`,
        ),
      );
      continue;
    }
    const { found, value } = lookup(raw, path);
    if (!found && path.length > 0 && isRecord(lookup(raw, path.slice(0, -1)).value)) {
      if (suggested.has(pathKey(path))) continue;
      problems.push(
        positions.problem(positions.offsetOf(path), dotted(path), missingKeyMessage(issue)),
      );
      continue;
    }
    problems.push(
      positions.problem(positions.offsetOf(path), dotted(path), issueMessage(issue, value, seen)),
    );
  }
  return problems;
}

/**
 * Paths a "did you mean" already names: "missing lake" is noise next to
 * "unknown key lakee (did you mean lake?)".
 */
function suggestedPaths(issues: readonly z.core.$ZodIssue[]): Set<string> {
  const suggested = new Set<string>();
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") continue;
    const valid = validKeys(issue.path);
    for (const key of issue.keys) {
      const guess = closest(key, valid);
      if (guess !== undefined) suggested.add(pathKey([...issue.path, guess]));
    }
  }
  return suggested;
}

function missingKeyMessage(issue: z.core.$ZodIssue): string {
  let expected = "";
  if (issue.code === "invalid_type") expected = ` (${EXPECTED[issue.expected] ?? "a value"})`;
  if (issue.code === "invalid_value") {
    expected = ` (one of ${quoted(issue.values.map(String))})`;
  }
  return `missing required key "${String(issue.path.at(-1))}"${expected}`;
}

function issueMessage(issue: z.core.$ZodIssue, value: unknown, seen: SecretsSeen): string {
  const secret = seen.secretPaths.has(pathKey(issue.path));
  const got = describeValue(value, secret, seen.secrets);
  switch (issue.code) {
    case "invalid_type": {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      let extra = "";
      if (issue.expected === "object" && issue.path.length === 0) {
        const needs = `it needs at least ${quoted(["pipeline", "lake", "sources"])}`;
        if (value === null || value === undefined) return `the file is empty (${needs})`;
        extra = ` (${needs})`;
      } else if (issue.expected === "number" || issue.expected === "int") {
        if (typeof value === "string" && !secret && /^\s*[-+]?\d+(\.\d+)?\s*$/.test(value)) {
          extra = " (remove the quotes)";
        } else if (typeof value === "number") {
          extra = " (no fractional part)";
        } else {
          extra = " (write digits without quotes, e.g. 4)";
        }
      } else if (issue.expected === "boolean") {
        extra = " (write true or false without quotes)";
      } else if (issue.expected === "array" && typeof value === "string") {
        extra = secret
          ? " (write a list: [a, b])"
          : ` (write a list: [${redactSecrets(value, seen.secrets)}])`;
      } else if (issue.expected === "string" && typeof value !== "object") {
        extra = " (put it in quotes)";
      } else if (issue.expected === "object" && value === null) {
        const keys = validKeys(issue.path);
        if (keys.length > 0) extra = ` (valid keys: ${quoted(keys)})`;
      }
      return `expected ${expected}, got ${got}${extra}`;
    }
    case "invalid_value": {
      const options = issue.values.map(String);
      const guess = typeof value === "string" && !secret ? closest(value, options) : undefined;
      return `must be one of ${quoted(options)}, got ${got}` +
        (guess !== undefined ? ` (did you mean "${guess}"?)` : "");
    }
    case "too_small": {
      const min = Number(issue.minimum);
      const or = issue.inclusive === false ? "more than" : "at least";
      if (issue.origin === "string") {
        return min <= 1 ? "must not be empty" : `must be ${or} ${min} characters long`;
      }
      if (issue.origin === "array" || issue.origin === "set") {
        return min <= 1 && issue.inclusive !== false
          ? "must list at least one item"
          : `must list ${or} ${min} items`;
      }
      return `must be ${or} ${min}, got ${got}`;
    }
    case "too_big": {
      const max = Number(issue.maximum);
      const or = issue.inclusive === false ? "less than" : "at most";
      if (issue.origin === "string") {
        return `must be ${or} ${max} character${max === 1 ? "" : "s"} long, got ${got}`;
      }
      if (issue.origin === "array" || issue.origin === "set") {
        return `must list ${or} ${max} items`;
      }
      return `must be ${or} ${max}, got ${got}`;
    }
    case "invalid_format": {
      const generic = issue.message.startsWith("Invalid");
      const what = generic ? `must be a valid ${issue.format}` : issue.message;
      return `${what}, got ${got}`;
    }
    default:
      return issue.message;
  }
}

function describeValue(value: unknown, secret: boolean, secrets: readonly string[]): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (secret) return "a secret value (not shown)";
  if (typeof value === "string") {
    const shown = showValue(value, secrets);
    return `string ${shown.length > 80 ? `${shown.slice(0, 77)}..."` : shown}`;
  }
  if (typeof value === "number") return `number ${value}`;
  if (typeof value === "boolean") return `${value}`;
  if (Array.isArray(value)) return "a list";
  return "a mapping";
}

/** A value quoted for a message, with any secret inside it redacted. */
export function showValue(value: string, secrets: readonly string[]): string {
  return JSON.stringify(redactSecrets(value, secrets));
}
