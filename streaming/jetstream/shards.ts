/**
 * The shards of a JetStream stream as one: each worker's lake is a shard
 * (its own DuckDB file); {@linkcode summarizeShards} merges their ledgers
 * and watermarks into one view (messages in, committed, dead-lettered,
 * duplicates dropped, consumer lag, per worker, and sequences committed in
 * more than one shard), and {@linkcode exportShards} writes every shard's
 * target as hive-partitioned zstd Parquet (`worker=…/date=…/part-….parquet`)
 * that DuckDB, Spark, Trino or Polars read as one dataset.
 *
 * A shard is read while its worker is stopped (DuckDB lets one process open
 * a database file), or from a copy of the file.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import type { PipelineConfig } from "../../core/config/mod.ts";
import { isJetStreaming } from "../../core/config/mod.ts";
import { type Engine, openEngine } from "../../core/engine.ts";
import { ConservationError, UsageError } from "../../core/errors.ts";
import { ident, literal, qualified } from "../../core/quote.ts";
import { eventTimeOf } from "../_sql.ts";
import { parsingConfig } from "../../core/config/mod.ts";

/** One shard (one worker's lake) of a JetStream stream. */
export interface ShardView {
  /** Worker id that wrote it. */
  worker: string;
  /** Its database file. */
  database: string;
  /** Batches committed. */
  batches: number;
  /** Messages pulled (redelivered duplicates included). */
  received: number;
  /** Rows in the target. */
  committed: number;
  /** Dead letters. */
  deadLettered: number;
  /** Dead letters by reason. */
  byReason: Record<string, number>;
  /** Redelivered messages dropped because the shard had committed them. */
  redeliveredDuplicates: number;
  /** Acks the server confirmed. */
  acks: number;
  /** Committed messages whose ack is not confirmed yet. */
  unacked: number;
  /**
   * Messages this shard committed but another worker had claimed first
   * (`claims: kv`), removed from this shard again (`_sluice.jetstream_claims_lost`).
   */
  claimsLost: number;
  /** Messages found missing (fail_on_data_loss: false). */
  dataLoss: number;
  /** Consumer lag (`num_pending`) at the worker's last look. */
  pending: number;
  /** Largest stream sequence committed. */
  maxSeq: number;
  /** The shard's watermark, or null. */
  watermark: Date | null;
  /** Last commit, or null. */
  lastCommitAt: Date | null;
}

/** All shards of a stream as one. */
export interface ShardsView {
  /** Checkpoint name. */
  stream: string;
  /** Per shard, in the order given. */
  shards: ShardView[];
  /** Sums over the shards. */
  totals: {
    received: number;
    committed: number;
    deadLettered: number;
    redeliveredDuplicates: number;
    claimsLost: number;
    dataLoss: number;
  };
  /** Stream sequences committed in more than one shard (0 when exactly once held). */
  crossShardDuplicates: number;
  /** The lowest shard watermark: every shard's event time is past it. */
  watermark: Date | null;
  /** The latest consumer lag seen by any worker. */
  pending: number;
}

function jetstreamSection(config: PipelineConfig) {
  const s = config.streaming;
  if (!isJetStreaming(s)) {
    throw new UsageError(
      `Cannot merge shards of pipeline "${config.pipeline}": its streaming.source is not ` +
        "type: jetstream",
    );
  }
  return s;
}

async function openShard(database: string, extra: string[] = []): Promise<Engine> {
  const path = resolve(database);
  try {
    await Deno.stat(path);
  } catch {
    throw new UsageError(`Cannot read shard ${path}: no such database file`);
  }
  return await openEngine(path, { allowedDirectories: [dirname(path), ...extra] });
}

async function has(db: Engine, schema: string, table: string): Promise<boolean> {
  const row = await db.one(
    `SELECT 1 AS x FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t`,
    { s: schema, t: table },
  );
  return row !== undefined;
}

/**
 * Reads each shard (a worker's DuckDB file) and merges them into one view.
 *
 * @example
 * ```ts ignore
 * const view = await summarizeShards(config, { shards: ["w1/sluice.duckdb", "w2/sluice.duckdb"] });
 * view.totals.committed; // 199000
 * ```
 */
export async function summarizeShards(
  config: PipelineConfig,
  options: { shards: string[] },
): Promise<ShardsView> {
  const s = jetstreamSection(config);
  const stream = s.checkpoint;
  if (options.shards.length === 0) throw new UsageError("Cannot merge shards: none given");
  const shards: ShardView[] = [];
  const owner = new Map<number, number>();
  let crossShardDuplicates = 0;
  for (const database of options.shards) {
    const db = await openShard(database);
    try {
      if (!await has(db, "_sluice", "jetstream_state") || !await has(db, "silver", s.target)) {
        throw new UsageError(`Cannot read shard ${database}: no JetStream worker wrote to it`);
      }
      const st = await db.one<Record<string, unknown>>(
        `SELECT worker, acks, redelivered_duplicates, data_loss, num_pending, max_seq
         FROM _sluice.jetstream_state WHERE stream = $stream`,
        { stream },
      );
      if (st === undefined) {
        throw new UsageError(`Cannot read shard ${database}: it has no stream "${stream}"`);
      }
      const b = await db.one<Record<string, unknown>>(
        `SELECT count(*) AS batches, coalesce(sum(messages), 0) AS received,
           max(committed_at) AS last FROM _sluice.jetstream_batches WHERE stream = $stream`,
        { stream },
      );
      const cp = await db.one<Record<string, unknown>>(
        `SELECT watermark FROM _sluice.stream_checkpoint WHERE stream = $stream`,
        { stream },
      );
      const committed = await db.one<{ n: number }>(
        `SELECT count(*) AS n FROM ${qualified("silver", s.target)}`,
      );
      const reasons = await db.all<{ r: string; n: number }>(
        `SELECT _reason_code AS r, count(*) AS n FROM ${qualified("silver", s.dlq)} GROUP BY 1`,
      );
      const unacked = await db.one<{ n: number }>(
        `SELECT count(*) AS n FROM _sluice.jetstream_unacked WHERE stream = $stream`,
        { stream },
      );
      const lost = await has(db, "_sluice", "jetstream_claims_lost")
        ? await db.one<{ n: number }>(
          `SELECT count(DISTINCT seq) AS n FROM _sluice.jetstream_claims_lost
           WHERE stream = $stream`,
          { stream },
        )
        : undefined;
      const seqs = await db.all<{ seq: number }>(
        `SELECT seq FROM _sluice.jetstream_sequences WHERE stream = $stream`,
        { stream },
      );
      const index = shards.length;
      for (const { seq } of seqs) {
        const n = Number(seq);
        const first = owner.get(n);
        if (first === undefined) owner.set(n, index);
        else if (first !== index) crossShardDuplicates++;
      }
      const byReason: Record<string, number> = {};
      for (const { r, n } of reasons) byReason[r] = Number(n);
      const toDate = (v: unknown) => (v === null || v === undefined ? null : new Date(String(v)));
      shards.push({
        worker: String(st.worker),
        database: resolve(database),
        batches: Number(b?.batches ?? 0),
        received: Number(b?.received ?? 0),
        committed: Number(committed?.n ?? 0),
        deadLettered: Object.values(byReason).reduce((a, c) => a + c, 0),
        byReason,
        redeliveredDuplicates: Number(st.redelivered_duplicates ?? 0),
        acks: Number(st.acks ?? 0),
        unacked: Number(unacked?.n ?? 0),
        claimsLost: Number(lost?.n ?? 0),
        dataLoss: Number(st.data_loss ?? 0),
        pending: Number(st.num_pending ?? 0),
        maxSeq: Number(st.max_seq ?? 0),
        watermark: toDate(cp?.watermark),
        lastCommitAt: toDate(b?.last),
      });
    } finally {
      db.close();
    }
  }
  const sum = (f: (v: ShardView) => number) => shards.reduce((a, v) => a + f(v), 0);
  const marks = shards.map((v) => v.watermark).filter((w): w is Date => w !== null);
  const latest = shards.reduce<ShardView | undefined>(
    (a, v) => (a === undefined || (v.lastCommitAt ?? 0) > (a.lastCommitAt ?? 0) ? v : a),
    undefined,
  );
  return {
    stream,
    shards,
    totals: {
      received: sum((v) => v.received),
      committed: sum((v) => v.committed),
      deadLettered: sum((v) => v.deadLettered),
      redeliveredDuplicates: sum((v) => v.redeliveredDuplicates),
      claimsLost: sum((v) => v.claimsLost),
      dataLoss: sum((v) => v.dataLoss),
    },
    crossShardDuplicates,
    watermark: marks.length === 0 ? null : new Date(Math.min(...marks.map((d) => d.getTime()))),
    pending: latest?.pending ?? 0,
  };
}

/**
 * Formats the merged view as a table per worker and a total line.
 *
 * @example
 * ```ts ignore
 * const shown = formatShardsView(await summarizeShards(config, { shards }));
 * ```
 */
export function formatShardsView(view: ShardsView): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const head = [
    "worker",
    "batches",
    "received",
    "committed",
    "dlq",
    "dup dropped",
    "claims lost",
    "unacked",
    "lag",
  ];
  const rows = view.shards.map((v) => [
    v.worker,
    n(v.batches),
    n(v.received),
    n(v.committed),
    n(v.deadLettered),
    n(v.redeliveredDuplicates),
    n(v.claimsLost),
    n(v.unacked),
    n(v.pending),
  ]);
  const t = view.totals;
  rows.push([
    "total",
    "",
    n(t.received),
    n(t.committed),
    n(t.deadLettered),
    n(t.redeliveredDuplicates),
    n(t.claimsLost),
    "",
    n(view.pending),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [
    `stream ${view.stream}: ${view.shards.length} shard(s), watermark ${
      view.watermark?.toISOString() ?? "none yet"
    }`,
    line(head),
    ...rows.map(line),
    `sequences committed in more than one shard: ${n(view.crossShardDuplicates)}` +
    (t.dataLoss > 0 ? `; data loss: ${n(t.dataLoss)} message(s)` : ""),
  ].join("\n");
}

/** What {@linkcode exportShards} wrote. */
export interface ShardExportResult {
  /** Output folder. */
  out: string;
  /** Rows written per worker. */
  rows: Record<string, number>;
  /** Parquet files written. */
  files: number;
  /**
   * Rows left out because the same stream sequence was committed in another
   * shard earlier (kept once, from the shard that committed it first).
   */
  crossShardDuplicatesDropped: number;
}

/**
 * The stream sequences each shard must leave out of an export: a sequence
 * committed in several shards is kept in the one that committed it first
 * (then the lowest worker id).
 */
async function losers(shards: string[], stream: string): Promise<Map<string, number[]>> {
  const firstShard = new Map<number, number>();
  const dups = new Set<number>();
  for (const [i, database] of shards.entries()) {
    const db = await openShard(database);
    try {
      const seqs = await db.all<{ seq: number }>(
        `SELECT seq FROM _sluice.jetstream_sequences WHERE stream = $stream`,
        { stream },
      );
      for (const { seq } of seqs) {
        const n = Number(seq);
        if (firstShard.has(n) && firstShard.get(n) !== i) dups.add(n);
        else firstShard.set(n, i);
      }
    } finally {
      db.close();
    }
  }
  const out = new Map<string, number[]>();
  if (dups.size === 0) return out;
  const list = [...dups].map((d) => Math.trunc(d)).join(",");
  const claims: { shard: string; seq: number; at: string; worker: string }[] = [];
  for (const database of shards) {
    const db = await openShard(database);
    try {
      const rows = await db.all<{ seq: number; at: string; worker: string }>(
        `SELECT q.seq, b.committed_at::VARCHAR AS at, b.worker
         FROM _sluice.jetstream_sequences AS q JOIN _sluice.jetstream_batches AS b
           ON b.stream = q.stream AND b.batch_id = q.batch_id
         WHERE q.stream = $stream AND q.seq IN (${list})`,
        { stream },
      );
      for (const r of rows) {
        claims.push({ shard: database, seq: Number(r.seq), at: r.at, worker: r.worker });
      }
    } finally {
      db.close();
    }
  }
  const bySeq = new Map<number, typeof claims>();
  for (const c of claims) bySeq.set(c.seq, [...(bySeq.get(c.seq) ?? []), c]);
  for (const [seq, cs] of bySeq) {
    cs.sort((a, b) => a.at.localeCompare(b.at) || a.worker.localeCompare(b.worker));
    for (const c of cs.slice(1)) out.set(c.shard, [...(out.get(c.shard) ?? []), seq]);
  }
  return out;
}

async function listParquet(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await listParquet(p));
    else if (e.name.endsWith(".parquet")) out.push(p);
  }
  return out;
}

/**
 * Writes every shard's target table to `<out>/worker=<id>/date=<YYYY-MM-DD>/part-<n>.parquet`
 * (zstd; date of the event time, UTC). A stream sequence committed in more
 * than one shard is written once, from the shard that committed it first. Each worker's folder is written
 * aside and renamed into place, so a reader sees a worker's old files or
 * its new ones, never a mix; exporting again replaces them.
 *
 * @example
 * ```ts ignore
 * await exportShards(config, { shards: ["w1/sluice.duckdb", "w2/sluice.duckdb"], out: "./dataset" });
 * // SELECT count(*) FROM read_parquet('dataset/**\/*.parquet', hive_partitioning = true)
 * ```
 */
export async function exportShards(
  config: PipelineConfig,
  options: { shards: string[]; out: string },
): Promise<ShardExportResult> {
  const s = jetstreamSection(config);
  const out = resolve(options.out);
  await Deno.mkdir(out, { recursive: true });
  const result: ShardExportResult = { out, rows: {}, files: 0, crossShardDuplicatesDropped: 0 };
  const et = eventTimeOf(parsingConfig(s));
  const drop = await losers(options.shards, s.checkpoint);
  for (const database of options.shards) {
    const db = await openShard(database, [out]);
    let worker: string;
    try {
      const st = await db.one<{ worker: string }>(
        `SELECT worker FROM _sluice.jetstream_state WHERE stream = $stream`,
        { stream: s.checkpoint },
      );
      if (st === undefined) {
        throw new UsageError(`Cannot export shard ${database}: it has no stream "${s.checkpoint}"`);
      }
      worker = st.worker;
      const tmp = join(out, `.tmp-${worker}`);
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      await Deno.mkdir(tmp, { recursive: true });
      const lost = drop.get(database) ?? [];
      const keep = lost.length === 0
        ? ""
        : `WHERE _source_line NOT IN (${lost.map((q) => Math.trunc(q)).join(",")})`;
      const target = `(SELECT * FROM ${qualified("silver", s.target)} ${keep})`;
      const n = (await db.one<{ n: number }>(`SELECT count(*) AS n FROM ${target}`))?.n ?? 0;
      if (lost.length > 0) {
        const left = await db.one<{ n: number }>(
          `SELECT count(*) AS n FROM ${qualified("silver", s.target)}
           WHERE _source_line IN (${lost.map((q) => Math.trunc(q)).join(",")})`,
        );
        result.crossShardDuplicatesDropped += Number(left?.n ?? 0);
      }
      await db.run(
        `COPY (SELECT *, ${literal(worker)} AS worker,
            strftime(timezone('UTC', ${et}), '%Y-%m-%d') AS date
          FROM ${target} ORDER BY ${ident("_source_line")})
         TO ${literal(tmp)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (worker, date),
           FILENAME_PATTERN 'part-{i}', OVERWRITE_OR_IGNORE)`,
      );
      const files = await listParquet(tmp);
      const check = files.length === 0 ? { n: 0 } : await db.one<{ n: number }>(
        `SELECT count(*) AS n FROM read_parquet(${literal(join(tmp, "**", "*.parquet"))})`,
      );
      if (Number(check?.n ?? 0) !== Number(n)) {
        throw new ConservationError(
          `Rows do not add up in the export of shard ${worker}: ${n} in the table, ` +
            `${check?.n ?? 0} in Parquet`,
        );
      }
      const final = join(out, `worker=${worker}`);
      const aside = join(out, `.old-${worker}`);
      await Deno.remove(aside, { recursive: true }).catch(() => {});
      await Deno.rename(final, aside).catch(() => {});
      if (files.length > 0) await Deno.rename(join(tmp, `worker=${worker}`), final);
      await Deno.remove(aside, { recursive: true }).catch(() => {});
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
      result.rows[worker] = Number(n);
      result.files += files.length;
    } finally {
      db.close();
    }
  }
  return result;
}
