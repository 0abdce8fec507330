/**
 * The one place where an error becomes what the user sees and an exit code.
 * Every error is printed once, as one line (a config error: one line per
 * problem), never with a stack frame unless it is a bug.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { CommanderError } from "commander";
import {
  ConfigError,
  errorMessage,
  EXIT,
  formatConfigProblem,
  logFormatInUse,
  redactLogged,
  runFieldsOf,
  SluiceError,
} from "../mod.ts";

/** Deno's permission flag for a `Requires <kind> access to ...` message. */
const PERMISSION_FLAGS: Record<string, string> = {
  env: "--allow-env",
  read: "--allow-read",
  write: "--allow-write",
  net: "--allow-net",
  run: "--allow-run",
  ffi: "--allow-ffi",
  sys: "--allow-sys",
  import: "--allow-import",
};

/**
 * One line for a missing permission: what was refused and the flag that
 * allows it, e.g. `--allow-env=CLICOLOR_FORCE`.
 */
export function permissionLine(message: string): string {
  const m = /Requires (\w+) access to "?([^",]+)"?/.exec(message);
  const flag = m ? PERMISSION_FLAGS[m[1]] : undefined;
  const first = message.split("\n")[0].replace(/, run again with .*$/, "");
  if (!m || !flag) return `sluice: missing permission: ${first}`;
  return `sluice: missing permission: ${first} (add ${flag}=${m[2]} to the deno run command)`;
}

/**
 * Writes an error line to stderr: plain text, or, when the error came out
 * of a run and logs are JSON, a JSON log line (`event: "command_failed"`)
 * carrying the run's id, so every line of a run parses and names its run.
 */
function printError(error: unknown, message: string, fields: Record<string, unknown>): void {
  const run = runFieldsOf(error);
  if (logFormatInUse() === "json" && run !== undefined) {
    getLogger(["sluice", "cli"]).error(message, { ...run, event: "command_failed", ...fields });
  } else {
    console.error(redactLogged(message));
  }
}

/**
 * Prints `error` once and returns the process's exit code.
 *
 * | error | exit |
 * | --- | --- |
 * | help or version shown | 0 |
 * | commander usage error (already printed by commander) | 2 |
 * | `ConfigError` | 2, one line per problem |
 * | `SluiceError` | its `exitCode` |
 * | missing Deno permission | 1, one line naming the flag |
 * | file not found, permission denied, any other OS error (`os error N`) | 1, one line |
 * | anything else (a bug) | 1, `internal error` with the stack |
 */
export function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    return ["commander.version", "commander.helpDisplayed", "commander.help"].includes(error.code)
      ? EXIT.ok
      : EXIT.usage;
  }
  if (error instanceof ConfigError) {
    for (const p of error.problems) {
      printError(error, formatConfigProblem(p), {
        error_kind: error.kind,
        exit_code: error.exitCode,
      });
    }
    return error.exitCode;
  }
  // A skipped run (`on_overlap: skip`) is no failure; its `run_skipped` event was logged.
  if (error instanceof SluiceError && error.exitCode === EXIT.ok) return EXIT.ok;
  if (error instanceof SluiceError) {
    printError(error, `sluice: ${error.message}`, {
      error_kind: error.kind,
      exit_code: error.exitCode,
    });
    return error.exitCode;
  }
  if (error instanceof Deno.errors.NotCapable) {
    printError(error, permissionLine(error.message), {
      error_kind: "permission",
      exit_code: EXIT.failed,
    });
    return EXIT.failed;
  }
  if (
    error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied ||
    // Any other OS error (read-only file system, I/O error...): one line naming the file.
    (error instanceof Error && /\(os error \d+\)/.test(error.message))
  ) {
    printError(error, `sluice: ${errorMessage(error)}`, {
      error_kind: "io",
      exit_code: EXIT.failed,
    });
    return EXIT.failed;
  }
  printError(
    error,
    `sluice: internal error: ${error instanceof Error ? error.stack ?? error.message : error}`,
    { error_kind: "internal", exit_code: EXIT.failed },
  );
  return EXIT.failed;
}
