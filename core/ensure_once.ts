/**
 * Idempotent DDL (`CREATE TABLE IF NOT EXISTS ...`) run once per
 * connection instead of before every write: a run calls the ledger's and
 * the quality tables' `ensure*` functions about 20 times, 7 statements each.
 *
 * @module
 */
import type { Engine } from "./engine.ts";

/** Per connection, the DDL groups known to be committed. */
const DONE = new WeakMap<Engine, Set<string>>();

/**
 * Runs `create` unless it already ran to the end on this connection outside
 * a transaction (inside one, a rollback could undo it, so it runs again
 * next time).
 *
 * @example
 * ```ts ignore
 * await ensureOnce(db, "ledger", async () => {
 *   await db.run("CREATE TABLE IF NOT EXISTS _sluice.runs (run_id VARCHAR)");
 * });
 * ```
 */
export async function ensureOnce(
  db: Engine,
  key: string,
  create: () => Promise<void>,
): Promise<void> {
  if (DONE.get(db)?.has(key)) return;
  await create();
  if (db.inTransaction()) return;
  const done = DONE.get(db) ?? new Set<string>();
  done.add(key);
  DONE.set(db, done);
}
