/**
 * Tumbling-window aggregates over a stream, e.g. revenue per 5 minutes per
 * country, written to `gold.<window>` once the watermark passes a window's
 * end. A window is final then: any later row for it is late and goes to the
 * dead-letter queue, so an emitted window never changes.
 *
 * Window state lives in DuckDB: the rows of open windows are the target
 * table's rows with an event time at or after the last emitted window end
 * (`_sluice.stream_windows.emitted_until`). Emission runs inside the batch's
 * transaction, so a restart neither loses nor double-counts a window.
 *
 * @module
 */
import type { StreamingConfig, WindowConfig } from "../core/config/mod.ts";
import { parseDuration } from "../core/duration.ts";
import type { Engine } from "../core/engine.ts";
import { ident, identList, literal, qualified } from "../core/quote.ts";
import { eventTimeSql, usSql } from "./_sql.ts";

/** Schema window tables are written to. */
export const WINDOW_SCHEMA = "gold";

function selectSql(
  s: StreamingConfig,
  w: WindowConfig,
  options: { sizeUs: number; filter: string },
): string {
  const et = eventTimeSql(s.columns[s.watermark.column].type, ident(s.watermark.column));
  const S = `${options.sizeUs}::BIGINT`;
  const bucket = `(epoch_us(${et}) - ((epoch_us(${et}) % ${S}) + ${S}) % ${S})`;
  const groups = w.group_by.length ? `, ${identList(w.group_by)}` : "";
  const aggs = Object.entries(w.aggregates).map(([name, sql]) => `(${sql}) AS ${ident(name)}`);
  return `SELECT make_timestamptz(__bucket) AS window_start,
      make_timestamptz(__bucket + ${S}) AS window_end${groups}, ${aggs.join(", ")}
    FROM (SELECT *, ${bucket} AS __bucket FROM ${
    qualified("silver", s.target)
  } WHERE ${options.filter})
    GROUP BY __bucket${groups}`;
}

/**
 * Creates each window's table (`window_start`, `window_end`, the group-by
 * columns, the aggregates, `_batch_id`, `_emitted_at`) if it does not exist.
 * An aggregate that does not bind is an error naming the window.
 *
 * @example
 * ```ts ignore
 * await ensureWindowTables(ctx.db, config.streaming);
 * ```
 */
export async function ensureWindowTables(db: Engine, s: StreamingConfig): Promise<void> {
  for (const [name, w] of Object.entries(s.windows)) {
    const sizeUs = parseDuration(w.size) * 1000;
    const select = selectSql(s, w, { sizeUs, filter: "false" });
    await db.run(
      `CREATE TABLE IF NOT EXISTS ${qualified(WINDOW_SCHEMA, name)} AS
       SELECT *, NULL::BIGINT AS _batch_id, NULL::TIMESTAMPTZ AS _emitted_at FROM (${select}) LIMIT 0`,
    );
  }
}

/**
 * Emits every window whose end the watermark has passed since the last
 * emission, and moves each window's `emitted_until` mark. Call inside the
 * batch's transaction. Returns the rows emitted per window.
 *
 * @example
 * ```ts ignore
 * const emitted = await emitWindows(db, cfg, { batchId: 9, watermarkUs, now });
 * emitted.revenue_5m; // 12
 * ```
 */
export async function emitWindows(
  db: Engine,
  s: StreamingConfig,
  options: { batchId: number; watermarkUs: number | null; now: Date; stream: string },
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (options.watermarkUs === null) return out;
  for (const [name, w] of Object.entries(s.windows)) {
    const sizeUs = parseDuration(w.size) * 1000;
    const wm = options.watermarkUs;
    const until = wm - (((wm % sizeUs) + sizeUs) % sizeUs);
    const row = await db.one<{ us: number | null } & Record<string, unknown>>(
      `SELECT epoch_us(emitted_until) AS us FROM _sluice.stream_windows
       WHERE stream = $stream AND window_name = $name`,
      { stream: options.stream, name },
    );
    const from = row?.us ?? null;
    if (from !== null && until <= Number(from)) {
      out[name] = 0;
      continue;
    }
    const et = eventTimeSql(s.columns[s.watermark.column].type, ident(s.watermark.column));
    const filter = `${et} < ${usSql(until)}` +
      (from !== null ? ` AND ${et} >= ${usSql(Number(from))}` : "");
    const select = selectSql(s, w, { sizeUs, filter });
    out[name] = await db.run(
      `INSERT INTO ${qualified(WINDOW_SCHEMA, name)} BY NAME
       SELECT *, ${options.batchId}::BIGINT AS _batch_id,
         ${literal(options.now.toISOString())}::TIMESTAMPTZ AS _emitted_at FROM (${select})`,
    );
    if (row === undefined) {
      await db.run(
        `INSERT INTO _sluice.stream_windows VALUES ($stream, $name, make_timestamptz($us::BIGINT))`,
        { stream: options.stream, name, us: until },
      );
    } else {
      await db.run(
        `UPDATE _sluice.stream_windows SET emitted_until = make_timestamptz($us::BIGINT)
         WHERE stream = $stream AND window_name = $name`,
        { stream: options.stream, name, us: until },
      );
    }
  }
  return out;
}
