/**
 * The JetStream bookkeeping of one worker's lake (its shard), all in
 * `_sluice`, all written in the batch's transaction:
 *
 * - `jetstream_sequences`: every stream sequence this shard committed
 *   (written, dead-lettered) — the dedup set for redeliveries;
 * - `jetstream_unacked`: ack subjects of committed messages whose ack the
 *   server has not confirmed yet (acked again at the next start);
 * - `jetstream_batches`: one row per committed batch (counts, lag);
 * - `jetstream_state`: the shard's worker id, consumer, ack floor seen and
 *   running totals;
 * - `jetstream_data_loss`: sequence ranges found missing;
 * - `jetstream_claims_lost`: sequences this shard committed but another
 *   worker had claimed first (`claims: kv`), removed from this shard again.
 *
 * The watermark, batch id and export progress live in the shared
 * `_sluice.stream_checkpoint` like every stream's.
 *
 * @module
 */
import type { Engine } from "../../core/engine.ts";
import { qualified } from "../../core/quote.ts";

/** Extra DLQ columns of a JetStream dead letter (beside the shared DLQ schema). */
export const JETSTREAM_DLQ_COLUMNS: readonly (readonly [string, string])[] = [
  ["_js_stream", "VARCHAR"],
  ["_js_seq", "BIGINT"],
  ["_js_subject", "VARCHAR"],
  ["_js_delivery_count", "INTEGER"],
  ["_js_headers", "JSON"],
  ["_js_raw", "BLOB"],
  ["_js_worker", "VARCHAR"],
];

/** Creates the JetStream tables and adds the JetStream columns to the DLQ table. */
export async function ensureJetStreamTables(db: Engine, dlq: string): Promise<void> {
  await db.run(`CREATE SCHEMA IF NOT EXISTS _sluice`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.jetstream_sequences (
    stream VARCHAR, seq BIGINT, batch_id BIGINT, outcome VARCHAR)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.jetstream_unacked (
    stream VARCHAR, seq BIGINT, batch_id BIGINT, reply VARCHAR)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.jetstream_batches (
    stream VARCHAR, batch_id BIGINT, worker VARCHAR, run_id VARCHAR, committed_at TIMESTAMPTZ,
    messages BIGINT, written BIGINT, dead_lettered BIGINT, redelivered_duplicates BIGINT,
    redelivered BIGINT, poison BIGINT, first_seq BIGINT, last_seq BIGINT, num_pending BIGINT,
    duration_ms DOUBLE)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.jetstream_state (
    stream VARCHAR, worker VARCHAR, js_stream VARCHAR, consumer VARCHAR, floor_seen BIGINT,
    max_seq BIGINT, acks BIGINT, redelivered_duplicates BIGINT, data_loss BIGINT,
    num_pending BIGINT, updated_at TIMESTAMPTZ)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.jetstream_claims_lost (
    stream VARCHAR, seq BIGINT, winner VARCHAR, batch_id BIGINT, removed_at TIMESTAMPTZ)`);
  await db.run(`CREATE TABLE IF NOT EXISTS _sluice.jetstream_data_loss (
    stream VARCHAR, worker VARCHAR, from_seq BIGINT, to_seq BIGINT, detected_at TIMESTAMPTZ,
    run_id VARCHAR)`);
  for (const [name, type] of JETSTREAM_DLQ_COLUMNS) {
    await db.run(
      `ALTER TABLE ${qualified("silver", dlq)} ADD COLUMN IF NOT EXISTS ${name} ${type}`,
    );
  }
}

/** The shard's JetStream state. */
export interface ShardState {
  /** Worker id that owns the shard. */
  worker: string | null;
  /** Largest consumer ack floor seen (every sequence up to it was committed somewhere). */
  floorSeen: number | null;
  /** Largest sequence committed in this shard. */
  maxSeq: number;
  /** Confirmed acks so far. */
  acks: number;
  /** Redelivered messages dropped because this shard had them already. */
  redeliveredDuplicates: number;
  /** Messages found missing (fail_on_data_loss: false). */
  dataLoss: number;
}

/** Loads the shard's state (defaults before the first batch). */
export async function loadShardState(db: Engine, stream: string): Promise<ShardState> {
  const row = await db.one<
    {
      worker: string | null;
      floor_seen: number | null;
      max_seq: number | null;
      acks: number | null;
      dups: number | null;
      loss: number | null;
    } & Record<string, unknown>
  >(
    `SELECT worker, floor_seen, max_seq, acks, redelivered_duplicates AS dups, data_loss AS loss
     FROM _sluice.jetstream_state WHERE stream = $stream`,
    { stream },
  );
  return {
    worker: row?.worker ?? null,
    floorSeen: row?.floor_seen === null || row?.floor_seen === undefined
      ? null
      : Number(row.floor_seen),
    maxSeq: Number(row?.max_seq ?? 0),
    acks: Number(row?.acks ?? 0),
    redeliveredDuplicates: Number(row?.dups ?? 0),
    dataLoss: Number(row?.loss ?? 0),
  };
}

/** Writes the shard's state (inside the batch's transaction, or alone). */
export async function saveShardState(
  db: Engine,
  stream: string,
  st: ShardState & { jsStream: string; consumer: string; pending: number; now: Date },
): Promise<void> {
  const values = {
    stream,
    worker: st.worker,
    js: st.jsStream,
    consumer: st.consumer,
    floor: st.floorSeen,
    max: st.maxSeq,
    acks: st.acks,
    dups: st.redeliveredDuplicates,
    loss: st.dataLoss,
    pending: st.pending,
    now: st.now.toISOString(),
  };
  // One row per stream: updated in place (one statement a batch), inserted the first time.
  const changed = await db.run(
    `UPDATE _sluice.jetstream_state SET worker = $worker, js_stream = $js, consumer = $consumer,
      floor_seen = $floor, max_seq = $max, acks = $acks, redelivered_duplicates = $dups,
      data_loss = $loss, num_pending = $pending, updated_at = $now::TIMESTAMPTZ
     WHERE stream = $stream`,
    values,
  );
  if (changed === 0) {
    await db.run(
      `INSERT INTO _sluice.jetstream_state VALUES ($stream, $worker, $js, $consumer, $floor, $max,
        $acks, $dups, $loss, $pending, $now::TIMESTAMPTZ)`,
      values,
    );
  }
}

/** Ack subjects of committed messages whose ack is not confirmed yet. */
export async function loadUnacked(
  db: Engine,
  stream: string,
): Promise<{ seq: number; reply: string }[]> {
  const rows = await db.all<{ seq: number; reply: string } & Record<string, unknown>>(
    `SELECT seq, reply FROM _sluice.jetstream_unacked WHERE stream = $stream ORDER BY seq`,
    { stream },
  );
  return rows.map((r) => ({ seq: Number(r.seq), reply: r.reply }));
}

/** Forgets the ack subjects of batches whose acks the server all confirmed. */
export async function forgetBatches(
  db: Engine,
  stream: string,
  batchIds: readonly number[],
): Promise<void> {
  if (batchIds.length === 0) return;
  const list = batchIds.map((b) => Math.trunc(b)).join(",");
  await db.run(
    `DELETE FROM _sluice.jetstream_unacked WHERE stream = $stream AND batch_id IN (${list})`,
    { stream },
  );
}

/** Forgets the ack subjects whose ack the server confirmed. */
export async function forgetAcked(db: Engine, stream: string, seqs: number[]): Promise<void> {
  if (seqs.length === 0) return;
  const list = seqs.map((s) => Math.trunc(s)).join(",");
  await db.run(
    `DELETE FROM _sluice.jetstream_unacked WHERE stream = $stream AND seq IN (${list})`,
    { stream },
  );
}
