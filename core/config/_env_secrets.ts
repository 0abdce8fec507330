/**
 * `${VAR}` interpolation and the `!secret` tag of `pipeline.yaml`.
 *
 * @module
 */
import type { ScalarTag } from "yaml";

/** `!secret` marks a scalar whose resolved value must never be shown. */
export const SECRET_TAG: ScalarTag = {
  tag: "!secret",
  default: false,
  resolve: (value: string) => value,
};

const VARIABLE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** Reads an environment variable; the default of `LoadConfigOptions.env`. */
export function defaultEnv(name: string): string | undefined {
  return Deno.env.get(name);
}

/** True for Deno's "no permission" errors. */
export function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied;
}

/**
 * Replaces every occurrence of each secret value (of length 1 or more) in
 * `text` with `***`. Longer secrets are replaced first, so a secret that
 * contains another is hidden whole.
 *
 * @example
 * ```ts
 * import { redactSecrets } from "./_env_secrets.ts";
 * redactSecrets("connect as admin:hunter2", ["hunter2"]); // "connect as admin:***"
 * ```
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  const ordered = [...new Set(secrets)].filter((s) => s.length > 0)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const secret of ordered) out = out.replaceAll(secret, "***");
  return out;
}

/** Plain YAML 1.2 core-schema scalars an interpolated unquoted value may become. */
export function retype(text: string): unknown {
  if (/^(?:true|True|TRUE)$/.test(text)) return true;
  if (/^(?:false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?[0-9]+$/.test(text)) return Number(text);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(text)) {
    return Number(text);
  }
  return text;
}

/** Replaces `${VAR}` references from the environment, reading each variable once. */
export class Interpolator {
  readonly #envCache = new Map<string, { value?: string; denied?: boolean }>();

  constructor(readonly env: (name: string) => string | undefined) {}

  /** Replaces `${VAR}`, `${VAR:-default}` and `$${` in one scalar; problems go to `report`. */
  interpolate(text: string, report: (message: string) => void): string {
    let out = "";
    let i = 0;
    while (i < text.length) {
      const dollar = text.indexOf("$", i);
      if (dollar < 0) {
        out += text.slice(i);
        break;
      }
      out += text.slice(i, dollar);
      if (text.startsWith("$${", dollar)) {
        out += "${";
        i = dollar + 3;
        continue;
      }
      if (!text.startsWith("${", dollar)) {
        out += "$";
        i = dollar + 1;
        continue;
      }
      const end = text.indexOf("}", dollar + 2);
      if (end < 0) {
        report(
          '"${" is not closed by "}" (write ${NAME} or ${NAME:-default}; write $${ for a literal ${)',
        );
        out += text.slice(dollar);
        break;
      }
      const reference = text.slice(dollar + 2, end);
      i = end + 1;
      out += this.#reference(reference, report);
    }
    return out;
  }

  /** The replacement of one `${reference}` (empty when it is a problem). */
  #reference(reference: string, report: (message: string) => void): string {
    const match = VARIABLE.exec(reference);
    if (!match) {
      report(
        `"\${${reference}}" is not a variable reference (write \${NAME} or \${NAME:-default} ` +
          "with a name of letters, digits and _; write $${ for a literal ${)",
      );
      return "";
    }
    const [, name, fallback] = match;
    const found = this.#readEnv(name);
    if (found.denied) {
      report(`environment variable "${name}" is not readable (allow it with --allow-env=${name})`);
    } else if (found.value !== undefined && (found.value !== "" || fallback === undefined)) {
      return found.value;
    } else if (fallback !== undefined) {
      return fallback;
    } else {
      report(`environment variable "${name}" is not set (set it or write \${${name}:-default})`);
    }
    return "";
  }

  #readEnv(name: string): { value?: string; denied?: boolean } {
    let found = this.#envCache.get(name);
    if (found === undefined) {
      try {
        found = { value: this.env(name) };
      } catch (e) {
        if (!isPermissionError(e)) throw e;
        found = { denied: true };
      }
      this.#envCache.set(name, found);
    }
    return found;
  }
}
