/**
 * A JetStream worker: micro-batches from a durable pull consumer that N
 * workers share, into this worker's own lake (its shard), exactly once per
 * message.
 *
 * Each batch pulls at most `batch` messages (what one commit takes, so
 * memory is bounded whatever the backlog), then in ONE DuckDB transaction
 * appends the valid rows to `silver.<target>`, malformed, invalid, late and
 * poison messages to `silver.<dlq>` (with subject, stream sequence, delivery
 * count, headers and raw bytes), emits the windows the watermark closed,
 * and records the stream sequences it consumed with the checkpoint. Only
 * after the commit are the messages acked (and the server's confirmation
 * awaited). A redelivered message whose sequence this shard has committed is
 * acked and dropped (`redelivered_duplicates`), so a crash between commit
 * and ack neither loses nor duplicates anything; acks that were not
 * confirmed are kept in the same transaction and sent again at the next
 * start. Parsing, validation, lateness, windows, the DLQ schema and the
 * checkpoint are the landing-folder stream's own (`_sql.ts`, `windows.ts`,
 * `checkpoint.ts`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { getLogger, type Logger } from "@logtape/logtape";
import type { JetStreamSourceConfig } from "../../core/config/mod.ts";
import {
  isJetStreaming,
  type JetStreamingConfig,
  parsingConfig,
  type StreamingConfig,
} from "../../core/config/mod.ts";
import { ensureDlqTable } from "../../core/dlq.ts";
import { parseDuration } from "../../core/duration.ts";
import {
  ConservationError,
  errorMessage,
  JetStreamDataLossError,
  SluiceError,
  UsageError,
} from "../../core/errors.ts";
import { ident, literal, qualified } from "../../core/quote.ts";
import type { RunContext } from "../../core/run_context.ts";
import { finishRunRecord, startRunRecord } from "../../observability/ledger.ts";
import { streamMetrics } from "../_metrics.ts";
import { requireKnownCrashPoint } from "../../core/crash_seam.ts";
import { crashIfAt, logStreamFailed, reasonsText, sleep, usToDate } from "../_runner.ts";
import { classifySql, eventTimeOf, lateDetailSql, lateSql, usSql } from "../_sql.ts";
import { ensureTargetTable } from "../_target.ts";
import {
  type Checkpoint,
  ensureStreamTables,
  loadCheckpoint,
  saveCheckpoint,
} from "../checkpoint.ts";
import { exportBatches } from "../export.ts";
import { CRASH_STEPS, type CrashStep, type StreamTrigger } from "../stream.ts";
import { emitWindows, ensureWindowTables, WINDOW_SCHEMA } from "../windows.ts";
import {
  ackConfirmed,
  claim,
  type ClaimCache,
  ensureClaims,
  type JetStreamLink,
  openLink,
  type Position,
  position,
  pull,
  type PulledMessage,
  safeMessage,
} from "./_client.ts";
import { type JetStreamMetrics, jetStreamMetrics } from "./_metrics.ts";
import {
  ensureJetStreamTables,
  forgetAcked,
  forgetBatches,
  loadShardState,
  loadUnacked,
  saveShardState,
  type ShardState,
} from "./_tables.ts";

/** Options of {@linkcode runJetStream}. */
export interface JetStreamOptions {
  /** This worker's id (its shard's name). Default: the host name. */
  workerId?: string;
  /** `once` (one batch), `available-now` (until the consumer has nothing pending, default), `interval` (until stopped). */
  trigger?: StreamTrigger;
  /** Aborting finishes the current batch (commit and ack) and stops. */
  signal?: AbortSignal;
  /** Stop after this many batches. */
  maxBatches?: number;
  /** How long to keep retrying while NATS is unreachable. Default 2 minutes. */
  retryForMs?: number;
}

/** What a worker's run did. */
export interface JetStreamSummary {
  /** The run's id. */
  runId: string;
  /** Checkpoint name. */
  stream: string;
  /** Worker id. */
  worker: string;
  /** Trigger used. */
  trigger: StreamTrigger;
  /** Why it stopped. */
  stoppedBy: "done" | "signal" | "max_batches";
  /** Batches committed. */
  batches: number;
  /** Messages pulled (duplicates included). */
  received: number;
  /** Rows appended to the target. */
  written: number;
  /** Messages dead-lettered (malformed, invalid, late, poison). */
  deadLettered: number;
  /** Dead letters by reason. */
  byReason: Record<string, number>;
  /** Redelivered messages dropped because this shard had committed them. */
  redeliveredDuplicates: number;
  /** Acks the server confirmed. */
  acks: number;
  /** Messages committed here but claimed first by another worker, removed from this shard. */
  claimsLost: number;
  /** Sequences found missing (fail_on_data_loss: false). */
  dataLoss: number;
  /** Watermark at the end, or null. */
  watermark: Date | null;
  /** Last committed batch id. */
  lastBatchId: number;
  /** Consumer lag (`num_pending`) at the last look. */
  pending: number;
  /** Wall time in milliseconds. */
  durationMs: number;
  /**
   * Time spent in committed batches (pull to confirmed ack; the acks of one
   * batch overlap the next, counted once), in milliseconds.
   */
  busyMs: number;
}

/** One batch's classification. */
interface Counts {
  messages: number;
  duplicates: number;
  fresh: number;
  poison: number;
  valid: number;
  late: number;
  byReason: Record<string, number>;
  maxEventUs: number | null;
  redelivered: number;
  firstSeq: number;
  lastSeq: number;
}

/** A committed batch whose claims and acks are on their way. */
interface InFlight {
  batchId: number;
  /** `batchesStarted` when it ran (the crash points' occurrence). */
  occurrence: number;
  acks: { seq: number; reply: string }[];
  network: Promise<
    [PromiseSettledResult<Map<number, string>>, PromiseSettledResult<Set<number>>]
  >;
  counts: Counts;
  result: { written: number; deadLettered: number; windows: Record<string, number> };
  started: number;
  committedAt: number;
  pullMs: number;
  commitMs: number;
}

const FRESH = "_sluice_js_new";

/** True when the bytes start with the UTF-8 byte order mark. */
function hasBom(data: Uint8Array): boolean {
  return data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf;
}

/**
 * The host name, the default worker id (`unknown-host` when the process
 * may not read it).
 *
 * @example
 * ```ts ignore
 * defaultWorkerId(); // "ingest-2"
 * ```
 */
export function defaultWorkerId(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown-host";
  }
}

/**
 * Runs one JetStream worker over the pipeline's `streaming:` section (whose
 * source is `type: jetstream`) until the trigger is satisfied. Open the run
 * with `openStreamRun` and close it afterwards.
 *
 * @example
 * ```ts ignore
 * import { loadConfig, openStreamRun, runJetStream } from "../../mod.ts";
 * const ctx = await openStreamRun(await loadConfig("pipeline.yaml"), { trigger: "cli" });
 * try {
 *   const s = await runJetStream(ctx, { workerId: "w1", trigger: "interval" });
 *   const shown = [s.written, s.redeliveredDuplicates];
 * } finally {
 *   ctx.db.close();
 * }
 * ```
 */
export async function runJetStream(
  ctx: RunContext,
  options: JetStreamOptions = {},
): Promise<JetStreamSummary> {
  const s = ctx.config.streaming;
  if (!isJetStreaming(s)) {
    throw new UsageError(
      `Cannot run a JetStream worker for pipeline "${ctx.config.pipeline}": its streaming.source ` +
        "is not type: jetstream",
    );
  }
  // Crash tests (core/crash_seam.ts): SLUICE_CRASH_AT=<step>@<batch> with a step of
  // CRASH_STEPS: `planned` (pulled), `read` (staged), `appended`, `checkpointed`,
  // `committed` (before the ack), `cleaned` (after the ack), `exported`.
  requireKnownCrashPoint(CRASH_STEPS);
  return await new Worker(ctx, s, options).run();
}

class Worker {
  readonly ctx: RunContext;
  readonly s: JetStreamingConfig;
  readonly src: JetStreamSourceConfig;
  /** The section as the shared parser sees it (records are NDJSON). */
  readonly view: StreamingConfig;
  readonly options: JetStreamOptions;
  readonly trigger: StreamTrigger;
  readonly stream: string;
  readonly worker: string;
  readonly log: Logger;
  readonly m: JetStreamMetrics;
  readonly labels: { pipeline: string; stream: string; worker: string };
  readonly delayMs: number;
  readonly batchSize: number;
  link?: JetStreamLink;
  state!: ShardState;
  last?: Position;
  batchesStarted = 0;
  /** The committed batch whose claims and acks are on their way (see {@linkcode batch}). */
  inFlight?: InFlight;
  /** What this worker has read of the claims bucket (entries never change). */
  claimCache: ClaimCache = new Map();
  /** Acks sent but not confirmed since the last look at `_sluice.jetstream_unacked`. */
  unconfirmed = 0;
  /**
   * The checkpoint as the last commit left it. Only this worker writes its
   * shard, and a commit checks the batch id it moves from, so the next batch
   * need not read it back. Cleared on any failure.
   */
  cp: Checkpoint | undefined;
  /** Batches whose acks were all confirmed: their unacked records go in the next commit. */
  forgettable: number[] = [];
  summary: JetStreamSummary;

  constructor(ctx: RunContext, s: JetStreamingConfig, options: JetStreamOptions) {
    this.ctx = ctx;
    this.s = s;
    this.src = s.source;
    this.view = parsingConfig(s);
    this.options = options;
    this.trigger = options.trigger ?? "available-now";
    this.stream = s.checkpoint;
    this.worker = options.workerId ?? defaultWorkerId();
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(this.worker)) {
      throw new UsageError(
        `Cannot use worker id ${JSON.stringify(this.worker)}: use letters, digits, ".", "_" ` +
          'and "-" (at most 64)',
      );
    }
    this.log = getLogger(["sluice", "stream", "jetstream"]).with({
      run_id: ctx.runId,
      pipeline: ctx.config.pipeline,
      stage: "stream",
      stream: this.stream,
      worker: this.worker,
    });
    this.m = jetStreamMetrics(ctx.metrics);
    this.labels = { pipeline: ctx.config.pipeline, stream: this.stream, worker: this.worker };
    this.delayMs = parseDuration(s.watermark.delay);
    // max_records_per_trigger keeps its meaning: messages per batch.
    this.batchSize = Math.min(this.src.batch, s.max_records_per_trigger);
    this.summary = {
      runId: ctx.runId,
      stream: this.stream,
      worker: this.worker,
      trigger: this.trigger,
      stoppedBy: "done",
      batches: 0,
      received: 0,
      written: 0,
      deadLettered: 0,
      byReason: {},
      redeliveredDuplicates: 0,
      acks: 0,
      claimsLost: 0,
      dataLoss: 0,
      watermark: null,
      lastBatchId: 0,
      pending: 0,
      durationMs: 0,
      busyMs: 0,
    };
  }

  get db() {
    return this.ctx.db;
  }

  get aborted(): boolean {
    return this.options.signal?.aborted ?? false;
  }

  async run(): Promise<JetStreamSummary> {
    const started = performance.now();
    await startRunRecord(this.ctx, { command: "stream" });
    try {
      await this.prepare();
      this.link = await this.retrying(
        "connect",
        () => openLink(this.src, { name: `sluice-${this.ctx.config.pipeline}-${this.worker}` }),
      );
      if (this.src.claims === "kv") {
        await this.retrying("claims bucket", () => ensureClaims(this.link!, this.src));
      }
      const cp = await loadCheckpoint(this.db, this.stream, {
        runId: this.ctx.runId,
        now: this.ctx.clock.now(),
      });
      this.summary.lastBatchId = cp.batchId;
      this.summary.watermark = usToDate(cp.watermarkUs);
      this.log.info("stream started", {
        event: "stream_started",
        source: "jetstream",
        js_stream: this.src.stream,
        consumer: this.src.consumer,
        trigger: this.trigger,
        batch_id: cp.batchId,
        target: `silver.${this.s.target}`,
        dlq: `silver.${this.s.dlq}`,
      });
      // Acks a crash left unconfirmed, and an export a crash left unfinished.
      await this.retryUnacked();
      await this.export(cp.batchId);
      await this.loop();
    } catch (e) {
      this.summary.durationMs = performance.now() - started;
      await this.close();
      await finishRunRecord(this.ctx, { status: "failed", error: errorMessage(e) }).catch(() => {});
      logStreamFailed(this.log, e, this.summary.batches);
      throw e;
    }
    await this.close();
    this.summary.durationMs = performance.now() - started;
    await finishRunRecord(this.ctx, { status: "success" });
    await this.db.checkpoint();
    this.log.info("stream stopped", {
      event: "stream_stopped",
      reason: this.summary.stoppedBy,
      batches: this.summary.batches,
      received: this.summary.received,
      written: this.summary.written,
      dead_lettered: this.summary.deadLettered,
      by_reason: this.summary.byReason,
      redelivered_duplicates: this.summary.redeliveredDuplicates,
      acks: this.summary.acks,
      pending: this.summary.pending,
      duration_ms: Math.round(this.summary.durationMs),
    });
    return this.summary;
  }

  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    if (link) await link.nc.drain().catch(() => link.nc.close().catch(() => {}));
  }

  async prepare(): Promise<void> {
    await ensureStreamTables(this.db);
    await this.db.run(`CREATE SCHEMA IF NOT EXISTS ${ident(WINDOW_SCHEMA)}`);
    await ensureTargetTable(this.ctx, this.view);
    await ensureDlqTable(this.db, "silver", this.s.dlq);
    await ensureJetStreamTables(this.db, this.s.dlq);
    await ensureWindowTables(this.db, this.view);
    this.state = await loadShardState(this.db, this.stream);
    if (this.state.worker !== null && this.state.worker !== this.worker) {
      throw new UsageError(
        `Cannot run worker "${this.worker}" on the shard of worker "${this.state.worker}" ` +
          `(${this.db.path}): each worker needs its own lake`,
      );
    }
    if (this.state.worker === null) {
      // The shard is this worker's from its first start, even before its first batch.
      this.state.worker = this.worker;
      await this.saveState(this.ctx.clock.now());
    }
  }

  /** Runs a NATS call again while the cluster is unreachable (node restarts, elections). */
  async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const until = Date.now() + (this.options.retryForMs ?? 120_000);
    let attempt = 0;
    while (true) {
      try {
        return await fn();
      } catch (e) {
        // What a node restart or a leader election looks like is retried; a usage or
        // permission error, or one of ours that is not about the connection, is not.
        if (e instanceof UsageError) throw e;
        const text = `${(e as Error)?.name ?? ""} ${safeMessage(e)}`;
        // "JetStream system temporarily unavailable" (503) is what a stream or consumer
        // request gets while a restarted node's RAFT group elects a leader.
        const ours = e instanceof SluiceError &&
          !/connect|timeout|temporarily unavailable|no responders|503/i.test(text);
        if (ours || /InvalidArgument|InvalidOperation|Permission|Authori[sz]ation/i.test(text)) {
          throw e;
        }
        if (Date.now() > until || this.aborted) throw e;
        attempt++;
        this.log.warn("NATS not available, retrying", {
          event: "nats_retry",
          what,
          attempt,
          error: safeMessage(e),
        });
        await sleep(Math.min(2000, 200 * attempt));
      }
    }
  }

  crash(step: CrashStep): void {
    crashIfAt(this.log, { step, batch: this.batchesStarted });
  }

  /** Runs batches until the trigger, a limit or a signal stops it; settles the last one. */
  async loop(): Promise<void> {
    try {
      await this.batches();
    } catch (e) {
      // The batch committed before the failure still gets its claims and acks.
      await this.settleInFlight({ busy: true }).catch((err) =>
        this.log.warn("could not settle the last committed batch: {error}", {
          event: "settle_failed",
          error: safeMessage(err),
        })
      );
      throw e;
    }
    await this.settleInFlight({ busy: true });
    await this.forgetConfirmed();
  }

  async batches(): Promise<void> {
    const max = this.options.maxBatches ?? Infinity;
    while (true) {
      if (this.aborted) {
        this.summary.stoppedBy = "signal";
        return;
      }
      if (this.summary.batches >= max) {
        this.summary.stoppedBy = "max_batches";
        return;
      }
      const result = await this.batch();
      if (this.trigger === "once" && result === "committed") return;
      if (result === "empty" && this.trigger !== "interval") {
        // available-now / once: done when nothing is left for this consumer.
        if ((this.last?.pending ?? 0) === 0) return;
      }
    }
  }

  /** Negative acks (`-NAK`): JetStream delivers these messages again without waiting. */
  async nak(msgs: PulledMessage[]): Promise<void> {
    const nc = this.link?.nc;
    if (!nc || msgs.length === 0) return;
    try {
      for (const m of msgs) nc.publish(m.reply, "-NAK");
      await nc.flush();
    } catch { /* unreachable: they come back after ack_wait */ }
  }

  /** Forgets now the unacked records of the batches whose acks were all confirmed. */
  async forgetConfirmed(): Promise<void> {
    const batches = this.forgettable.splice(0);
    if (batches.length > 0) await forgetBatches(this.db, this.stream, batches);
  }

  /** Sends the acks of committed messages that the server did not confirm. */
  async retryUnacked(): Promise<void> {
    await this.forgetConfirmed();
    // The batch in flight is settled on its own.
    const flying = new Set(this.inFlight?.acks.map((a) => a.seq) ?? []);
    const pending = (await loadUnacked(this.db, this.stream)).filter((p) => !flying.has(p.seq));
    this.unconfirmed = 0;
    if (pending.length === 0) return;
    // Below the consumer's ack floor every message is acked already (by this worker or after
    // a redelivery): nothing to send, but a crash between the commit and the claim may have
    // left it unclaimed, so it is claimed (or given up) like the rest before it is forgotten.
    const floor = this.last?.ackFloor ?? 0;
    const above = pending.filter((p) => p.seq > floor);
    const b = { claims: pending.map((p) => p.seq), acks: above, attempts: 1 };
    const done = await this.settle(0, b, await this.sendClaimsAndAcks(b));
    await forgetAcked(
      this.db,
      this.stream,
      pending.filter((p) => p.seq <= floor).map((p) => p.seq),
    );
    if (above.length === 0) return;
    this.log.info("unconfirmed acks sent again", {
      event: "acks_retried",
      messages: above.length,
      confirmed: done.size,
    });
  }

  /**
   * Settles a committed batch once its claims (`claims: kv`) and acks, sent
   * at the same time by {@linkcode sendClaimsAndAcks}, are answered: removes
   * the sequences another worker claimed first and forgets the confirmed acks.
   * The record of an unconfirmed ack is only forgotten once the claims are
   * settled, so a crash anywhere in between claims and acks again on
   * restart; an ack sent before its claim is confirmed changes nothing, as
   * the claim, not the ack, decides which shard keeps a redelivered message.
   * Returns the sequences whose ack the server confirmed.
   */
  async settle(
    batchId: number,
    b: { acks: { seq: number; reply: string }[] },
    network: [PromiseSettledResult<Map<number, string>>, PromiseSettledResult<Set<number>>],
  ): Promise<Set<number>> {
    const [claimed, acked] = network;
    if (claimed.status === "rejected") throw claimed.reason;
    await this.removeLost(claimed.value, batchId);
    if (acked.status === "rejected") throw acked.reason;
    const done = acked.value;
    if (batchId > 0 && done.size === b.acks.length && this.unconfirmed === 0) {
      // Every ack of the batch confirmed and none older outstanding: its records go with the
      // next commit (one statement in a transaction that fsyncs anyway, not a commit of its own).
      this.forgettable.push(batchId);
    } else await forgetAcked(this.db, this.stream, [...done]);
    this.m.acks.inc(this.labels, done.size);
    const failed = b.acks.length - done.size;
    if (failed > 0) this.m.ackFailures.inc(this.labels, failed);
    this.unconfirmed += failed;
    this.summary.acks += done.size;
    this.state.acks += done.size;
    return done;
  }

  /** The network part of {@linkcode settle}: claims and acks sent at the same time. */
  sendClaimsAndAcks(
    b: { claims: number[]; acks: { seq: number; reply: string }[]; attempts: number },
  ): Promise<[PromiseSettledResult<Map<number, string>>, PromiseSettledResult<Set<number>>]> {
    return Promise.allSettled([this.claimAll(b.claims), this.sendAcks(b.acks, b.attempts)]);
  }

  /**
   * Acks messages and waits for the server's confirmations; what it does not
   * confirm is sent again at once (up to `attempts` rounds), then before the
   * next pull.
   */
  async sendAcks(acks: { seq: number; reply: string }[], attempts: number): Promise<Set<number>> {
    const done = new Set<number>();
    if (acks.length === 0 || !this.link) return done;
    const timeoutMs = Math.min(10_000, Math.max(1000, parseDuration(this.src.ack_wait) / 4));
    let todo = acks;
    for (let attempt = 0; todo.length > 0 && attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(300 * attempt);
      for (const seq of await ackConfirmed(this.link.nc, todo, { timeoutMs })) done.add(seq);
      todo = todo.filter((a) => !done.has(a.seq));
    }
    return done;
  }

  /** Claims sequences this shard committed (`claims: kv`): who holds each. */
  async claimAll(seqs: number[]): Promise<Map<number, string>> {
    if (this.src.claims !== "kv" || seqs.length === 0 || !this.link) return new Map();
    return await claim(this.link, this.src, seqs, this.worker, {
      timeoutMs: 2000,
      untilMs: Date.now() + (this.options.retryForMs ?? 120_000),
      cache: this.claimCache,
    });
  }

  /**
   * Removes from this shard the sequences another worker claimed first (a
   * redelivery it committed too), in one transaction — rows, dead letters
   * and the sequence — and notes them in `_sluice.jetstream_claims_lost`. A
   * claim is written once, after the local commit, so exactly one worker
   * holds each sequence.
   */
  async removeLost(holders: Map<number, string>, batchId: number): Promise<void> {
    const lost = [...holders].filter(([, w]) => w !== this.worker);
    if (lost.length === 0) return;
    const list = lost.map(([seq]) => Math.trunc(seq)).join(",");
    const now = this.ctx.clock.now();
    await this.db.transaction(async () => {
      await this.db.run(
        `DELETE FROM ${qualified("silver", this.s.target)} WHERE _source_line IN (${list})`,
      );
      await this.db.run(
        `DELETE FROM ${qualified("silver", this.s.dlq)} WHERE _js_seq IN (${list})`,
      );
      await this.db.run(
        `DELETE FROM _sluice.jetstream_sequences WHERE stream = $stream AND seq IN (${list})`,
        { stream: this.stream },
      );
      for (const [seq, winner] of lost) {
        await this.db.run(
          `INSERT INTO _sluice.jetstream_claims_lost VALUES ($stream, $seq, $winner, $batch,
            $now::TIMESTAMPTZ)`,
          { stream: this.stream, seq, winner, batch: batchId, now: now.toISOString() },
        );
      }
    });
    this.summary.claimsLost += lost.length;
    this.log.warn("messages claimed by another worker removed from this shard", {
      event: "claims_lost",
      messages: lost.length,
      seqs: lost.slice(0, 20).map(([seq]) => seq),
      winners: [...new Set(lost.map(([, w]) => w))],
    });
  }

  /** Looks at the stream and the consumer: lag, and whether messages are gone. */
  async look(): Promise<Position> {
    const pos = await this.retrying("position", () => position(this.link!, this.src));
    this.last = pos;
    this.summary.pending = pos.pending;
    this.m.pending.set(this.labels, pos.pending);
    this.m.ackPending.set(this.labels, pos.ackPending);
    await this.checkDataLoss(pos);
    return pos;
  }

  async checkDataLoss(pos: Position): Promise<void> {
    const st = this.state;
    if (st.floorSeen === null) {
      // First start of this shard: what came before the consumer's floor is not ours.
      st.floorSeen = Math.max(pos.ackFloor, pos.firstSeq - 1);
      await this.saveState(this.ctx.clock.now());
      return;
    }
    if (pos.lastSeq < st.maxSeq) {
      throw new JetStreamDataLossError(
        `Cannot continue stream "${this.stream}": JetStream stream "${this.src.stream}" ends at ` +
          `sequence ${pos.lastSeq} but this shard committed up to ${st.maxSeq} (was it deleted ` +
          "and created again? use a new checkpoint name to start over)",
        { context: { kind: "stream_reset", last_seq: pos.lastSeq, committed: st.maxSeq } },
      );
    }
    if (pos.firstSeq > st.floorSeen + 1) {
      const from = st.floorSeen + 1;
      const to = pos.firstSeq - 1;
      const here = await this.db.one<{ n: number }>(
        `SELECT count(*) AS n FROM _sluice.jetstream_sequences
         WHERE stream = $stream AND seq BETWEEN $from AND $to`,
        { stream: this.stream, from, to },
      );
      const missing = to - from + 1 - Number(here?.n ?? 0);
      if (missing <= 0) {
        // All of them are committed here (acked while this floor was last seen): nothing lost.
        st.floorSeen = Math.max(to, pos.ackFloor);
        return;
      }
      const text = `JetStream sequences ${from} to ${to} of stream "${this.src.stream}" are ` +
        `gone (purged or removed by its limits) but the consumer "${this.src.consumer}" had not ` +
        `acknowledged all of them (its ack floor was ${st.floorSeen}; the stream now starts at ` +
        `${pos.firstSeq})`;
      if (this.s.fail_on_data_loss) {
        throw new JetStreamDataLossError(
          `Cannot continue stream "${this.stream}": ${text} (fail_on_data_loss: true; set it to ` +
            "false to skip the missing range)",
          { context: { kind: "purged", from_seq: from, to_seq: to } },
        );
      }
      const now = this.ctx.clock.now();
      st.dataLoss += missing;
      st.floorSeen = to;
      await this.db.transaction(async () => {
        await this.db.run(
          `INSERT INTO _sluice.jetstream_data_loss VALUES ($stream, $worker, $from, $to,
            $now::TIMESTAMPTZ, $run)`,
          {
            stream: this.stream,
            worker: this.worker,
            from,
            to,
            now: now.toISOString(),
            run: this.ctx.runId,
          },
        );
        await this.saveState(now);
      });
      this.m.dataLoss.inc(this.labels, missing);
      streamMetrics(this.ctx.metrics).dataLoss.inc({
        pipeline: this.labels.pipeline,
        stream: this.stream,
        kind: "purged",
      });
      this.summary.dataLoss += missing;
      this.log.warn("data loss: JetStream messages gone before they were committed", {
        event: "data_loss",
        kind: "purged",
        from_seq: from,
        to_seq: to,
        messages: missing,
      });
    }
    st.floorSeen = Math.max(st.floorSeen, pos.ackFloor);
  }

  /** Writes the shard state (joins the batch's transaction when called inside it). */
  async saveState(now: Date): Promise<void> {
    await this.db.transaction(() =>
      saveShardState(this.db, this.stream, {
        ...this.state,
        jsStream: this.src.stream,
        consumer: this.src.consumer,
        pending: this.last?.pending ?? 0,
        now,
      })
    );
  }

  /**
   * Pulls, stages, classifies and commits one batch, then starts its claims
   * and acks. They travel while the next batch is pulled and committed, and
   * are settled after that commit (or on an empty pull, or when the loop
   * ends): the network wait of one batch overlaps the work of the next.
   */
  async batch(): Promise<"committed" | "empty"> {
    const started = performance.now();
    const floorBefore = this.state.floorSeen;
    // Only after a batch whose acks were not all confirmed (a restart always looks).
    if (this.unconfirmed > 0) await this.retryUnacked();
    // Deliveries start their ack_wait timers no earlier than this.
    const pullStarted = performance.now();
    // The look at the stream (lag, data loss) travels with the pull.
    const [looked, pulled] = await Promise.allSettled([
      this.look(),
      this.retrying("pull", () =>
        pull(this.link!, {
          max: this.batchSize,
          expiresMs: parseDuration(this.src.max_wait),
        })),
    ]);
    if (looked.status === "rejected") {
      // Hand the pulled batch back at once rather than after ack_wait (best effort).
      if (pulled.status === "fulfilled") await this.nak(pulled.value);
      throw looked.reason;
    }
    if (pulled.status === "rejected") throw pulled.reason;
    const msgs = pulled.value;
    if (msgs.length === 0) {
      // The acks just confirmed move the consumer's ack floor: look again before keeping it.
      if (await this.settleInFlight({ busy: true })) await this.look();
      // Nothing to commit: still keep the ack floor seen, the reference for data loss.
      if (this.state.floorSeen !== floorBefore) await this.saveState(this.ctx.clock.now());
      return "empty";
    }
    this.batchesStarted++;
    this.crash("planned");
    const fresh = await this.stage(msgs);
    const now = this.ctx.clock.now();
    const cp = this.cp ??
      await loadCheckpoint(this.db, this.stream, { runId: this.ctx.runId, now });
    const counts = await this.classify(msgs, fresh, cp);
    this.crash("read");
    if (!await this.withinAckWait(msgs, pullStarted)) {
      await this.dropStaging();
      this.batchesStarted--;
      return "empty";
    }
    const batchId = cp.batchId + 1;
    const pulledAt = performance.now();
    const forgotten = this.forgettable.splice(0);
    let r: Awaited<ReturnType<Worker["commit"]>>;
    try {
      r = await this.db.transaction(() =>
        this.commit({ counts, cp, batchId, now, msgs, forget: forgotten })
      );
    } catch (e) {
      this.cp = undefined;
      this.forgettable.unshift(...forgotten);
      throw e;
    }
    this.cp = { ...cp, batchId, maxEventTimeUs: r.maxEventTimeUs, watermarkUs: r.watermarkUs };
    this.crash("committed");
    // The new sequences are known from staging: no need to read them back.
    const claims = this.src.claims !== "kv" || counts.fresh === 0 ? [] : fresh.map((m) => m.seq);
    const committedAt = performance.now();
    await this.settleInFlight({ busy: false });
    // Ack everything pulled: new messages (now committed) and duplicates (committed before).
    const acks = msgs.map((m) => ({ seq: m.seq, reply: m.reply }));
    this.inFlight = {
      batchId,
      occurrence: this.batchesStarted,
      acks,
      network: this.sendClaimsAndAcks({ claims, acks, attempts: 3 }),
      counts,
      result: r,
      started,
      committedAt,
      pullMs: pulledAt - started,
      commitMs: committedAt - pulledAt,
    };
    this.summary.busyMs += performance.now() - started;
    return "committed";
  }

  /**
   * Settles the batch whose claims and acks are in flight: removes what
   * another worker claimed, forgets the confirmed acks, exports and records
   * it. False when nothing was in flight.
   */
  async settleInFlight(o: { busy: boolean }): Promise<boolean> {
    const b = this.inFlight;
    if (!b) return false;
    this.inFlight = undefined;
    const waitStarted = performance.now();
    const done = await this.settle(b.batchId, b, await b.network);
    crashIfAt(this.log, { step: "cleaned", batch: b.occurrence });
    await this.export(b.batchId);
    crashIfAt(this.log, { step: "exported", batch: b.occurrence });
    const end = performance.now();
    if (o.busy) this.summary.busyMs += end - waitStarted;
    this.record(b.counts, b.result, {
      batchId: b.batchId,
      durationMs: end - b.started,
      acked: done.size,
      timings: {
        pull_ms: Math.round(b.pullMs),
        commit_ms: Math.round(b.commitMs),
        ack_ms: Math.round(end - b.committedAt),
      },
    });
    return true;
  }

  /**
   * Makes sure the batch commits inside the messages' ack deadline: JetStream
   * may hand a message to another worker once `ack_wait` has passed since its
   * delivery, and a commit after that could put it in two shards. A batch
   * that took more than a quarter of `ack_wait` so far renews its deadline
   * (in-progress acks, confirmed by the server); if that fails, the batch is
   * abandoned uncommitted and JetStream delivers it again.
   */
  async withinAckWait(msgs: PulledMessage[], since: number): Promise<boolean> {
    const ackWaitMs = parseDuration(this.src.ack_wait);
    const elapsed = performance.now() - since;
    if (elapsed <= ackWaitMs / 4) return true;
    let renewed = 0;
    if (elapsed < ackWaitMs * 0.9 && this.link) {
      const timeout = Math.max(500, Math.min(5000, (ackWaitMs * 0.9 - elapsed) / 2));
      const results = await Promise.allSettled(
        msgs.map((m) => this.link!.nc.request(m.reply, "+WPI", { timeout })),
      );
      renewed = results.filter((r) => r.status === "fulfilled").length;
    }
    if (renewed === msgs.length && performance.now() - since < ackWaitMs * 0.9) return true;
    this.log.warn("batch abandoned: it could not commit within ack_wait", {
      event: "batch_abandoned",
      messages: msgs.length,
      elapsed_ms: Math.round(elapsed),
      ack_wait_ms: ackWaitMs,
      renewed,
    });
    return false;
  }

  async dropStaging(): Promise<void> {
    for (const t of [FRESH, "_sluice_rows", "_sluice_late"]) {
      await this.db.run(`DROP TABLE IF EXISTS ${t}`);
    }
  }

  /**
   * Stages the batch's new messages in a temporary table (outside the
   * transaction): once per sequence (its latest delivery), poison marked,
   * then without the sequences this shard committed before (redeliveries).
   * Returns the new messages.
   */
  async stage(msgs: PulledMessage[]): Promise<PulledMessage[]> {
    const maxDeliver = Math.trunc(this.src.max_deliver);
    const latest = new Map<number, PulledMessage>();
    for (const m of msgs) {
      const seen = latest.get(m.seq);
      if (!seen || m.delivered > seen.delivered) latest.set(m.seq, m);
    }
    // Each batch replaces the staging tables (dropping them costs more than replacing).
    await this.db.run(
      `CREATE OR REPLACE TEMP TABLE ${FRESH} (seq BIGINT, subject VARCHAR, delivered INTEGER,
      headers VARCHAR, line VARCHAR, raw VARCHAR, bad BOOLEAN, reply VARCHAR, poison BOOLEAN)`,
    );
    const strict = new TextDecoder("utf-8", { fatal: true });
    const lossy = new TextDecoder("utf-8");
    let lo = Infinity;
    let hi = -Infinity;
    await this.db.append(FRESH, (row) => {
      for (const m of latest.values()) {
        lo = Math.min(lo, m.seq);
        hi = Math.max(hi, m.seq);
        let line: string;
        let bad = false;
        try {
          line = strict.decode(m.data);
        } catch {
          line = lossy.decode(m.data);
          bad = true;
        }
        row.bigint(m.seq);
        row.varchar(m.subject);
        row.integer(m.delivered);
        row.varchar(m.headers);
        row.varchar(line);
        // The raw bytes are the line's UTF-8 unless it was not UTF-8 or started with a BOM
        // (which the decoder drops): only then are they kept apart (for the dead letter).
        row.varchar(bad || hasBom(m.data) ? Buffer.from(m.data).toString("base64") : null);
        row.boolean(bad);
        row.varchar(m.reply);
        row.boolean(m.delivered > maxDeliver);
        row.endRow();
      }
    }, { temp: true });
    // Redeliveries of sequences committed here before: dropped (and acked again). None can be
    // when every sequence is above the largest this shard committed (the usual batch).
    if (latest.size === 0 || lo > this.state.maxSeq) return [...latest.values()];
    const committed = await this.db.all<{ seq: number }>(
      `SELECT s.seq FROM _sluice.jetstream_sequences AS s
       WHERE s.stream = ${literal(this.stream)} AND s.seq BETWEEN ${lo} AND ${hi}
         AND s.seq IN (SELECT seq FROM ${FRESH})`,
    );
    if (committed.length === 0) return [...latest.values()];
    const dup = new Set(committed.map((r) => Number(r.seq)));
    await this.db.run(
      `DELETE FROM ${FRESH} WHERE seq IN (${[...dup].map((x) => Math.trunc(x)).join(",")})`,
    );
    return [...latest.values()].filter((m) => !dup.has(m.seq));
  }

  /** Parses, validates and finds late rows among the new messages; counts everything. */
  async classify(
    msgs: PulledMessage[],
    fresh: PulledMessage[],
    cp: Checkpoint,
  ): Promise<Counts> {
    const db = this.db;
    let lo = Infinity;
    let hi = -Infinity;
    let redelivered = 0;
    for (const m of msgs) {
      lo = Math.min(lo, m.seq);
      hi = Math.max(hi, m.seq);
      if (m.delivered > 1) redelivered++;
    }
    const maxDeliver = Math.trunc(this.src.max_deliver);
    const poison = fresh.reduce((n, m) => n + (m.delivered > maxDeliver ? 1 : 0), 0);
    const counts: Counts = {
      messages: msgs.length,
      duplicates: msgs.length - fresh.length,
      fresh: fresh.length,
      poison,
      valid: 0,
      late: 0,
      byReason: {},
      maxEventUs: null,
      redelivered,
      firstSeq: lo,
      lastSeq: hi,
    };
    if (counts.poison > 0) counts.byReason.poison = counts.poison;
    const et = eventTimeOf(this.view);
    const lines = `(SELECT seq AS __seq, line AS __line, NULL::VARCHAR[] AS __hdr, bad AS __bad
      FROM ${FRESH} WHERE NOT poison)`;
    await db.run(
      `CREATE OR REPLACE TEMP TABLE _sluice_rows AS ${
        classifySql(this.view, { lines, keep: ["__seq"] })
      }`,
    );
    // The classified rows by outcome, and the staged ones counted apart to check the sums.
    const rows = await db.all<
      & { code: string | null; n: number; lo: number | null; hi: number | null; staged: number }
      & Record<string, unknown>
    >(
      `WITH f AS (SELECT count(*) AS staged FROM ${FRESH}),
       g AS (SELECT CASE WHEN __code = 'blank' THEN 'malformed_json' ELSE __code END AS code,
         count(*) AS n, epoch_us(min(${et})) AS lo, epoch_us(max(${et})) AS hi
       FROM _sluice_rows GROUP BY 1)
       SELECT g.*, f.staged FROM f LEFT JOIN g ON true`,
    );
    let total = 0;
    let minUs: number | null = null;
    for (const { code, n, lo: l, hi: h } of rows) {
      if (n === null) continue; // no classified row (all duplicates or poison)
      total += Number(n);
      if (code === null) {
        counts.valid = Number(n);
        minUs = l === null ? null : Number(l);
        counts.maxEventUs = h === null ? null : Number(h);
      } else counts.byReason[code] = (counts.byReason[code] ?? 0) + Number(n);
    }
    const newest = Math.max(cp.maxEventTimeUs ?? -Infinity, counts.maxEventUs ?? -Infinity);
    // Late rows are possible only when the oldest is older than the watermark can be: else no
    // late table is made and the commit does not read one.
    const possible = minUs !== null && minUs < newest - this.delayMs * 1000;
    if (possible) {
      await db.run(
        `CREATE OR REPLACE TEMP TABLE _sluice_late AS ${
          lateSql({
            rows: "_sluice_rows",
            maxEventTimeUs: cp.maxEventTimeUs,
            delayMs: this.delayMs,
            et,
            order: "__seq",
            keep: ["__seq"],
          })
        }`,
      );
      const late = await db.one<{ n: number }>(`SELECT count(*) AS n FROM _sluice_late`);
      counts.late = Number(late?.n ?? 0);
      if (counts.late > 0) counts.byReason.late = counts.late;
    }
    const staged = Number(rows[0]?.staged ?? 0);
    if (total + counts.poison !== counts.fresh || staged !== counts.fresh) {
      throw new ConservationError(
        `Messages do not add up in stream "${this.stream}": ${counts.fresh} new, ` +
          `${staged} staged, ${total} classified, ${counts.poison} poison`,
      );
    }
    return counts;
  }

  /** Everything of one batch that must commit together, inside its transaction. */
  async commit(
    b: {
      counts: Counts;
      cp: Checkpoint;
      batchId: number;
      now: Date;
      msgs: PulledMessage[];
      forget: readonly number[];
    },
  ): Promise<{
    written: number;
    deadLettered: number;
    windows: Record<string, number>;
    maxEventTimeUs: number | null;
    watermarkUs: number | null;
  }> {
    const db = this.db;
    const s = this.s;
    const { counts, cp, batchId, now } = b;
    const at = `${literal(now.toISOString())}::TIMESTAMPTZ`;
    const good = counts.valid - counts.late;
    const dead = counts.fresh - good;
    const cols = Object.keys(s.columns).map((c) => `r.${ident(c)}`).join(", ");
    const notLate = counts.late > 0
      ? "AND NOT EXISTS (SELECT 1 FROM _sluice_late AS l WHERE l.__seq = r.__seq)"
      : "";
    const written = await db.run(
      `INSERT INTO ${qualified("silver", s.target)} BY NAME
       SELECT ${cols}, ${batchId}::BIGINT AS _batch_id, m.subject AS _source_file,
         r.__seq AS _source_line, ${at} AS _ingested_at
       FROM _sluice_rows AS r JOIN ${FRESH} AS m ON m.seq = r.__seq
       WHERE r.__code IS NULL ${notLate}`,
    );
    const deadLettered = dead === 0 ? 0 : await this.writeDeadLetters(at, counts.late > 0);
    if (written !== good || deadLettered !== dead) {
      throw new ConservationError(
        `Messages do not add up in batch ${batchId} of stream "${this.stream}": ` +
          `${counts.fresh} new, ${written} written (expected ${good}), ${deadLettered} ` +
          `dead-lettered (expected ${dead})`,
        { context: { batch_id: batchId } },
      );
    }
    this.crash("appended");
    const maxEventTimeUs = counts.maxEventUs === null
      ? cp.maxEventTimeUs
      : Math.max(cp.maxEventTimeUs ?? -Infinity, counts.maxEventUs);
    const watermarkUs = maxEventTimeUs === null ? null : maxEventTimeUs - this.delayMs * 1000;
    const windows = await emitWindows(db, this.view, {
      batchId,
      watermarkUs,
      now,
      stream: this.stream,
    });
    // Each new sequence with its outcome: written unless poison, invalid or late (all written
    // when nothing was dead-lettered).
    const outcome = dead === 0 ? "'written'" : `CASE
         WHEN m.poison OR r.__code IS NOT NULL${
      counts.late > 0 ? " OR l.__seq IS NOT NULL" : ""
    } THEN 'dead_lettered' ELSE 'written' END`;
    await db.run(
      `INSERT INTO _sluice.jetstream_sequences
       SELECT ${literal(this.stream)}, m.seq, ${batchId}, ${outcome}
       FROM ${FRESH} AS m${dead === 0 ? "" : " LEFT JOIN _sluice_rows AS r ON r.__seq = m.seq"}${
        counts.late > 0 ? " LEFT JOIN _sluice_late AS l ON l.__seq = m.seq" : ""
      }`,
    );
    await db.run(
      `INSERT INTO _sluice.jetstream_unacked
       SELECT ${literal(this.stream)}, seq, ${batchId}, reply FROM ${FRESH}`,
    );
    // Earlier batches whose acks were all confirmed since the last commit.
    await forgetBatches(db, this.stream, b.forget);
    await saveCheckpoint(db, this.stream, {
      batchId,
      maxEventTimeUs,
      watermarkUs,
      delayMs: this.delayMs,
      runId: this.ctx.runId,
      now,
    });
    await this.recordBatch(b, { written, deadLettered, windows, maxEventTimeUs, watermarkUs });
    this.state.maxSeq = Math.max(this.state.maxSeq, counts.lastSeq);
    this.state.redeliveredDuplicates += counts.duplicates;
    await this.saveState(now);
    this.crash("checkpointed");
    return { written, deadLettered, windows, maxEventTimeUs, watermarkUs };
  }

  /** Writes the batch's dead letters (invalid, late and poison messages); returns how many. */
  async writeDeadLetters(at: string, late: boolean): Promise<number> {
    const s = this.s;
    const maxDeliver = Math.trunc(this.src.max_deliver);
    return await this.db.run(
      `INSERT INTO ${qualified("silver", s.dlq)} BY NAME
       WITH d AS (
         SELECT __seq AS seq, CASE WHEN __code = 'blank' THEN 'malformed_json' ELSE __code END
             AS code,
           CASE WHEN __code = 'blank' THEN 'empty message' ELSE __detail END AS detail,
           NULL::TIMESTAMPTZ AS et, NULL::TIMESTAMPTZ AS wm
         FROM _sluice_rows WHERE __code IS NOT NULL
         UNION ALL${
        late
          ? `
         SELECT l.__seq, 'late', ${lateDetailSql()}, l.__et, l.__wm FROM _sluice_late AS l
         UNION ALL`
          : ""
      }
         SELECT seq, 'poison', 'delivered ' || (delivered - 1) || ' times without being ' ||
             'committed (max_deliver ${maxDeliver}); dead-lettered without parsing',
           NULL, NULL
         FROM ${FRESH} WHERE poison
       )
       SELECT md5(concat_ws('|', ${literal(this.stream)}, ${literal(this.src.stream)}, d.seq))
           AS _dlq_id,
         ${literal(this.ctx.runId)} AS _run_id, ${literal(s.target)} AS _table,
         d.code AS _reason_code, d.detail AS _reason, m.line AS _payload,
         m.subject AS _source_file, d.seq AS _source_row, NULL::BIGINT AS _source_offset,
         d.et AS _event_time, d.wm AS _watermark_at_arrival,
         epoch(d.wm) - epoch(d.et) AS _lateness_seconds, ${at} AS _quarantined_at,
         ${literal(this.src.stream)} AS _js_stream, d.seq AS _js_seq, m.subject AS _js_subject,
         m.delivered AS _js_delivery_count, m.headers::JSON AS _js_headers,
         coalesce(from_base64(m.raw), encode(m.line)) AS _js_raw, ${
        literal(this.worker)
      } AS _js_worker
       FROM d JOIN ${FRESH} AS m ON m.seq = d.seq`,
    );
  }

  /** Records the committed batch in `_sluice.stream_batches` and `_sluice.jetstream_batches`. */
  async recordBatch(
    b: { counts: Counts; batchId: number; now: Date; msgs: PulledMessage[] },
    r: {
      written: number;
      deadLettered: number;
      windows: Record<string, number>;
      maxEventTimeUs: number | null;
      watermarkUs: number | null;
    },
  ): Promise<void> {
    const db = this.db;
    const { counts, batchId, now } = b;
    const { written, deadLettered, windows, maxEventTimeUs, watermarkUs } = r;
    const windowRows = Object.values(windows).reduce((a, c) => a + c, 0);
    await db.run(
      `INSERT INTO _sluice.stream_batches VALUES ($stream, $batch, 'jetstream', $run_id,
        $now::TIMESTAMPTZ, $now::TIMESTAMPTZ, 0, 0, $read, $written, $dead, 0, $by_reason::JSON,
        $bytes, ${usSql(maxEventTimeUs)}, ${usSql(watermarkUs)}, $windows, NULL)`,
      {
        stream: this.stream,
        batch: batchId,
        run_id: this.ctx.runId,
        now: now.toISOString(),
        read: counts.messages,
        written,
        dead: deadLettered,
        by_reason: JSON.stringify(counts.byReason),
        bytes: b.msgs.reduce((n, m) => n + m.data.length, 0),
        windows: windowRows,
      },
    );
    await db.run(
      `INSERT INTO _sluice.jetstream_batches VALUES ($stream, $batch, $worker, $run_id,
        $now::TIMESTAMPTZ, $messages, $written, $dead, $dups, $redelivered, $poison, $first,
        $last, $pending, NULL)`,
      {
        stream: this.stream,
        batch: batchId,
        worker: this.worker,
        run_id: this.ctx.runId,
        now: now.toISOString(),
        messages: counts.messages,
        written,
        dead: deadLettered,
        dups: counts.duplicates,
        redelivered: counts.redelivered,
        poison: counts.poison,
        first: counts.firstSeq,
        last: counts.lastSeq,
        pending: this.last?.pending ?? 0,
      },
    );
  }

  /** Continuous per-shard Parquet export (`export:`), idempotent like the landing stream's. */
  async export(upToBatch: number): Promise<void> {
    if (!this.s.export) return;
    const cp = await loadCheckpoint(this.db, this.stream, {
      runId: this.ctx.runId,
      now: this.ctx.clock.now(),
    });
    const r = await exportBatches(this.ctx, {
      stream: this.stream,
      exportedBatch: cp.exportedBatch,
      upToBatch,
    });
    if (r.files > 0) {
      this.log.info("batches exported to Parquet", {
        event: "export_published",
        batches: r.batches,
        files: r.files,
        rows: r.rows,
      });
    }
  }

  record(
    c: Counts,
    r: { written: number; deadLettered: number; windows: Record<string, number> },
    o: { batchId: number; durationMs: number; acked: number; timings: Record<string, number> },
  ): void {
    const sum = this.summary;
    sum.batches++;
    sum.received += c.messages;
    sum.written += r.written;
    sum.deadLettered += r.deadLettered;
    sum.redeliveredDuplicates += c.duplicates;
    for (const [k, v] of Object.entries(c.byReason)) sum.byReason[k] = (sum.byReason[k] ?? 0) + v;
    sum.lastBatchId = o.batchId;
    const cp = c.maxEventUs;
    if (cp !== null) {
      const wm = usToDate(cp - this.delayMs * 1000);
      if (sum.watermark === null || (wm !== null && wm > sum.watermark)) sum.watermark = wm;
    }
    const l = this.labels;
    this.m.messagesReceived.inc(l, c.messages);
    this.m.messages.inc({ ...l, outcome: "written" }, r.written);
    this.m.messages.inc({ ...l, outcome: "dead_lettered" }, r.deadLettered);
    this.m.messages.inc({ ...l, outcome: "redelivered_duplicate" }, c.duplicates);
    this.m.messages.inc({ ...l, outcome: "poison" }, c.poison);
    this.m.redeliveries.inc(l, c.redelivered);
    this.m.rate.set(l, c.messages / Math.max(0.001, o.durationMs / 1000));
    // The landing stream's metrics too, so dashboards cover both sources.
    const sm = streamMetrics(this.ctx.metrics);
    const sl = { pipeline: l.pipeline, stream: l.stream };
    const now = this.ctx.clock.now();
    sm.batches.inc(sl);
    sm.recordsRead.inc(sl, c.messages);
    sm.records.inc({ ...sl, outcome: "written" }, r.written);
    sm.records.inc({ ...sl, outcome: "dead_lettered" }, r.deadLettered);
    for (const [reason, n] of Object.entries(c.byReason)) sm.deadLetters.inc({ ...sl, reason }, n);
    for (const [window, n] of Object.entries(r.windows)) {
      sm.windowsEmitted.inc({ ...sl, window }, n);
    }
    sm.batchDuration.set(sl, o.durationMs / 1000);
    sm.batchId.set(sl, o.batchId);
    if (sum.watermark !== null) {
      sm.watermark.set(sl, sum.watermark.getTime() / 1000);
      sm.watermarkLag.set(sl, (now.getTime() - sum.watermark.getTime()) / 1000);
    }
    sm.lastCommit.set(sl, now.getTime() / 1000);
    this.log.info("batch committed", {
      event: "batch_committed",
      batch_id: o.batchId,
      messages: c.messages,
      written: r.written,
      dead_lettered: r.deadLettered,
      by_reason: c.byReason,
      redelivered: c.redelivered,
      redelivered_duplicates: c.duplicates,
      acked: o.acked,
      first_seq: c.firstSeq,
      last_seq: c.lastSeq,
      pending: this.last?.pending ?? null,
      duration_ms: Math.round(o.durationMs),
      ...o.timings,
      watermark: sum.watermark?.toISOString() ?? null,
      windows_emitted: r.windows,
    });
  }
}

/**
 * Formats a worker's summary as a few readable lines.
 *
 * @example
 * ```ts ignore
 * const shown = formatJetStreamSummary(summary);
 * ```
 */
export function formatJetStreamSummary(sum: JetStreamSummary): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const reasons = reasonsText(sum.byReason);
  const lines = [
    `stream ${sum.stream} worker ${sum.worker} (${sum.trigger}): ${n(sum.batches)} batch${
      sum.batches === 1 ? "" : "es"
    }, ${n(sum.received)} received, ${n(sum.written)} written, ${
      n(sum.deadLettered)
    } dead-lettered${reasons ? ` (${reasons})` : ""}, ${
      n(sum.redeliveredDuplicates)
    } redelivered duplicates dropped, ${n(sum.acks)} acks`,
    `last batch ${sum.lastBatchId}; watermark ${sum.watermark?.toISOString() ?? "none yet"}; ` +
    `consumer lag ${n(sum.pending)}; stopped: ${
      sum.stoppedBy === "done" ? "nothing left to read" : sum.stoppedBy
    }`,
  ];
  if (sum.dataLoss > 0) lines.push(`data loss: ${n(sum.dataLoss)} message(s) gone`);
  return lines.join("\n");
}
