/**
 * The end of a batch run's database work: one CHECKPOINT folds the WAL into
 * the database file, except after a no-op run (nothing new landed) whose
 * WAL is still small. A no-op run writes only its ledger rows (about
 * 2.7 kB of WAL); folding them costs about 40 ms of CPU on an idle machine
 * (DuckDB rewrites the touched ledger tables), and DuckDB would fold them
 * again when the database closes. So such a run turns off the checkpoint
 * on close instead and leaves its commits in the WAL, which DuckDB fsyncs
 * at every commit. Replaying the WAL costs every later open about 2 to 3 ms
 * per no-op run left in it, which is why the threshold,
 * {@linkcode SMALL_WAL_BYTES}, is a handful of no-op runs: past it, or at
 * the next run that lands data, the run checkpoints as before.
 *
 * @module
 */
import type { RunContext } from "../core/run_context.ts";

/** WAL size under which a no-op run leaves its commits in the WAL (about 6 no-op runs). */
export const SMALL_WAL_BYTES = 16 * 1024;

/** Size of the database's WAL in bytes (0 when there is none). */
async function walBytes(database: string): Promise<number> {
  try {
    return (await Deno.stat(`${database}.wal`)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/**
 * Checkpoints the database at the end of a run, or, after a no-op run
 * with a small WAL, leaves the WAL as it is (and tells DuckDB not to fold
 * it on close). Returns true when it checkpointed.
 */
export async function finishWal(ctx: RunContext, options: { noop: boolean }): Promise<boolean> {
  const path = ctx.db.path;
  if (options.noop && path !== ":memory:") {
    const bytes = await walBytes(path);
    if (bytes < SMALL_WAL_BYTES) {
      try {
        await ctx.db.run("PRAGMA disable_checkpoint_on_shutdown");
        ctx.logger.getChild("run").debug("checkpoint skipped, the WAL is small", {
          event: "checkpoint_skipped",
          wal_bytes: bytes,
        });
        return false;
      } catch {
        // A DuckDB that refuses the pragma: checkpoint as usual.
      }
    }
  }
  await ctx.db.checkpoint();
  return true;
}
