/**
 * Options that every command running on a pipeline's database shares, and
 * how they become `withRun` options.
 *
 * @module
 */
import { type Command, Option } from "commander";
import { parseDuration, UsageError, type WithRunOptions } from "../mod.ts";

/** The run options a command may take on its command line. */
export interface RunFlags {
  /** `--run-id`. */
  runId?: string;
  /** `--trigger` (batch run only). */
  trigger?: string;
  /** `--on-overlap` (run, stream). */
  onOverlap?: "fail" | "skip" | "wait";
  /** `--max-runtime` (run, stream), a duration. */
  maxRuntime?: string;
  /** `--wait-timeout` (run, stream), a duration. */
  waitTimeout?: string;
}

/** Adds `--on-overlap`, `--wait-timeout` and `--max-runtime` to a command. */
export function withRunPolicyOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        "--on-overlap <policy>",
        "when another run holds the pipeline: fail (exit 75), skip (exit 0) or wait " +
          "(default run.on_overlap, else fail)",
      ).choices(["fail", "skip", "wait"]),
    )
    .option(
      "--wait-timeout <duration>",
      "with --on-overlap wait: wait this long, then exit 75 (default run.wait_timeout, 1h)",
    )
    .option(
      "--max-runtime <duration>",
      "stop past this time, publish nothing new, exit 124 (default run.max_runtime)",
    );
}

function durationFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (e) {
    throw new UsageError(`Cannot use ${name} ${value}: ${(e as Error).message}`);
  }
  if (ms <= 0) throw new UsageError(`Cannot use ${name} ${value}: must be longer than zero`);
  return ms;
}

/** Adds `--run-id` to a command. */
export function withRunIdOption(command: Command): Command {
  return command.option("--run-id <id>", "use this run id instead of a new UUIDv7");
}

/** The `withRun` options from a command's flags. */
export function runOptions(
  kind: NonNullable<WithRunOptions["kind"]>,
  flags: RunFlags,
): WithRunOptions {
  return {
    kind,
    runId: flags.runId,
    trigger: flags.trigger ?? "cli",
    handleSignals: true,
    onOverlap: flags.onOverlap,
    waitTimeoutMs: durationFlag("--wait-timeout", flags.waitTimeout),
    maxRuntimeMs: durationFlag("--max-runtime", flags.maxRuntime),
  };
}
