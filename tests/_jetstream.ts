/**
 * Helpers for the JetStream tests: worker configs (one lake per worker),
 * a publisher that counts what JetStream acknowledged, worker subprocesses,
 * and reading every shard afterwards.
 *
 * @module
 */
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { openEngine } from "../core/engine.ts";

/** Knobs of a worker config. */
export interface WorkerYaml {
  servers: string[];
  stream?: string;
  consumer?: string;
  batch?: number;
  ackWait?: string;
  maxDeliver?: number;
  failOnDataLoss?: boolean;
  delay?: string;
  extra?: string;
}

/** A pipeline.yaml whose stream is a JetStream source, with lake `./lake_<worker>`. */
export function workerYaml(worker: string, o: WorkerYaml): string {
  return [
    "pipeline: shop",
    `lake: ./lake_${worker}`,
    "engine: { threads: 1 }",
    "streaming:",
    "  source:",
    "    type: jetstream",
    `    servers: [${o.servers.join(", ")}]`,
    `    stream: ${o.stream ?? "ORDERS"}`,
    '    subject: "orders.>"',
    `    consumer: ${o.consumer ?? "sluice-orders"}`,
    `    batch: ${o.batch ?? 500}`,
    "    max_wait: 2s",
    `    ack_wait: ${o.ackWait ?? "30s"}`,
    `    max_deliver: ${o.maxDeliver ?? 5}`,
    "  columns:",
    "    event_id: { type: VARCHAR, nullable: false }",
    "    event_time: { type: TIMESTAMPTZ }",
    "    country: { type: VARCHAR }",
    '    amount: { type: "DECIMAL(12,2)" }',
    "  target: events",
    "  dlq: events__dlq",
    "  checkpoint: events_v1",
    `  watermark: { column: event_time, delay: ${o.delay ?? "1 hour"} }`,
    `  fail_on_data_loss: ${o.failOnDataLoss ?? true}`,
    ...(o.extra ? [o.extra] : []),
    "",
  ].join("\n");
}

/** Writes `<dir>/<worker>.yaml` and returns its path. */
export async function writeWorkerConfig(
  dir: string,
  worker: string,
  o: WorkerYaml,
): Promise<string> {
  const file = join(dir, `${worker}.yaml`);
  await Deno.writeTextFile(file, workerYaml(worker, o));
  return file;
}

/** The base event time: 2026-01-01T00:00:00Z. */
export const BASE_MS = Date.UTC(2026, 0, 1);

/** What the publisher sent and JetStream acknowledged. */
export interface Published {
  /** Ids of valid events (late ones included). */
  valid: Set<string>;
  /** Ids of late events (event time hours behind). */
  late: Set<string>;
  /** Ids of malformed events (the id is inside the bad payload). */
  malformed: Set<string>;
}

/** An empty publish record. */
export function published(): Published {
  return { valid: new Set(), late: new Set(), malformed: new Set() };
}

/** Total events JetStream acknowledged. */
export function publishedCount(p: Published): number {
  return p.valid.size + p.malformed.size;
}

/**
 * Publishes events `from..to-1` on `orders.<n % 4>`: every 200th malformed,
 * every 97th late (12 hours behind). Each publish is retried until JetStream
 * acknowledges it; the message id (the event id) makes a retry a no-op on
 * the server, so the record counts each event once.
 */
export async function publishRange(
  nc: NatsConnection,
  into: Published,
  from: number,
  to: number,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const js = jetstream(nc, { timeout: 5000 });
  const inflight: Promise<void>[] = [];
  const one = async (i: number) => {
    const id = `e${i}`;
    const malformed = i % 200 === 7;
    const late = !malformed && i % 97 === 5 && i > 1000;
    const payload = malformed ? `{"event_id": "${id}", broken` : JSON.stringify({
      event_id: id,
      event_time: new Date(BASE_MS + i * 100 - (late ? 12 * 3600_000 : 0)).toISOString(),
      country: ["DE", "FR", "IT"][i % 3],
      amount: (i % 1000) / 10,
    });
    for (let attempt = 0;; attempt++) {
      try {
        await js.publish(`orders.${i % 4}`, payload, { msgID: id });
        break;
      } catch (e) {
        if (attempt > 400) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (malformed) into.malformed.add(id);
    else {
      into.valid.add(id);
      if (late) into.late.add(id);
    }
  };
  for (let i = from; i < to; i++) {
    if (options.signal?.aborted) break;
    inflight.push(one(i));
    if (inflight.length >= 256) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
}

/** A running worker subprocess. */
export interface WorkerProcess {
  worker: string;
  child: Deno.ChildProcess;
  out: Promise<{ code: number; stdout: string; stderr: string }>;
}

const WORKER_SCRIPT = new URL("./_jetstream_worker.ts", import.meta.url).pathname;

/** Starts a worker process (real subprocess, real DuckDB file, real NATS). */
export function startWorker(
  configFile: string,
  worker: string,
  options: { trigger?: string; crashAt?: string } = {},
): WorkerProcess {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      "--node-modules-dir=manual",
      "--allow-ffi=./node_modules",
      "--allow-read",
      "--allow-write",
      "--allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
      "--allow-net=127.0.0.1",
      WORKER_SCRIPT,
      configFile,
      worker,
      options.trigger ?? "interval",
    ],
    env: options.crashAt ? { SLUICE_CRASH_AT: options.crashAt } : {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = child.output().then((o) => ({
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  }));
  return { worker, child, out };
}

/** What one shard holds. */
export interface ShardContents {
  /** Event ids in the target, with their count. */
  target: Map<string, number>;
  /** DLQ payloads / ids by reason. */
  dlq: { reason: string; payload: string; seq: number }[];
}

/** Reads a shard's target ids and dead letters (the worker must be stopped). */
export async function readShard(dbFile: string): Promise<ShardContents> {
  const dir = dbFile.replace(/\/[^/]+$/, "");
  const db = await openEngine(dbFile, { allowedDirectories: [dir] });
  try {
    const target = new Map<string, number>();
    const rows = await db.all<{ id: string; n: number }>(
      `SELECT event_id AS id, count(*) AS n FROM silver.events GROUP BY 1`,
    );
    for (const r of rows) target.set(r.id, Number(r.n));
    const dlq = (await db.all<{ reason: string; payload: string; seq: number }>(
      `SELECT _reason_code AS reason, _payload AS payload, _js_seq AS seq FROM silver.events__dlq`,
    )).map((r) => ({ reason: r.reason, payload: r.payload, seq: Number(r.seq) }));
    return { target, dlq };
  } finally {
    db.close();
  }
}

/** The event id inside a dead letter's payload. */
export function idOfPayload(payload: string): string | undefined {
  return /"event_id":\s*"([^"]+)"/.exec(payload)?.[1];
}
