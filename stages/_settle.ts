/**
 * Extract's guard against files still being written: a file modified in
 * the last moments is looked at twice, and when its size or mtime changed
 * between the two looks it is still growing, a transient failure retried
 * with backoff (`run.retries`) until it holds still; then the whole file is
 * landed. A file that never settles fails the run (transient: the next run
 * lands it).
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { retryPolicy } from "../core/config/mod.ts";
import { SourceError } from "../core/errors.ts";
import { withRetry } from "../core/retry.ts";
import type { RunContext } from "../core/run_context.ts";
import { retryReporter } from "../observability/retries.ts";
import type { FileFingerprint } from "./_files.ts";

/** A file whose size or mtime changed between two looks. */
class FileStillWrittenError extends SourceError {
  override readonly transient: boolean = true;
}

/**
 * Waits until every file modified recently (within twice the first retry
 * delay, at least 1 s) keeps its size and mtime between two looks, and
 * updates their fingerprints to what was seen last. Throws a transient
 * `SourceError` for a file still changing after `run.retries.attempts` looks.
 * Returns the files that changed while it looked (their hash, if any, is stale).
 *
 * @example
 * ```ts ignore
 * const moved = await settleFiles(ctx, [...sp.newFiles, ...sp.reingest], log);
 * ```
 */
export async function settleFiles(
  ctx: RunContext,
  files: readonly FileFingerprint[],
  log: Logger,
): Promise<Set<FileFingerprint>> {
  const policy = retryPolicy(ctx.config.run?.retries);
  const windowMs = Math.max(1000, 2 * policy.initialMs);
  const now = ctx.clock.now().getTime();
  const recent = files.filter((f) => Math.abs(now - f.mtimeMs) < windowMs);
  const changed = new Set<FileFingerprint>();
  if (recent.length === 0) return changed;
  const report = retryReporter(log, {
    registry: ctx.metrics,
    pipeline: ctx.config.pipeline,
    label: "source_file",
  });
  await withRetry(
    async (attempt) => {
      // The first look was extract's own stat; each later look follows a backoff.
      if (attempt === 1) {
        await new Promise((r) => setTimeout(r, Math.max(50, policy.initialMs)));
      }
      const moving: string[] = [];
      for (const f of recent) {
        const info = await Deno.stat(f.path);
        const size = info.size;
        const mtimeMs = info.mtime?.getTime() ?? 0;
        if (size !== f.size || mtimeMs !== f.mtimeMs) {
          moving.push(f.rel ?? f.path);
          changed.add(f);
        }
        f.size = size;
        f.mtimeMs = mtimeMs;
      }
      if (moving.length > 0) {
        throw new FileStillWrittenError(
          `Cannot load file ${moving[0]}: it is still being written ` +
            `(its size or mtime changed between two looks)`,
          { context: { files: moving } },
        );
      }
    },
    policy,
    {
      what: "landing files still being written",
      signal: ctx.signal,
      onRetry: report,
    },
  );
  return changed;
}
