/**
 * The one dead-letter schema, shared by batch quarantine tables
 * (`silver.<table>__quarantine`) and streaming dead-letter queues. Every
 * row Sluice refuses lands in a table of this shape, with its reason.
 *
 * @module
 */
import type { Engine } from "./engine.ts";
import { qualified } from "./quote.ts";

/**
 * Columns of a dead-letter table, as `name TYPE` pairs:
 *
 * - `_dlq_id`: stable id of the row (hash of table, file, line/offset), used for idempotent replay
 * - `_run_id`: run that refused the row
 * - `_table`: table the row was meant for
 * - `_reason_code`: `cast_failed`, `null_violation`, `rule_failed`, `malformed_json`,
 *   `schema_violation`, `late`...
 * - `_reason`: detail naming the column and value, or the rule
 * - `_payload`: the raw row (JSON object of raw columns, or the raw line)
 * - `_source_file`, `_source_row` (line number), `_source_offset` (byte offset)
 * - `_event_time`, `_watermark_at_arrival`, `_lateness_seconds`: for late rows
 * - `_quarantined_at`: when it was refused
 * - `_replayed_at`, `_replay_run_id`: set when replayed
 */
export const DLQ_COLUMNS: readonly (readonly [string, string])[] = [
  ["_dlq_id", "VARCHAR"],
  ["_run_id", "VARCHAR"],
  ["_table", "VARCHAR"],
  ["_reason_code", "VARCHAR"],
  ["_reason", "VARCHAR"],
  ["_payload", "VARCHAR"],
  ["_source_file", "VARCHAR"],
  ["_source_row", "BIGINT"],
  ["_source_offset", "BIGINT"],
  ["_event_time", "TIMESTAMPTZ"],
  ["_watermark_at_arrival", "TIMESTAMPTZ"],
  ["_lateness_seconds", "DOUBLE"],
  ["_quarantined_at", "TIMESTAMPTZ"],
  ["_replayed_at", "TIMESTAMPTZ"],
  ["_replay_run_id", "VARCHAR"],
];

/**
 * Creates a dead-letter table `schema.table` if it does not exist.
 *
 * @example
 * ```ts ignore
 * await ensureDlqTable(db, "silver", "orders__quarantine");
 * ```
 */
export async function ensureDlqTable(db: Engine, schema: string, table: string): Promise<void> {
  await db.run(
    `CREATE TABLE IF NOT EXISTS ${qualified(schema, table)} (${
      DLQ_COLUMNS.map(([n, t]) => `${n} ${t}`).join(", ")
    })`,
  );
}
