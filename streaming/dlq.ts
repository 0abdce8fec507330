/**
 * `sluice dlq list | replay`: one view over every dead-letter table (the
 * stream's DLQ and the batch quarantine tables `silver.<table>__quarantine`,
 * all of the shared schema in `core/dlq.ts`), and replay after a fix.
 *
 * Replay is idempotent: the chosen rows that are not yet replayed are
 * re-injected and marked (`_replayed_at`, `_replay_run_id`) in the same
 * transaction, so replaying twice adds nothing the second time.
 *
 * - Stream DLQ: each payload line is parsed and validated again with the
 *   current config (no lateness check: replay is a deliberate decision).
 *   Rows that now pass are appended to the target as a replay batch (with
 *   its own batch id, exported like any batch) and marked; rows that still
 *   fail stay in the DLQ unmarked. Windows already emitted are not changed.
 * - Batch quarantine: the raw payload is re-inserted into the bronze table
 *   under the replay's run id, so the next silver build picks it up. Tables
 *   in `mode: replace` re-read all of bronze on every run; for them a fixed
 *   config and a new run is the replay, so they are refused here.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { Registry } from "../core/prom.ts";
import { systemClock } from "../core/clock.ts";
import type { PipelineConfig } from "../core/config/mod.ts";
import { DLQ_COLUMNS } from "../core/dlq.ts";
import { openLedgerReplica } from "../core/ledger_replica.ts";
import { parsingConfig } from "../core/config/mod.ts";
import { parseDuration } from "../core/duration.ts";
import type { Engine, SqlParam } from "../core/engine.ts";
import { errorMessage, UsageError } from "../core/errors.ts";
import { ident, literal, qualified } from "../core/quote.ts";
import type { RunContext } from "../core/run_context.ts";
import { capPayloadSql, DEFAULT_PAYLOAD_MAX_BYTES } from "../core/payload.ts";
import { checkSql } from "../core/sql_guard.ts";
import { finishRunRecord, startRunRecord } from "../observability/ledger.ts";
import { classifySql, csvHeaderSql } from "./_sql.ts";
import { ensureStreamTables, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { exportBatches } from "./export.ts";

/** A dead-letter table found in the database. */
export interface DlqTable {
  /** Table name in the `silver` schema. */
  table: string;
  /** `stream` (the configured stream DLQ) or `quarantine` (batch silver quarantine). */
  kind: "stream" | "quarantine";
  /** For quarantine tables, the silver table; for the stream DLQ, the target. */
  of: string;
}

/** Which dead letters to list or replay. */
export interface DlqFilter {
  /** Only this DLQ table (name in `silver`). */
  table?: string;
  /** Only rows refused by this run. */
  runId?: string;
  /** Only these reason codes (comma-separated list accepted by the CLI). */
  reasons?: string[];
  /** A SQL condition over the DLQ columns, e.g. `_source_file LIKE '%2026-06%'`. */
  where?: string;
}

/**
 * The dead-letter tables of a pipeline: every table in `silver` with the
 * shared DLQ columns, classified as the stream DLQ or a quarantine table.
 *
 * @example
 * ```ts ignore
 * await dlqTables(ctx); // [{ table: "events__dlq", kind: "stream", of: "events" }, ...]
 * ```
 */
export async function dlqTables(ctx: RunContext): Promise<DlqTable[]> {
  const names = DLQ_COLUMNS.map(([n]) => n);
  const rows = await ctx.db.all<{ table_name: string } & Record<string, unknown>>(
    `SELECT table_name FROM duckdb_columns() WHERE schema_name = 'silver'
     GROUP BY table_name
     HAVING count(*) FILTER (WHERE list_contains(from_json(${literal(JSON.stringify(names))},
       '["VARCHAR"]'), column_name)) = ${names.length}
     ORDER BY table_name`,
  );
  const s = ctx.config.streaming;
  return rows.map(({ table_name: t }) => {
    if (s !== undefined && t === s.dlq) return { table: t, kind: "stream", of: s.target };
    return { table: t, kind: "quarantine", of: t.replace(/__quarantine$/, "") };
  });
}

/**
 * Checks that `where` is one SQL condition (parsed by DuckDB as a single
 * expression, so `1=1) OR (1=1` is refused) that reads no files; throws a
 * {@linkcode UsageError} otherwise.
 */
async function checkWhere(db: Engine, table: string, where: string): Promise<void> {
  const problems = await checkSql(db, where, { kind: "expression" });
  if (problems.length > 0) {
    throw new UsageError(
      `Cannot use --where ${JSON.stringify(where)}: it must be one SQL condition over the DLQ ` +
        `columns: the SQL ${problems[0].message}`,
    );
  }
  try {
    await db.all(`EXPLAIN SELECT _dlq_id FROM ${qualified("silver", table)} WHERE (${where})`);
  } catch (e) {
    throw new UsageError(
      `Cannot use --where ${JSON.stringify(where)}: ${errorMessage(e).split("\n")[0]}`,
    );
  }
}

async function filterSql(
  db: Engine,
  table: string,
  filter: DlqFilter,
): Promise<{ sql: string; params: Record<string, SqlParam> }> {
  const parts: string[] = ["TRUE"];
  const params: Record<string, SqlParam> = {};
  if (filter.runId !== undefined) {
    parts.push("_run_id = $run_id");
    params.run_id = filter.runId;
  }
  if (filter.reasons !== undefined && filter.reasons.length > 0) {
    parts.push(`list_contains(from_json($reasons, '["VARCHAR"]'), _reason_code)`);
    params.reasons = JSON.stringify(filter.reasons);
  }
  if (filter.where !== undefined) {
    await checkWhere(db, table, filter.where);
    parts.push(`(${filter.where}\n)`);
  }
  return { sql: parts.join(" AND "), params };
}

async function chosenTables(ctx: RunContext, filter: DlqFilter): Promise<DlqTable[]> {
  const tables = await dlqTables(ctx);
  if (filter.table === undefined) return tables;
  const t = tables.find((x) => x.table === filter.table);
  if (t === undefined) {
    throw new UsageError(
      `Cannot find dead-letter table "${filter.table}" (found: ${
        tables.map((x) => x.table).join(", ") || "none yet"
      })`,
    );
  }
  return [t];
}

/** One dead letter as listed. */
export interface DlqEntry extends Record<string, unknown> {
  /** The table it is in. */
  dlq_table: string;
  /** Stable id. */
  _dlq_id: string;
  /** Run that refused it. */
  _run_id: string;
  /** Reason code. */
  _reason_code: string;
  /** Detail. */
  _reason: string | null;
  /** The raw payload. */
  _payload: string | null;
  /** Source file. */
  _source_file: string | null;
  /** Line or row number. */
  _source_row: number | null;
  /** When it was refused. */
  _quarantined_at: Date | null;
  /** When it was replayed, or null. */
  _replayed_at: Date | null;
}

/** What {@linkcode listDlq} returns. */
export interface DlqListing {
  /** Up to `limit` rows, oldest first. */
  rows: DlqEntry[];
  /** Matching rows per table, reason and replay state. */
  counts: { table: string; reason: string; pending: number; replayed: number }[];
  /** All matching rows. */
  total: number;
}

/**
 * Lists dead letters matching a filter across the chosen DLQ tables.
 *
 * @example
 * ```ts ignore
 * const l = await listDlq(ctx, { reasons: ["late"] }, { limit: 20 });
 * l.total; // 1234
 * ```
 */
export async function listDlq(
  ctx: RunContext,
  filter: DlqFilter,
  options: { limit?: number; pendingOnly?: boolean } = {},
): Promise<DlqListing> {
  const out: DlqListing = { rows: [], counts: [], total: 0 };
  const limit = options.limit ?? 50;
  // A listing shows copies of the payloads: capped (the table keeps them whole).
  const maxBytes = ctx.config.quality?.payload_max_bytes ?? DEFAULT_PAYLOAD_MAX_BYTES;
  for (const t of await chosenTables(ctx, filter)) {
    const { sql, params } = await filterSql(ctx.db, t.table, filter);
    const where = options.pendingOnly ? `${sql} AND _replayed_at IS NULL` : sql;
    const table = qualified("silver", t.table);
    const counts = await ctx.db.all<
      { reason: string; pending: number; replayed: number } & Record<string, unknown>
    >(
      `SELECT _reason_code AS reason, count(*) FILTER (WHERE _replayed_at IS NULL) AS pending,
        count(*) FILTER (WHERE _replayed_at IS NOT NULL) AS replayed
       FROM ${table} WHERE ${where} GROUP BY 1 ORDER BY 1`,
      params,
    );
    for (const c of counts) {
      out.counts.push({ table: t.table, ...c });
      out.total += c.pending + c.replayed;
    }
    const room = limit - out.rows.length;
    if (room > 0) {
      const rows = await ctx.db.all<DlqEntry>(
        `SELECT ${literal(t.table)} AS dlq_table, _dlq_id, _run_id, _reason_code, _reason,
          ${capPayloadSql("_payload", maxBytes)} AS _payload,
          _source_file, _source_row, _quarantined_at, _replayed_at
         FROM ${table} WHERE ${where}
         ORDER BY _quarantined_at, _source_file, _source_row LIMIT ${room}`,
        params,
      );
      out.rows.push(...rows);
    }
  }
  return out;
}

/**
 * {@linkcode listDlq} over the ledger replica a running stream writes after
 * each batch (`<lake>/.ledger_replica.duckdb`), for when the stream holds the
 * database. Returns undefined when there is no replica; `at` is when it was
 * written.
 *
 * @example
 * ```ts ignore
 * const r = await listDlqReplica(config, {}, { limit: 20 });
 * const shown = r?.rows.length; // rows of the replica, written at r.at
 * ```
 */
export async function listDlqReplica(
  config: PipelineConfig,
  filter: DlqFilter,
  options: { limit?: number; pendingOnly?: boolean } = {},
): Promise<(DlqListing & { at: Date }) | undefined> {
  const replica = await openLedgerReplica(config);
  if (replica === undefined) return undefined;
  const logger = getLogger(["sluice", "dlq"]);
  logger.warn(
    "the database is held by a running stream; showing the ledger replica as of {at}",
    { event: "ledger_replica_shown", at: replica.at.toISOString(), path: replica.path },
  );
  try {
    const ctx: RunContext = {
      runId: "replica",
      config,
      db: replica.db,
      logger,
      metrics: new Registry(),
      clock: systemClock,
      startedAt: systemClock.now(),
      trigger: "replica",
    };
    return { ...await listDlq(ctx, filter, options), at: replica.at };
  } finally {
    replica.db.close();
  }
}

/** What replaying one DLQ table did. */
export interface ReplayResult {
  /** The DLQ table. */
  table: string;
  /** `stream` or `quarantine`. */
  kind: "stream" | "quarantine";
  /** Not-yet-replayed rows that matched the filter. */
  selected: number;
  /** Rows re-injected and marked replayed. */
  replayed: number;
  /** Rows that still fail (stream DLQ), by reason; they stay in the DLQ. */
  stillFailing: Record<string, number>;
  /** Where the replayed rows went (`silver.events`, `bronze.orders`). */
  into: string;
  /** Replay batch id (stream DLQ), if rows were appended. */
  batchId?: number;
}

/**
 * Replays the chosen dead letters (see the module docs). Rows already
 * replayed are never replayed again.
 *
 * @example
 * ```ts ignore
 * const results = await replayDlq(ctx, { reasons: ["schema_violation"] });
 * results[0].replayed; // 12
 * ```
 */
export async function replayDlq(
  ctx: RunContext,
  filter: DlqFilter,
  options: { dryRun?: boolean } = {},
): Promise<ReplayResult[]> {
  const results: ReplayResult[] = [];
  const tables = await chosenTables(ctx, filter);
  if (!options.dryRun) await startRunRecord(ctx, { command: "dlq_replay" });
  try {
    for (const t of tables) {
      const { sql, params } = await filterSql(ctx.db, t.table, filter);
      const where = `${sql} AND _replayed_at IS NULL`;
      if (t.kind === "stream") results.push(await replayStream(ctx, t, where, params, options));
      else results.push(await replayQuarantine(ctx, t, where, params, options));
    }
  } catch (e) {
    if (!options.dryRun) {
      await finishRunRecord(ctx, { status: "failed", error: errorMessage(e) }).catch(() => {});
    }
    throw e;
  }
  if (!options.dryRun) await finishRunRecord(ctx, { status: "success" });
  const log = getLogger(["sluice", "dlq"]).with({
    run_id: ctx.runId,
    pipeline: ctx.config.pipeline,
  });
  for (const r of results) {
    log.info("dead letters replayed", {
      event: options.dryRun ? "dlq_replay_planned" : "dlq_replayed",
      table: r.table,
      selected: r.selected,
      replayed: r.replayed,
      still_failing: r.stillFailing,
      into: r.into,
      batch_id: r.batchId ?? null,
    });
  }
  return results;
}

async function replayStream(
  ctx: RunContext,
  t: DlqTable,
  where: string,
  params: Record<string, SqlParam>,
  options: { dryRun?: boolean },
): Promise<ReplayResult> {
  const s = parsingConfig(ctx.config.streaming!);
  if ((s.mask ?? []).length > 0) {
    throw new UsageError(
      `Cannot replay ${t.table}: the stream masks ${s.mask!.join(", ")}, so its dead-letter ` +
        "payloads hold *** instead of the values (fix the source files and land them again " +
        "under a new name instead)",
    );
  }
  const db = ctx.db;
  const dlq = qualified("silver", t.table);
  const result: ReplayResult = {
    table: t.table,
    kind: "stream",
    selected: 0,
    replayed: 0,
    stillFailing: {},
    into: `silver.${s.target}`,
  };
  await ensureStreamTables(db);
  const header = s.source.format === "csv" ? csvHeaderSql(s, "f.header") : "NULL::VARCHAR[]";
  const now = ctx.clock.now();
  const committed = await db.transaction(async () => {
    await db.run(
      `CREATE OR REPLACE TEMP TABLE _sluice_replay AS
       SELECT row_number() OVER (ORDER BY d._source_file, d._source_row)::INTEGER AS __seq,
         d._dlq_id AS __dlq_id, d._source_file AS __path, d._source_row AS __line_no,
         d._payload AS __line, ${header} AS __hdr, false AS __bad
       FROM ${dlq} AS d LEFT JOIN _sluice.stream_files AS f
         ON f.stream = ${literal(s.checkpoint)} AND f.path = d._source_file
       WHERE ${where} AND d._payload IS NOT NULL`,
      params,
    );
    await db.run(
      `CREATE OR REPLACE TEMP TABLE _sluice_replayed AS ${
        classifySql(s, { lines: "_sluice_replay", keep: ["__dlq_id", "__path", "__line_no"] })
      }`,
    );
    const counts = await db.all<{ code: string | null; n: number } & Record<string, unknown>>(
      `SELECT __code AS code, count(*) AS n FROM _sluice_replayed GROUP BY 1`,
    );
    for (const { code, n } of counts) {
      result.selected += n;
      if (code === null) result.replayed = n;
      else result.stillFailing[code] = n;
    }
    if (options.dryRun || result.replayed === 0) {
      await db.run(`DROP TABLE _sluice_replayed`);
      await db.run(`DROP TABLE _sluice_replay`);
      return false;
    }
    const cp = await loadCheckpoint(db, s.checkpoint, { runId: ctx.runId, now });
    const batchId = cp.batchId + 1;
    const cols = Object.keys(s.columns).map(ident).join(", ");
    const written = await db.run(
      `INSERT INTO ${qualified("silver", s.target)} BY NAME
       SELECT ${cols}, ${batchId}::BIGINT AS _batch_id, __path AS _source_file,
         __line_no AS _source_line, ${literal(now.toISOString())}::TIMESTAMPTZ AS _ingested_at
       FROM _sluice_replayed WHERE __code IS NULL`,
    );
    const marked = await db.run(
      `UPDATE ${dlq} SET _replayed_at = ${literal(now.toISOString())}::TIMESTAMPTZ,
         _replay_run_id = ${literal(ctx.runId)}
       WHERE _replayed_at IS NULL
         AND _dlq_id IN (SELECT __dlq_id FROM _sluice_replayed WHERE __code IS NULL)`,
    );
    if (written !== result.replayed || marked !== result.replayed) {
      throw new UsageError(
        `Cannot replay ${t.table}: ${result.replayed} rows pass, ${written} appended, ${marked} marked ` +
          "(duplicate _dlq_id values in the DLQ?)",
      );
    }
    await saveCheckpoint(db, s.checkpoint, {
      batchId,
      maxEventTimeUs: cp.maxEventTimeUs,
      watermarkUs: cp.watermarkUs,
      delayMs: parseDuration(s.watermark.delay),
      runId: ctx.runId,
      now,
    });
    await db.run(
      `INSERT INTO _sluice.stream_batches (stream, batch_id, kind, run_id, started_at, committed_at,
        files, files_finished, records_read, written, dead_lettered, blank, by_reason)
       VALUES ($stream, $batch, 'replay', $run_id, $now::TIMESTAMPTZ, $now::TIMESTAMPTZ, 0, 0,
        $read, $written, 0, 0, $by_reason::JSON)`,
      {
        stream: s.checkpoint,
        batch: batchId,
        run_id: ctx.runId,
        now: now.toISOString(),
        read: result.selected,
        written,
        by_reason: JSON.stringify(result.stillFailing),
      },
    );
    await db.run(`DROP TABLE _sluice_replayed`);
    await db.run(`DROP TABLE _sluice_replay`);
    result.batchId = batchId;
    return true;
  });
  if (committed && s.export) {
    const cp = await loadCheckpoint(db, s.checkpoint, { runId: ctx.runId, now });
    await exportBatches(ctx, {
      stream: s.checkpoint,
      exportedBatch: cp.exportedBatch,
      upToBatch: result.batchId!,
    });
  }
  return result;
}

async function replayQuarantine(
  ctx: RunContext,
  t: DlqTable,
  where: string,
  params: Record<string, SqlParam>,
  options: { dryRun?: boolean },
): Promise<ReplayResult> {
  const db = ctx.db;
  const silver = ctx.config.silver[t.of];
  if (silver === undefined) {
    throw new UsageError(
      `Cannot replay ${t.table}: silver table "${t.of}" is not in the config any more`,
    );
  }
  if ((silver.mask ?? []).length > 0) {
    throw new UsageError(
      `Cannot replay ${t.table}: silver table "${t.of}" masks ${
        silver.mask!.join(", ")
      }, so its quarantine payloads hold *** instead of the values (fix the source files and ` +
        "let them be re-landed instead)",
    );
  }
  const result: ReplayResult = {
    table: t.table,
    kind: "quarantine",
    selected: 0,
    replayed: 0,
    stillFailing: {},
    into: `bronze.${silver.from}`,
  };
  const dlq = qualified("silver", t.table);
  const counted = await db.one<{ n: number; replayable: number }>(
    `SELECT count(*) AS n, count(_payload) AS replayable FROM ${dlq} WHERE ${where}`,
    params,
  );
  result.selected = counted?.n ?? 0;
  const noPayload = result.selected - (counted?.replayable ?? 0);
  if (noPayload > 0) result.stillFailing.no_payload = noPayload;
  if (silver.mode === "replace") {
    throw new UsageError(
      `Cannot replay ${t.table}: silver "${t.of}" uses mode: replace and re-reads all of ` +
        `bronze.${silver.from} on every run, so its quarantined rows come back by themselves: fix ` +
        "the config and run `sluice run` again",
    );
  }
  if (options.dryRun || (counted?.replayable ?? 0) === 0) return result;
  const columns = await db.all<
    { column_name: string; data_type: string } & Record<string, unknown>
  >(
    `SELECT column_name, data_type FROM duckdb_columns()
     WHERE schema_name = 'bronze' AND table_name = $t ORDER BY column_index`,
    { t: silver.from },
  );
  const data = columns.filter((c) => !c.column_name.startsWith("_"));
  if (data.length === 0) {
    throw new UsageError(`Cannot replay ${t.table}: bronze.${silver.from} does not exist`);
  }
  const structType = JSON.stringify(
    Object.fromEntries(data.map((c) => [c.column_name, c.data_type])),
  );
  const now = ctx.clock.now().toISOString();
  await db.transaction(async () => {
    const inserted = await db.run(
      `INSERT INTO ${qualified("bronze", silver.from)} BY NAME
       SELECT unnest(__row), ${literal(ctx.runId)} AS _run_id,
         ${literal(now)}::TIMESTAMPTZ AS _ingested_at, _source_file, _source_row
       FROM (SELECT json_transform(_payload, ${literal(structType)}) AS __row, _source_file,
         _source_row FROM ${dlq} WHERE ${where} AND _payload IS NOT NULL)`,
      params,
    );
    const marked = await db.run(
      `UPDATE ${dlq} SET _replayed_at = ${literal(now)}::TIMESTAMPTZ,
         _replay_run_id = ${literal(ctx.runId)}
       WHERE ${where} AND _payload IS NOT NULL`,
      params,
    );
    if (inserted !== marked) {
      throw new UsageError(
        `Cannot replay ${t.table}: ${inserted} rows re-injected but ${marked} marked`,
      );
    }
    result.replayed = inserted;
  });
  return result;
}

/**
 * Formats a DLQ listing as text: counts per table and reason, then rows.
 *
 * @example
 * ```ts ignore
 * const shown = formatDlqListing(await listDlq(ctx, {}));
 * ```
 */
export function formatDlqListing(l: DlqListing): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const lines: string[] = [];
  if (l.total === 0) return "no dead letters match";
  lines.push("table                          reason               pending   replayed");
  for (const c of l.counts) {
    lines.push(
      `${c.table.padEnd(30)} ${c.reason.padEnd(20)} ${n(c.pending).padStart(7)} ${
        n(c.replayed).padStart(10)
      }`,
    );
  }
  lines.push("");
  for (const r of l.rows) {
    const where = `${r._source_file ?? "?"}:${r._source_row ?? "?"}`;
    const payload = (r._payload ?? "").replace(/\s+/g, " ");
    lines.push(
      `${r.dlq_table} ${r._dlq_id.slice(0, 12)} ${r._reason_code}${
        r._replayed_at ? " (replayed)" : ""
      } ` +
        `${where}\n  ${r._reason ?? ""}\n  ${
          payload.length > 160 ? `${payload.slice(0, 157)}...` : payload
        }`,
    );
  }
  if (l.rows.length < l.total) lines.push(`showing ${n(l.rows.length)} of ${n(l.total)} rows`);
  return lines.join("\n");
}

/**
 * Formats replay results as one line per DLQ table.
 *
 * @example
 * ```ts ignore
 * const shown = formatReplayResults(await replayDlq(ctx, {}));
 * ```
 */
export function formatReplayResults(
  results: ReplayResult[],
  options: { dryRun?: boolean } = {},
): string {
  if (results.length === 0) return "no dead-letter tables";
  return results.map((r) => {
    const failing = Object.entries(r.stillFailing).map(([k, v]) => `${k} ${v}`).join(", ");
    const verb = options.dryRun ? "would replay" : "replayed";
    let line = `${r.table}: ${verb} ${r.replayed} of ${r.selected} selected row(s) into ${r.into}`;
    if (failing) line += `; still failing: ${failing} (kept in the DLQ)`;
    if (r.batchId !== undefined) line += ` (replay batch ${r.batchId})`;
    if (r.kind === "quarantine" && r.replayed > 0 && !options.dryRun) {
      line += "; run `sluice run --stages silver,gold,output` to rebuild silver from them";
    }
    return line;
  }).join("\n");
}
