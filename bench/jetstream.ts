/**
 * The `jetstream` bench pair: events per second of 1, 2 and 3 Sluice
 * JetStream workers (real subprocesses, each with its own lake) against a
 * plain consumer loop that pulls, inserts (DuckDB appender) and acks with
 * the same batch size, on a real 3-node `nats-server` cluster on loopback.
 * Each side reads the same backlog through its own fresh durable consumer.
 *
 * Worker time is the workers' own run time (connect to last ack, as the
 * summary reports it), not process start-up. On this machine 3 workers share
 * 2 cores with the 3 NATS nodes: the curve shows contention, not scale-out.
 *
 * @module
 */
import { join } from "node:path";
import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { openEngine } from "../mod.ts";
import { NATS_SERVER, NatsCluster } from "../tests/_nats_cluster.ts";

/** What the pair measured. */
export interface JetStreamPairResult {
  messages: number;
  batch: number;
  /** Rounds of plain, 1, 2, 3 workers, one after another; medians are reported. */
  rounds: number;
  /** Median over the rounds; `runs_seconds` has each round's. Acks confirmed (`ackAck`), as Sluice's. */
  plain: { seconds: number; events_per_second: number; runs_seconds: number[] };
  /** The same loop acking without confirmation (`ack()` and a flush): a lower bound on cost. */
  plain_unconfirmed: { seconds: number; events_per_second: number; runs_seconds: number[] };
  /** Median events/s over the rounds; `ratio` is the median of `round_ratios` (paired by round). */
  workers: {
    workers: number;
    seconds: number;
    events_per_second: number;
    ratio: number;
    runs_seconds: number[];
    round_ratios: number[];
    /** Median of the rounds' ratios against the unconfirmed-ack loop. */
    ratio_unconfirmed: number;
  }[];
  target_ratio: number;
  met: boolean;
  caveat: string;
  /** Peak RSS of one worker draining a large backlog (`SLUICE_BENCH_JS_BACKLOG`, 0 skips it). */
  rss?: JetStreamRssResult;
}

function yaml(worker: string, servers: string[], consumer: string, batch: number): string {
  return [
    "pipeline: bench",
    `lake: ./lake_${consumer}_${worker}`,
    "engine: { threads: 1 }",
    "streaming:",
    "  source:",
    "    type: jetstream",
    `    servers: [${servers.join(", ")}]`,
    "    stream: BENCH",
    `    consumer: ${consumer}`,
    `    batch: ${batch}`,
    "    max_wait: 2s",
    "    ack_wait: 60s",
    "  columns:",
    "    event_id: { type: VARCHAR, nullable: false }",
    "    event_time: { type: TIMESTAMPTZ }",
    "    country: { type: VARCHAR }",
    '    amount: { type: "DECIMAL(12,2)" }',
    "  target: events",
    "  dlq: events__dlq",
    "  checkpoint: events_v1",
    "  watermark: { column: event_time, delay: 1 day }",
    "  fail_on_data_loss: true",
    "",
  ].join("\n");
}

async function plainLoop(
  servers: string[],
  work: string,
  options: { messages: number; batch: number; consumer: string; ack?: "confirmed" | "unconfirmed" },
): Promise<number> {
  const nc = await connect({ servers, timeout: 5000 });
  const db = await openEngine(join(work, `${options.consumer}.duckdb`), {
    allowedDirectories: [work],
  });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add("BENCH", {
      durable_name: options.consumer,
      ack_policy: AckPolicy.Explicit,
    });
    await db.run(`CREATE TABLE events (seq BIGINT, payload VARCHAR)`);
    const c = await jetstream(nc).consumers.get("BENCH", options.consumer);
    const t0 = performance.now();
    let n = 0;
    while (n < options.messages) {
      const msgs: JsMsg[] = [];
      for await (const m of await c.fetch({ max_messages: options.batch, expires: 2000 })) {
        msgs.push(m);
      }
      await db.transaction(() =>
        db.append("events", (row) => {
          for (const m of msgs) {
            row.bigint(m.seq);
            row.varchar(m.string());
            row.endRow();
          }
        })
      );
      if (options.ack === "unconfirmed") {
        // The cheapest ack there is: sent, flushed, never confirmed.
        for (const m of msgs) m.ack();
        await nc.flush();
      } else {
        await Promise.all(msgs.map((m) => m.ackAck()));
      }
      n += msgs.length;
    }
    const seconds = (performance.now() - t0) / 1000;
    // Every side starts on a cluster that carries no other consumer's state.
    await jsm.consumers.delete("BENCH", options.consumer);
    return seconds;
  } finally {
    db.close();
    await nc.close();
  }
}

/** `deno run` arguments of one worker process on `cfg`. */
function workerArgs(cfg: string, worker: string): string[] {
  return [
    "run",
    "--no-prompt",
    "--node-modules-dir=manual",
    `--allow-ffi=${new URL("../node_modules", import.meta.url).pathname}`,
    "--allow-read",
    "--allow-write",
    "--allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
    "--allow-net=127.0.0.1",
    new URL("../tests/_jetstream_worker.ts", import.meta.url).pathname,
    cfg,
    worker,
    "available-now",
  ];
}

/**
 * The plain loop in a fresh process, as each worker is: neither side gets the
 * bench process's warm JIT or its grown heap. Returns its own loop time.
 */
async function plainProcess(
  servers: string[],
  work: string,
  options: { messages: number; batch: number; consumer: string; ack?: "confirmed" | "unconfirmed" },
): Promise<number> {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      `--allow-ffi=${new URL("../node_modules", import.meta.url).pathname}`,
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-net=127.0.0.1",
      new URL(import.meta.url).pathname,
      "--plain",
      JSON.stringify({ servers, work, ...options }),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (out.code !== 0) throw new Error(`plain loop failed: ${dec.decode(out.stderr)}`);
  return Number(JSON.parse(dec.decode(out.stdout).trim().split("\n").at(-1)!).seconds);
}

async function sluiceWorkers(
  cluster: NatsCluster,
  work: string,
  options: { workers: number; batch: number; consumer: string },
): Promise<number> {
  const procs = [];
  for (let i = 1; i <= options.workers; i++) {
    const cfg = join(work, `${options.consumer}_w${i}.yaml`);
    await Deno.writeTextFile(cfg, yaml(`w${i}`, cluster.servers, options.consumer, options.batch));
    procs.push(
      new Deno.Command("deno", {
        args: workerArgs(cfg, `w${i}`),
        stdout: "piped",
        stderr: "piped",
      }).output(),
    );
  }
  let seconds = 0;
  for (const p of await Promise.all(procs)) {
    const text = new TextDecoder().decode(p.stdout).trim().split("\n").at(-1) ?? "{}";
    if (p.code !== 0) throw new Error(`worker failed: ${new TextDecoder().decode(p.stderr)}`);
    // Time in batches (pull to confirmed ack): not process start-up, nor the last empty pull.
    seconds = Math.max(seconds, JSON.parse(text).busyMs / 1000);
  }
  // Every side starts on a cluster that carries no other consumer's state.
  const nc = await cluster.connect();
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete("BENCH", options.consumer);
    await jsm.streams.delete(`KV_sluice-claims-${options.consumer}`); // its claims bucket
  } finally {
    await nc.close();
  }
  return seconds;
}

/** Publishes `messages` small JSON events on `bench.orders`, 1000 in flight. */
async function publishEvents(nc: NatsConnection, messages: number): Promise<void> {
  const js = jetstream(nc, { timeout: 30_000 });
  const base = Date.UTC(2026, 0, 1);
  for (let i = 0; i < messages; i += 1000) {
    const part = [];
    for (let j = i; j < Math.min(messages, i + 1000); j++) {
      part.push(js.publish(
        "bench.orders",
        JSON.stringify({
          event_id: `e${j}`,
          event_time: new Date(base + j * 10).toISOString(),
          country: ["DE", "FR", "IT"][j % 3],
          amount: (j % 1000) / 10,
        }),
      ));
    }
    await Promise.all(part);
  }
}

/**
 * V8 flags that bound a stream worker's heap (docs/streaming.md): a 2 MB
 * semi-space and a 128 MB old space. The pair's throughput runs keep V8's
 * defaults; the RSS drain runs both ways.
 */
export const WORKER_V8_FLAGS = "--max-semi-space-size=2,--max-old-space-size=128";

/** Peak RSS and rate of one drain of the backlog by one worker. */
export interface JetStreamDrain {
  /** Peak resident set of the worker process (`/usr/bin/time -f %M`), MiB. */
  peak_rss_mib: number;
  /** Rows the worker wrote (must be the backlog). */
  written: number;
  /** The worker's own rate (time in batches). */
  events_per_second: number;
}

/** Peak RSS of one worker draining a backlog, with bounded V8 flags and with V8's defaults. */
export interface JetStreamRssResult extends JetStreamDrain {
  /** Messages in the backlog when the worker started. */
  backlog: number;
  /** Messages per pull (= per commit). */
  batch: number;
  /** The V8 flags of the measured worker (`peak_rss_mib` and the rate above). */
  v8_flags: string;
  /** The bound the issue asks for, MiB. */
  limit_mib: number;
  /** peak_rss_mib <= limit_mib. */
  met: boolean;
  /** The same drain (its own consumer and lake) with V8's default heap sizing. */
  v8_defaults: JetStreamDrain;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Publishes a `backlog` of small events into a single-node `nats-server -js`
 * (loopback, temporary store), then drains it with ONE worker process run
 * under `/usr/bin/time -f %M` and reports its peak RSS: flow control means a
 * worker holds one batch, whatever the backlog. Drained twice, each time by
 * its own consumer into its own lake: with {@linkcode WORKER_V8_FLAGS} (the
 * reported figure) and with V8's default heap sizing.
 *
 * @example
 * ```ts ignore
 * const r = await jetstreamRss({ work: "/tmp/bench_js_rss", backlog: 1_000_000, batch: 1000 });
 * ```
 */
export async function jetstreamRss(
  options: { work: string; backlog: number; batch: number; log?: (line: string) => void },
): Promise<JetStreamRssResult> {
  const log = options.log ?? (() => {});
  await Deno.mkdir(options.work, { recursive: true });
  const port = freePort();
  const server = new Deno.Command(NATS_SERVER, {
    args: ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", join(options.work, "store")],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const url = `nats://127.0.0.1:${port}`;
    let nc: NatsConnection | undefined;
    for (let i = 0; nc === undefined; i++) {
      try {
        nc = await connect({ servers: url, timeout: 1000 });
        await (await jetstreamManager(nc)).getAccountInfo();
      } catch (e) {
        await nc?.close().catch(() => {});
        nc = undefined;
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const jsm = await jetstreamManager(nc, { timeout: 30_000 });
    await jsm.streams.add({
      name: "BENCH",
      subjects: ["bench.>"],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
    });
    const t0 = performance.now();
    await publishEvents(nc, options.backlog);
    await nc.close();
    log(
      `  jetstream rss: published ${options.backlog.toLocaleString("en-US")} events in ${
        ((performance.now() - t0) / 1000).toFixed(0)
      } s`,
    );
    const drain = async (name: string, v8Flags?: string): Promise<JetStreamDrain> => {
      const cfg = join(options.work, `${name}.yaml`);
      await Deno.writeTextFile(cfg, yaml("w1", [url], name, options.batch));
      const args = workerArgs(cfg, "w1");
      if (v8Flags) args.splice(1, 0, `--v8-flags=${v8Flags}`);
      const p = await new Deno.Command("/usr/bin/time", {
        args: ["-f", "%M", "deno", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(p.stderr).trim();
      if (p.code !== 0) throw new Error(`worker failed: ${err}`);
      const kib = Number(err.split("\n").at(-1));
      const summary = JSON.parse(
        new TextDecoder().decode(p.stdout).trim().split("\n").at(-1) ?? "{}",
      );
      const mib = kib / 1024;
      const eps = summary.written / (summary.busyMs / 1000);
      log(
        `  jetstream rss: peak ${mib.toFixed(0)} MiB, ${Math.round(eps)} events/s for a ${
          options.backlog.toLocaleString("en-US")
        } backlog (${v8Flags ? `--v8-flags=${v8Flags}` : "V8 defaults"})`,
      );
      return {
        peak_rss_mib: Math.round(mib * 10) / 10,
        written: summary.written,
        events_per_second: eps,
      };
    };
    const bounded = await drain("rss_bounded", WORKER_V8_FLAGS);
    const defaults = await drain("rss_defaults");
    return {
      backlog: options.backlog,
      batch: options.batch,
      v8_flags: WORKER_V8_FLAGS,
      ...bounded,
      limit_mib: 300,
      met: bounded.peak_rss_mib <= 300,
      v8_defaults: defaults,
    };
  } finally {
    try {
      server.kill("SIGTERM");
    } catch { /* gone */ }
    await server.status;
  }
}

/**
 * Runs the pair: publishes `messages` events once, then measures the plain
 * loop and 1, 2, 3 Sluice workers, each on its own consumer.
 *
 * @example
 * ```ts ignore
 * const r = await jetstreamPair({ work: "/tmp/bench_js", messages: 50_000, batch: 1000 });
 * ```
 */
export async function jetstreamPair(
  options: {
    work: string;
    messages: number;
    batch: number;
    rounds?: number;
    log?: (line: string) => void;
  },
): Promise<JetStreamPairResult> {
  const rounds = Math.max(1, options.rounds ?? 3);
  const log = options.log ?? (() => {});
  await Deno.mkdir(options.work, { recursive: true });
  const cluster = await NatsCluster.start({ dir: join(options.work, "nats") });
  try {
    await cluster.createStream("BENCH", ["bench.>"]);
    const nc = await cluster.connect();
    await publishEvents(nc, options.messages);
    await nc.close();
    log(`  jetstream: published ${options.messages.toLocaleString("en-US")} events`);
    // Rounds of plain, 1, 2, 3 workers: a noisy minute hits one round, not one side.
    const plainRuns: number[] = [];
    const bareRuns: number[] = [];
    const workerRuns: Record<number, number[]> = { 1: [], 2: [], 3: [] };
    for (let round = 1; round <= rounds; round++) {
      const plain = await plainProcess(cluster.servers, options.work, {
        messages: options.messages,
        batch: options.batch,
        consumer: `plain_r${round}`,
      });
      plainRuns.push(plain);
      const bare = await plainProcess(cluster.servers, options.work, {
        messages: options.messages,
        batch: options.batch,
        consumer: `bare_r${round}`,
        ack: "unconfirmed",
      });
      bareRuns.push(bare);
      const line = [
        `plain ${Math.round(options.messages / plain)}`,
        `unconfirmed acks ${Math.round(options.messages / bare)}`,
      ];
      for (const n of [1, 2, 3]) {
        const s = await sluiceWorkers(cluster, options.work, {
          workers: n,
          batch: options.batch,
          consumer: `sluice${n}_r${round}`,
        });
        workerRuns[n].push(s);
        line.push(`${n}w ${Math.round(options.messages / s)} (${(plain / s).toFixed(2)})`);
      }
      log(`  jetstream round ${round}/${rounds}, events/s: ${line.join(", ")}`);
    }
    const plainSeconds = median(plainRuns);
    const plainEps = options.messages / plainSeconds;
    log(`  jetstream plain pull-insert-ack loop: ${Math.round(plainEps)} events/s (median)`);
    const bareSeconds = median(bareRuns);
    log(
      `  jetstream plain loop, unconfirmed acks: ${
        Math.round(options.messages / bareSeconds)
      } events/s (median)`,
    );
    const workers = [1, 2, 3].map((n) => {
      const s = median(workerRuns[n]);
      const eps = options.messages / s;
      // Paired: each round's ratio against the plain loop of the same round, then the median.
      const roundRatios = workerRuns[n].map((w, i) => plainRuns[i] / w);
      const ratio = median(roundRatios);
      const ratioBare = median(workerRuns[n].map((w, i) => bareRuns[i] / w));
      log(
        `  jetstream sluice ${n} worker(s): ${Math.round(eps)} events/s (median), ratio ${
          ratio.toFixed(2)
        } (median of the rounds' ratios; ${ratioBare.toFixed(2)} against unconfirmed acks)`,
      );
      return {
        workers: n,
        seconds: s,
        events_per_second: eps,
        ratio,
        runs_seconds: workerRuns[n],
        round_ratios: roundRatios,
        ratio_unconfirmed: ratioBare,
      };
    });
    const backlog = Number(Deno.env.get("SLUICE_BENCH_JS_BACKLOG") ?? 1_000_000);
    const rss = backlog > 0
      ? await jetstreamRss({ work: join(options.work, "rss"), backlog, batch: options.batch, log })
      : undefined;
    return {
      messages: options.messages,
      batch: options.batch,
      rounds,
      plain: { seconds: plainSeconds, events_per_second: plainEps, runs_seconds: plainRuns },
      plain_unconfirmed: {
        seconds: bareSeconds,
        events_per_second: options.messages / bareSeconds,
        runs_seconds: bareRuns,
      },
      workers,
      target_ratio: 0.8,
      met: workers[0].ratio >= 0.8,
      caveat: "3 workers and 3 NATS nodes share 2 cores here: more workers add contention",
      ...(rss ? { rss } : {}),
    };
  } finally {
    await cluster.stop();
  }
}

if (import.meta.main && Deno.args[0] === "--plain") {
  // The plain loop's own process (see plainProcess).
  const o = JSON.parse(Deno.args[1]);
  console.log(JSON.stringify({ seconds: await plainLoop(o.servers, o.work, o) }));
} else if (import.meta.main) {
  // deno run ... bench/jetstream.ts [MESSAGES [BATCH [ROUNDS]]]  |  ... --backlog 1000000
  const work = await Deno.makeTempDir({ prefix: "sluice_bench_js_" });
  const at = Deno.args.indexOf("--backlog");
  const r = at >= 0
    ? await jetstreamRss({
      work,
      backlog: Number(Deno.args[at + 1] ?? 1_000_000),
      batch: 1000,
      log: console.log,
    })
    : await jetstreamPair({
      work,
      messages: Number(Deno.args[0] ?? 50_000),
      batch: Number(Deno.args[1] ?? 1000),
      rounds: Number(Deno.args[2] ?? 3),
      log: console.log,
    });
  console.log(JSON.stringify(r, null, 2));
  await Deno.remove(work, { recursive: true });
}
