/**
 * A read replica of the ledger for the read-only commands while a stream
 * runs. A running `sluice stream` holds the pipeline's DuckDB file (DuckDB
 * locks it per process), so `sluice runs`, `dlq list`, `report` and `files`
 * could not open it (exit 75). After each committed batch (and at start and
 * end) the stream copies the `_sluice` ledger tables and the silver
 * dead-letter tables into `<lake>/.ledger_replica.duckdb`: written to a temp
 * file through `ATTACH` and renamed over the replica, so a reader sees a
 * whole replica or the one before. The readers open it read-only when the
 * database is locked and say which moment it shows.
 *
 * @module
 */
import { join } from "node:path";
import type { PipelineConfig } from "./config/mod.ts";
import { type Engine, openEngine } from "./engine.ts";
import { ident, literal } from "./quote.ts";

const ATTACHED = "_sluice_replica";
const SINCE_MARGIN_MS = 60_000;

/**
 * Where the replica of a pipeline's ledger lives: `<lake>/.ledger_replica.duckdb`.
 *
 * @example
 * ```ts ignore
 * replicaPath(config); // "/data/lake/.ledger_replica.duckdb"
 * ```
 */
export function replicaPath(config: PipelineConfig): string {
  return join(config.lake, ".ledger_replica.duckdb");
}

/** What {@linkcode writeLedgerReplica} copied. */
export interface ReplicaWritten {
  /** Tables copied, schema-qualified. */
  tables: string[];
  /** When it was written (pass it as `since` to the next write). */
  at: Date;
  /** The replica's file. */
  path: string;
}

/**
 * Copies the `_sluice` tables and the silver dead-letter tables (those with
 * a `_dlq_id` column) of `db` into the replica file, atomically (temp file,
 * then rename). Call it outside a transaction.
 *
 * With `since` (the `at` of this process's previous replica, which it wrote
 * itself), the previous file is copied and only dead letters quarantined
 * since then are added: while a stream runs nothing else can change its
 * dead-letter tables (replay and retract need the database), so the cost per
 * batch follows the batch, not the DLQ's size. The `_sluice` tables are
 * copied whole every time.
 *
 * @example
 * ```ts ignore
 * const first = await writeLedgerReplica(ctx.db, ctx.config, { at: ctx.clock.now() });
 * await writeLedgerReplica(ctx.db, ctx.config, { at: ctx.clock.now(), since: first.at });
 * ```
 */
export async function writeLedgerReplica(
  db: Engine,
  config: PipelineConfig,
  options: { at: Date; since?: Date },
): Promise<ReplicaWritten> {
  const path = replicaPath(config);
  const tmp = `${path}.tmp`;
  for (const f of [tmp, `${tmp}.wal`]) await Deno.remove(f).catch(() => {});
  let incremental = options.since !== undefined;
  if (incremental) {
    incremental = await Deno.copyFile(path, tmp).then(() => true, () => false);
  }
  const tables = await db.all<{ schema_name: string; table_name: string }>(
    `SELECT DISTINCT t.schema_name, t.table_name FROM duckdb_tables() AS t
     WHERE t.database_name = current_database() AND NOT t.temporary AND (t.schema_name = '_sluice'
       OR (t.schema_name = 'silver' AND EXISTS (SELECT 1 FROM duckdb_columns() AS c
         WHERE c.database_name = t.database_name AND c.schema_name = t.schema_name
           AND c.table_name = t.table_name AND c.column_name = '_dlq_id')))
     ORDER BY 1, 2`,
  );
  const r = ident(ATTACHED);
  await db.run(`ATTACH ${literal(tmp)} AS ${r}`);
  try {
    for (const schema of ["_sluice", "silver"]) {
      await db.run(`CREATE SCHEMA IF NOT EXISTS ${r}.${ident(schema)}`);
    }
    const have = new Set(
      incremental
        ? (await db.all<{ s: string; t: string }>(
          `SELECT schema_name AS s, table_name AS t FROM duckdb_tables()
           WHERE database_name = ${literal(ATTACHED)}`,
        )).map((x) => `${x.s}.${x.t}`)
        : [],
    );
    for (const t of tables) {
      const from = `${ident(t.schema_name)}.${ident(t.table_name)}`;
      const to = `${r}.${from}`;
      if (t.schema_name === "silver" && have.has(`silver.${t.table_name}`)) {
        // A margin for a wall clock that stepped back; the anti-join drops rows copied before.
        const fromMs = options.since!.getTime() - SINCE_MARGIN_MS;
        const since = `${literal(new Date(fromMs).toISOString())}::TIMESTAMPTZ`;
        await db.run(
          `INSERT INTO ${to} SELECT * FROM ${from} AS d WHERE d._quarantined_at >= ${since}
           AND d._dlq_id NOT IN (SELECT _dlq_id FROM ${to} WHERE _quarantined_at >= ${since})`,
        );
        continue;
      }
      await db.run(`CREATE OR REPLACE TABLE ${to} AS SELECT * FROM ${from}`);
    }
    await db.run(
      `CREATE OR REPLACE TABLE ${r}._sluice.replica_info AS
       SELECT ${literal(options.at.toISOString())}::TIMESTAMPTZ AS written_at`,
    );
  } finally {
    await db.run(`DETACH ${r}`);
  }
  await Deno.rename(tmp, path);
  return { tables: tables.map((t) => `${t.schema_name}.${t.table_name}`), at: options.at, path };
}

/** An opened replica: the read-only database and when it was written. */
export interface OpenedReplica {
  /** The replica, opened read-only. Close it with `db.close()`. */
  db: Engine;
  /** When the stream wrote it. */
  at: Date;
  /** Its file. */
  path: string;
}

/**
 * Opens the ledger replica read-only, or returns undefined when there is none.
 *
 * @example
 * ```ts ignore
 * const r = await openLedgerReplica(config);
 * const asOf = r?.at.toISOString(); // when the replica was written
 * ```
 */
export async function openLedgerReplica(
  config: PipelineConfig,
): Promise<OpenedReplica | undefined> {
  const path = replicaPath(config);
  try {
    await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const db = await openEngine(path, {
    allowedDirectories: [config.lake],
    threads: config.engine.threads,
    readOnly: true,
  });
  try {
    const [info] = await db.all<{ at: string }>(
      "SELECT strftime(written_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%gZ') AS at FROM _sluice.replica_info",
    );
    return { db, at: new Date(info.at), path };
  } catch (e) {
    db.close();
    throw e;
  }
}
