/**
 * Exactly once per event through worker and node crashes, with a real
 * 3-node JetStream cluster and real worker subprocesses: while a publisher
 * keeps publishing, workers are killed with SIGKILL (20+ times) and one NATS
 * node is killed and restarted (3+ times); at the end every event id is in
 * exactly one shard exactly once (`claims: kv`: a message JetStream gave to
 * two workers stays only in the shard that claimed it; the claims lost are
 * printed), every malformed one is in a DLQ, and committed + DLQ = what
 * JetStream acknowledged to the publisher. Then: a
 * 4th worker joins and one leaves mid-run, with the same totals.
 *
 * `SLUICE_JS_EVENTS` sets the number of events (default 30,000: what fits in
 * about three minutes on two shared cores).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { loadConfig } from "../core/config/mod.ts";
import { openEngine } from "../core/engine.ts";
import { exportShards, formatShardsView, summarizeShards } from "../streaming/jetstream/shards.ts";
import { NatsCluster, skipWithoutNats } from "./_nats_cluster.ts";
import {
  idOfPayload,
  type Published,
  published,
  publishedCount,
  publishRange,
  readShard,
  startWorker,
  type WorkerProcess,
  writeWorkerConfig,
} from "./_jetstream.ts";

const ignore = skipWithoutNats();

/** A seeded PRNG (mulberry32), so a failing run can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the consumer has delivered and acked everything (every worker
 * committed). Fails only when nothing moves for `stallMs` (no fixed deadline:
 * a loaded machine is slower, not wrong).
 */
/** Waits until `n` workers have a pull waiting on the consumer (a joining worker is ready). */
async function pullersWaiting(cluster: NatsCluster, n: number, timeoutMs: number): Promise<void> {
  const nc = await cluster.connect();
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    while (Date.now() < deadline) {
      seen = (await jsm.consumers.info("ORDERS", "sluice-orders")).num_waiting;
      if (seen >= n) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`only ${seen} of ${n} workers pulling after ${timeoutMs} ms`);
  } finally {
    await nc.close();
  }
}

async function drained(
  cluster: NatsCluster,
  stallMs: number,
  workers: Map<string, WorkerProcess> = new Map(),
): Promise<void> {
  let exited = "";
  for (const [w, p] of workers) {
    p.out.then((o) => exited += `\n${w} exited ${o.code}: ${o.stderr.slice(-2000)}`);
  }
  const nc = await cluster.connect();
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    let deadline = Date.now() + stallMs;
    let last = "";
    while (true) {
      try {
        const ci = await jsm.consumers.info("ORDERS", "sluice-orders");
        if (ci.num_pending === 0 && ci.num_ack_pending === 0) return;
        const now = `${ci.num_pending}/${ci.ack_floor.stream_seq}`;
        if (now !== last) {
          last = now;
          deadline = Date.now() + stallMs;
        }
        if (Date.now() > deadline) {
          for (const p of workers.values()) {
            try {
              p.child.kill("SIGKILL");
            } catch { /* gone */ }
            await p.out;
          }
          throw new Error(
            `consumer not drained: ${ci.num_pending} pending, ${ci.num_ack_pending} unacked, ` +
              `no progress for ${stallMs} ms` + exited,
          );
        }
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
      await sleep(500);
    }
  } finally {
    await nc.close();
  }
}

/** Stops a worker with SIGTERM (it finishes its batch) and returns its exit code. */
async function stopWorker(w: WorkerProcess): Promise<number> {
  try {
    w.child.kill("SIGTERM");
  } catch { /* gone */ }
  const out = await w.out;
  if (out.code !== 0 && out.code !== 137) console.error(out.stderr);
  return out.code;
}

/** Reads every shard and checks the exactly-once totals; returns the counts. */
async function checkShards(dir: string, workers: string[], pub: Published) {
  const seen = new Map<string, string[]>();
  const note = (id: string, where: string) => seen.set(id, [...(seen.get(id) ?? []), where]);
  let committed = 0;
  let dead = 0;
  const malformed = new Set<string>();
  const byWorker: Record<string, { committed: number; dlq: number }> = {};
  const reasons: Record<string, number> = {};
  for (const w of workers) {
    const shard = await readShard(join(dir, `lake_${w}`, "sluice.duckdb"));
    byWorker[w] = { committed: 0, dlq: shard.dlq.length };
    for (const [id, n] of shard.target) {
      for (let i = 0; i < n; i++) note(id, `${w}:target`);
      committed += n;
      byWorker[w].committed += n;
    }
    for (const d of shard.dlq) {
      const id = idOfPayload(d.payload) ?? `seq${d.seq}`;
      note(id, `${w}:dlq:${d.reason}`);
      if (d.reason === "malformed_json") malformed.add(id);
      reasons[d.reason] = (reasons[d.reason] ?? 0) + 1;
      dead++;
    }
  }
  // Within a shard: every event at most once, always.
  for (const [id, where] of seen) {
    assert.equal(new Set(where.map((x) => x.split(":")[0])).size, where.length, `${id}: ${where}`);
  }
  // Across shards: nothing lost; an event in two shards is a cross-shard duplicate (JetStream
  // gave the message to two workers), counted by the shards view and dropped by the export.
  const crossShard = [...seen].filter(([, where]) => where.length > 1);
  for (const id of pub.valid) assert.ok(seen.has(id), `valid event ${id} is missing`);
  assert.deepEqual([...pub.malformed].filter((id) => !malformed.has(id)), []);
  const extra = crossShard.reduce((a, [, where]) => a + where.length - 1, 0);
  assert.equal(committed + dead - extra, publishedCount(pub));
  // Messages a worker committed but another had claimed first (`claims: kv`), removed again.
  let claimsLost = 0;
  for (const w of workers) {
    const db = await openEngine(join(dir, `lake_${w}`, "sluice.duckdb"), {
      allowedDirectories: [join(dir, `lake_${w}`)],
    });
    try {
      const row = await db.one<{ n: number }>(
        `SELECT count(*) AS n FROM _sluice.jetstream_claims_lost`,
      );
      claimsLost += Number(row?.n ?? 0);
    } finally {
      db.close();
    }
  }
  return {
    committed,
    dead,
    byWorker,
    reasons,
    crossShard: crossShard.map(([id]) => id),
    extra,
    claimsLost,
  };
}

Deno.test({
  name:
    "3 workers and a 3-node cluster with claims: every event in exactly one shard exactly once, none lost, through 20+ worker kills and 3 node kills",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const total = Number(Deno.env.get("SLUICE_JS_EVENTS") ?? 30_000);
    const seed = Number(Deno.env.get("SLUICE_JS_SEED") ?? 20261202);
    const random = rng(seed);
    const dir = await Deno.makeTempDir({ prefix: "sluice_js_crash_" });
    const cluster = await NatsCluster.start({ dir: join(dir, "nats") });
    const workers = ["w1", "w2", "w3"];
    const running = new Map<string, WorkerProcess>();
    const configs = new Map<string, string>();
    try {
      await cluster.createStream("ORDERS", ["orders.>"]);
      for (const w of workers) {
        configs.set(
          w,
          await writeWorkerConfig(dir, w, {
            servers: cluster.servers,
            batch: 500,
            ackWait: "30s",
            // Longer than the events' span, so a redelivery is never late; late events are 12 h old.
            delay: "6 hours",
          }),
        );
        running.set(w, startWorker(configs.get(w)!, w));
      }
      const nc = await cluster.connect();
      const pub = published();
      const t0 = Date.now();
      // Publishing continues during the chaos, in slices.
      const publishing = (async () => {
        const slice = 1000;
        for (let from = 0; from < total; from += slice) {
          await publishRange(nc, pub, from, Math.min(total, from + slice));
          await sleep(150);
        }
      })();
      let workerKills = 0;
      let nodeKills = 0;
      let publishDone = false;
      publishing.then(() => publishDone = true, () => publishDone = true);
      let nextNodeKill = Date.now() + 4000;
      while (!publishDone || workerKills < 20 || nodeKills < 3) {
        await sleep(600 + random() * 900);
        const w = workers[Math.floor(random() * workers.length)];
        const proc = running.get(w)!;
        try {
          proc.child.kill("SIGKILL");
        } catch { /* exited */ }
        const out = await proc.out;
        assert.ok(out.code === 137 || out.code === 0, `worker ${w} failed: ${out.stderr}`);
        workerKills++;
        running.set(w, startWorker(configs.get(w)!, w));
        if (Date.now() >= nextNodeKill && nodeKills < 3) {
          const node = 1 + Math.floor(random() * 2); // never the one the publisher seeds first
          await cluster.kill(node);
          nodeKills++;
          await sleep(1500);
          await cluster.restart(node);
          nextNodeKill = Date.now() + 5000;
        }
      }
      await publishing;
      await drained(cluster, 60_000, running);
      for (const w of workers) assert.equal(await stopWorker(running.get(w)!), 0);
      running.clear();
      await nc.close();
      const counts = await checkShards(dir, workers, pub);
      const summary = () =>
        `jetstream crash test: published ${publishedCount(pub)} (${pub.malformed.size} ` +
        `malformed, ${pub.late.size} late), committed ${counts.committed}, DLQ ${counts.dead} ` +
        `${JSON.stringify(counts.reasons)}, cross-shard duplicates ${counts.extra} ` +
        `(${counts.crossShard.slice(0, 5).join(", ")}), claims lost to another worker ` +
        `${counts.claimsLost}, worker kills ${workerKills}, node kills ${nodeKills}, ${
          Math.round((Date.now() - t0) / 1000)
        } s, seed ${seed}, per worker ${JSON.stringify(counts.byWorker)}`;
      console.log(summary());
      // claims: kv — every event id in exactly one shard exactly once.
      assert.equal(counts.extra, 0, `cross-shard duplicates: ${counts.crossShard.join(", ")}`);
      assert.equal(counts.committed + counts.dead, publishedCount(pub));
      const view = await summarizeShards(await loadConfig(configs.get("w1")!), {
        shards: workers.map((w) => join(dir, `lake_${w}`, "sluice.duckdb")),
      });
      console.log(formatShardsView(view));
      assert.equal(view.crossShardDuplicates, counts.extra);
      assert.equal(
        view.totals.committed + view.totals.deadLettered - view.crossShardDuplicates,
        publishedCount(pub),
      );
      // The exported dataset holds every committed event exactly once.
      const dataset = join(dir, "dataset");
      const exported = await exportShards(await loadConfig(configs.get("w1")!), {
        shards: workers.map((w) => join(dir, `lake_${w}`, "sluice.duckdb")),
        out: dataset,
      });
      const db = await openEngine(":memory:", { allowedDirectories: [dataset] });
      try {
        const row = await db.one<{ n: number; ids: number }>(
          `SELECT count(*) AS n, count(DISTINCT event_id) AS ids
           FROM read_parquet('${dataset}/**/*.parquet', hive_partitioning = true)`,
        );
        assert.equal(Number(row?.n), Number(row?.ids));
        assert.equal(Number(row?.ids) + exported.crossShardDuplicatesDropped, counts.committed);
      } finally {
        db.close();
      }
      assert.equal(exported.crossShardDuplicatesDropped, 0);
      assert.ok(workerKills >= 20 && nodeKills >= 3);
    } finally {
      for (const w of running.values()) {
        try {
          w.child.kill("SIGKILL");
        } catch { /* gone */ }
        await w.out;
      }
      await cluster.stop();
    }
  },
});

Deno.test({
  name: "a 4th worker joining and one leaving mid-run leave the same totals",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const total = 8000;
    const dir = await Deno.makeTempDir({ prefix: "sluice_js_rebalance_" });
    const cluster = await NatsCluster.start({ dir: join(dir, "nats") });
    const running = new Map<string, WorkerProcess>();
    try {
      await cluster.createStream("ORDERS", ["orders.>"]);
      const start = async (w: string) => {
        const cfg = await writeWorkerConfig(dir, w, { servers: cluster.servers, batch: 300 });
        running.set(w, startWorker(cfg, w));
      };
      for (const w of ["w1", "w2", "w3"]) await start(w);
      const nc = await cluster.connect();
      const pub = published();
      await publishRange(nc, pub, 0, total / 2);
      await drained(cluster, 60_000, running);
      await start("w4");
      // w4 has joined (its pull waits beside the others') before the next events come.
      await pullersWaiting(cluster, 4, 60_000);
      await publishRange(nc, pub, total / 2, (total * 3) / 4);
      // w1 leaves mid-run: SIGTERM finishes its batch, commits and acks; it is gone for good.
      assert.equal(await stopWorker(running.get("w1")!), 0);
      running.delete("w1");
      await publishRange(nc, pub, (total * 3) / 4, total);
      await drained(cluster, 120_000);
      for (const w of [...running.keys()]) assert.equal(await stopWorker(running.get(w)!), 0);
      running.clear();
      await nc.close();
      const counts = await checkShards(dir, ["w1", "w2", "w3", "w4"], pub);
      console.log(
        `jetstream rebalance test: published ${
          publishedCount(pub)
        }, committed ${counts.committed}, ` +
          `DLQ ${counts.dead}, per worker ${JSON.stringify(counts.byWorker)}`,
      );
      assert.ok(counts.byWorker.w4.committed > 0, "the 4th worker took part");
      // The shards as one: merged view, and one hive-partitioned Parquet dataset.
      const config = await loadConfig(join(dir, "w1.yaml"));
      const shards = ["w1", "w2", "w3", "w4"].map((w) => join(dir, `lake_${w}`, "sluice.duckdb"));
      const view = await summarizeShards(config, { shards });
      console.log(formatShardsView(view));
      assert.equal(view.totals.committed, counts.committed);
      assert.equal(view.totals.deadLettered, counts.dead);
      assert.equal(view.crossShardDuplicates, 0);
      assert.deepEqual(view.shards.map((v) => v.worker), ["w1", "w2", "w3", "w4"]);
      const dataset = join(dir, "dataset");
      const exported = await exportShards(config, { shards, out: dataset });
      assert.equal(Object.values(exported.rows).reduce((a, c) => a + c, 0), counts.committed);
      const db = await openEngine(":memory:", { allowedDirectories: [dataset] });
      try {
        const row = await db.one<{ n: number; workers: number; ids: number; dates: number }>(
          `SELECT count(*) AS n, count(DISTINCT worker) AS workers,
             count(DISTINCT event_id) AS ids, count(DISTINCT date) AS dates
           FROM read_parquet('${dataset}/**/*.parquet', hive_partitioning = true)`,
        );
        assert.equal(Number(row?.n), counts.committed);
        assert.equal(Number(row?.ids), counts.committed);
        const active = Object.values(counts.byWorker).filter((w) => w.committed > 0).length;
        assert.equal(Number(row?.workers), active);
        assert.ok(Number(row?.dates) >= 1);
      } finally {
        db.close();
      }
      for await (const e of Deno.readDir(join(dataset, "worker=w1"))) {
        assert.match(e.name, /^date=\d{4}-\d{2}-\d{2}$/);
      }
    } finally {
      for (const w of running.values()) {
        try {
          w.child.kill("SIGKILL");
        } catch { /* gone */ }
        await w.out;
      }
      await cluster.stop();
    }
  },
});
