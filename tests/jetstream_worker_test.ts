/**
 * A JetStream worker against a real 3-node cluster: rows, dead letters and
 * sequences commit together; redeliveries of committed messages are
 * dropped; poison messages end in the DLQ; a crash between commit and ack
 * duplicates nothing; a purge past the committed floor is data loss.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AckPolicy } from "@nats-io/jetstream";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsCluster, skipWithoutNats } from "./_nats_cluster.ts";
import {
  idOfPayload,
  published,
  publishedCount,
  publishRange,
  readShard,
  startWorker,
  writeWorkerConfig,
} from "./_jetstream.ts";
import { loadConfig } from "../core/config/mod.ts";
import { openEngine } from "../mod.ts";
import type { JetStreamingConfig } from "../core/config/mod.ts";
import { claim, ensureClaims, type JetStreamLink } from "../streaming/jetstream/_client.ts";

const ignore = skipWithoutNats();

async function withCluster(fn: (c: NatsCluster, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice_js_" });
  const cluster = await NatsCluster.start({ dir: join(dir, "nats") });
  try {
    await cluster.createStream("ORDERS", ["orders.>"]);
    await fn(cluster, dir);
  } finally {
    await cluster.stop();
  }
}

Deno.test({
  name: "a JetStream worker commits every message once: rows to the target, malformed to the DLQ",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster, dir) => {
      const nc = await cluster.connect();
      const pub = published();
      await publishRange(nc, pub, 0, 3000);
      await nc.close();
      const cfg = await writeWorkerConfig(dir, "w1", { servers: cluster.servers });
      const w = startWorker(cfg, "w1", { trigger: "available-now" });
      const out = await w.out;
      assert.equal(out.code, 0, out.stderr);
      const summary = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
      const shard = await readShard(join(dir, "lake_w1", "sluice.duckdb"));
      const late = shard.dlq.filter((d) => d.reason === "late").map((d) => idOfPayload(d.payload));
      const malformed = shard.dlq.filter((d) => d.reason === "malformed_json");
      assert.equal(shard.target.size + shard.dlq.length, publishedCount(pub));
      assert.equal(malformed.length, pub.malformed.size);
      for (const d of malformed) assert.ok(pub.malformed.has(idOfPayload(d.payload)!));
      assert.deepEqual(new Set(late), pub.late);
      for (const [id, n] of shard.target) {
        assert.equal(n, 1, id);
        assert.ok(pub.valid.has(id) && !pub.late.has(id), id);
      }
      assert.equal(summary.written, shard.target.size);
      assert.equal(summary.acks, publishedCount(pub));
    });
  },
});

Deno.test({
  name:
    "a dead letter keeps the message's exact bytes: invalid UTF-8, a byte order mark, plain text",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster, dir) => {
      const nc = await cluster.connect();
      const js = jetstream(nc, { timeout: 5000 });
      const enc = new TextEncoder();
      const good = (id: string) =>
        JSON.stringify({ event_id: id, event_time: "2026-01-01T00:00:00Z", amount: 1 });
      const sent: Record<string, Uint8Array> = {
        plain: enc.encode('{"event_id": "x1", broken'),
        not_utf8: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
        bom_broken: new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode("{oops")]),
        unicode: enc.encode('{"event_id": "ü→€", "event_time": "not a time"}'),
      };
      for (const [name, bytes] of Object.entries(sent)) {
        await js.publish(`orders.${name}`, bytes);
      }
      await js.publish("orders.ok", good("ok1"));
      await js.publish(
        "orders.bom_ok",
        new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(good("ok2"))]),
      );
      await nc.close();
      const cfg = await writeWorkerConfig(dir, "w1", { servers: cluster.servers });
      const out = await startWorker(cfg, "w1", { trigger: "available-now" }).out;
      assert.equal(out.code, 0, out.stderr);
      const file = join(dir, "lake_w1", "sluice.duckdb");
      const db = await openEngine(file, { allowedDirectories: [join(dir, "lake_w1")] });
      try {
        const rows = await db.all<{ subject: string; raw: string; reason: string }>(
          `SELECT _js_subject AS subject, to_base64(_js_raw) AS raw, _reason_code AS reason
           FROM silver.events__dlq ORDER BY _js_seq`,
        );
        assert.deepEqual(rows.map((r) => r.subject), Object.keys(sent).map((n) => `orders.${n}`));
        for (const r of rows) {
          const want = sent[r.subject.slice("orders.".length)];
          assert.equal(r.raw, btoa(String.fromCharCode(...want)), r.subject);
        }
        const ok = await db.all<{ id: string }>(
          `SELECT event_id AS id FROM silver.events ORDER BY 1`,
        );
        assert.deepEqual(
          ok.map((r) => r.id),
          ["ok1", "ok2"],
          "a leading BOM is not part of the JSON",
        );
      } finally {
        db.close();
      }
    });
  },
});

Deno.test({
  name: "a crash between commit and ack neither loses nor duplicates: the redelivery is dropped",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster, dir) => {
      const nc = await cluster.connect();
      const pub = published();
      await publishRange(nc, pub, 0, 1200);
      const cfg = await writeWorkerConfig(dir, "w1", {
        servers: cluster.servers,
        batch: 400,
        ackWait: "2s",
      });
      // Killed right after the second batch's commit, before its ack.
      const crashed = await startWorker(cfg, "w1", { crashAt: "committed@2" }).out;
      assert.equal(crashed.code, 137, crashed.stderr);
      // The unacked batch comes back after ack_wait; the restarted worker drops it as a duplicate
      // (or acks it at start from its own record of unconfirmed acks).
      await new Promise((r) => setTimeout(r, 2500));
      const out = await startWorker(cfg, "w1", { trigger: "available-now" }).out;
      assert.equal(out.code, 0, out.stderr);
      const shard = await readShard(join(dir, "lake_w1", "sluice.duckdb"));
      assert.equal(shard.target.size + shard.dlq.length, publishedCount(pub));
      for (const [id, n] of shard.target) assert.equal(n, 1, id);
      const jsm = await jetstreamManager(nc);
      const ci = await jsm.consumers.info("ORDERS", "sluice-orders");
      assert.equal(ci.num_pending, 0);
      assert.equal(ci.num_ack_pending, 0);
      await nc.close();
    });
  },
});

Deno.test({
  name: "a message delivered max_deliver times without a commit is dead-lettered as poison",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster, dir) => {
      const nc = await cluster.connect();
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      await js.publish(
        "orders.1",
        JSON.stringify({ event_id: "p1", event_time: "2026-01-01T00:00:00Z" }),
      );
      // Three deliveries that fail (a client that naks instead of committing).
      await jsm.consumers.add("ORDERS", {
        durable_name: "sluice-orders",
        ack_policy: AckPolicy.Explicit,
        ack_wait: 30_000_000_000,
        filter_subject: "orders.>",
      });
      const c = await js.consumers.get("ORDERS", "sluice-orders");
      for (let i = 0; i < 3; i++) {
        const m = await c.next({ expires: 5000 });
        assert.ok(m);
        m.nak();
      }
      const cfg = await writeWorkerConfig(dir, "w1", { servers: cluster.servers, maxDeliver: 3 });
      const out = await startWorker(cfg, "w1", { trigger: "available-now" }).out;
      assert.equal(out.code, 0, out.stderr);
      const shard = await readShard(join(dir, "lake_w1", "sluice.duckdb"));
      assert.equal(shard.target.size, 0);
      assert.deepEqual(shard.dlq.map((d) => d.reason), ["poison"]);
      const ci = await jsm.consumers.info("ORDERS", "sluice-orders");
      assert.equal(ci.num_ack_pending, 0);
      await nc.close();
    });
  },
});

Deno.test({
  name: "a purge past the committed floor stops with exit 66 naming the range, or warns and counts",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster, dir) => {
      const nc = await cluster.connect();
      const pub = published();
      await publishRange(nc, pub, 0, 100);
      const cfg = await writeWorkerConfig(dir, "w1", { servers: cluster.servers });
      assert.equal((await startWorker(cfg, "w1", { trigger: "available-now" }).out).code, 0);
      await publishRange(nc, pub, 100, 200);
      const jsm = await jetstreamManager(nc);
      await jsm.streams.purge("ORDERS", { seq: 151 }); // removes 101..150, never consumed
      const failed = await startWorker(cfg, "w1", { trigger: "available-now" }).out;
      assert.equal(failed.code, 66, failed.stderr);
      assert.match(failed.stderr, /sequences 101 to 150 of stream "ORDERS" are gone/);
      const lenient = await writeWorkerConfig(dir, "w1", {
        servers: cluster.servers,
        failOnDataLoss: false,
      });
      const out = await startWorker(lenient, "w1", { trigger: "available-now" }).out;
      assert.equal(out.code, 0, out.stderr);
      const summary = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
      assert.equal(summary.dataLoss, 50);
      const shard = await readShard(join(dir, "lake_w1", "sluice.duckdb"));
      assert.equal(shard.target.size + shard.dlq.length, 150);
      await nc.close();
    });
  },
});

Deno.test({
  name: "sluice stream --worker-id on a jetstream source, then sluice shards merges and exports",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster, dir) => {
      const nc = await cluster.connect();
      const pub = published();
      await publishRange(nc, pub, 0, 1000);
      await nc.close();
      const cfg = await writeWorkerConfig(dir, "w1", { servers: cluster.servers });
      const run = await sluiceCli([
        "stream",
        "-c",
        cfg,
        "--trigger",
        "available-now",
        "--worker-id",
        "w1",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /worker w1 \(available-now\)/);
      assert.match(run.stdout, /1,000 received, 995 written, 5 dead-lettered/);
      const db = join(dir, "lake_w1", "sluice.duckdb");
      const shards = await sluiceCli([
        "shards",
        "-c",
        cfg,
        "--shard",
        db,
        "--export",
        join(dir, "dataset"),
        "--json",
      ]);
      assert.equal(shards.code, 0, shards.stderr);
      const view = JSON.parse(shards.stdout);
      assert.equal(view.totals.committed, 995);
      assert.equal(view.totals.deadLettered, 5);
      assert.equal(view.crossShardDuplicates, 0);
      assert.equal(view.export.rows.w1, 995);
      const explain = await sluiceCli(["explain", "-c", cfg]);
      assert.equal(explain.code, 0, explain.stderr);
      assert.match(explain.stdout, /exactly-once per message, per shard/);
    });
  },
});

Deno.test({
  name: "sluice shards shows per worker the claims lost to another worker (table and JSON)",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster, dir) => {
      const nc = await cluster.connect();
      const pub = published();
      await publishRange(nc, pub, 0, 200);
      const cfg = await writeWorkerConfig(dir, "w1", { servers: cluster.servers, batch: 100 });
      // Another worker (w0) committed and claimed sequences 1..20 first: the claims sit in the
      // real KV bucket, written by the library's own claim.
      const src = (await loadConfig(cfg)).streaming as JetStreamingConfig;
      const js = jetstream(nc);
      const link = {
        nc,
        jsm: await jetstreamManager(nc),
        js,
        consumer: undefined as unknown as JetStreamLink["consumer"],
      };
      await ensureClaims(link, src.source);
      const first = Array.from({ length: 20 }, (_, i) => i + 1);
      const held = await claim(link, src.source, first, "w0", {
        timeoutMs: 5000,
        untilMs: Date.now() + 30_000,
      });
      assert.deepEqual([...new Set(held.values())], ["w0"]);
      await nc.close();
      const run = await sluiceCli([
        "stream",
        "-c",
        cfg,
        "--trigger",
        "available-now",
        "--worker-id",
        "w1",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const db = join(dir, "lake_w1", "sluice.duckdb");
      const json = await sluiceCli(["shards", "-c", cfg, "--shard", db, "--json"]);
      assert.equal(json.code, 0, json.stderr);
      const view = JSON.parse(json.stdout);
      assert.equal(view.shards[0].worker, "w1");
      assert.equal(view.shards[0].claimsLost, 20);
      assert.equal(view.totals.claimsLost, 20);
      // Those 20 left the shard: rows and dead letters hold the other 180 exactly once.
      assert.equal(view.totals.committed + view.totals.deadLettered, 180);
      const shard = await readShard(db);
      for (const [id, n] of shard.target) assert.equal(n, 1, id);
      const table = await sluiceCli(["shards", "-c", cfg, "--shard", db]);
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.split("\n");
      const head = lines.find((l) => l.startsWith("worker"))!;
      assert.match(head, /claims lost/);
      const at = head.indexOf("claims lost") + "claims lost".length;
      const w1 = lines.find((l) => l.startsWith("w1"))!;
      assert.equal(w1.slice(0, at).trim().split(/\s+/).at(-1), "20");
    });
  },
});

Deno.test({
  name: "the bounded-heap worker command of docs/streaming.md runs as written",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const doc = await Deno.readTextFile(new URL("../docs/streaming.md", import.meta.url));
    const at = doc.indexOf("**Memory.**");
    const block = doc.slice(
      doc.indexOf("```sh\n", at) + 6,
      doc.indexOf("```", doc.indexOf("```sh\n", at) + 6),
    );
    const words = block.replace(/\\\n/g, " ").trim().split(/\s+/);
    assert.equal(words[0], "deno");
    assert.ok(words.some((w) => w.startsWith("--v8-flags=")), block);
    await withCluster(async (cluster, dir) => {
      const nc = await cluster.connect();
      await publishRange(nc, published(), 0, 300);
      await nc.close();
      const cfg = await writeWorkerConfig(dir, "w1", { servers: cluster.servers });
      // As written, with this test's config, worker id and a trigger that ends.
      const args = words.slice(1).map((w) =>
        w === "pipeline.yaml" ? cfg : w === '"$(hostname)"' ? "w1" : w
      );
      const out = await new Deno.Command("deno", {
        args: [...args, "--trigger", "available-now"],
        cwd: new URL("..", import.meta.url).pathname,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      assert.equal(out.code, 0, dec.decode(out.stderr));
      assert.match(dec.decode(out.stdout), /300 received, 2\d\d written, \d+ dead-lettered/);
    });
  },
});

/** The real CLI with the `sluice` task's permissions. */
async function sluiceCli(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      "--node-modules-dir=manual",
      "--allow-ffi=./node_modules",
      "--allow-read",
      "--allow-write",
      "--allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
      "--allow-net=127.0.0.1,localhost",
      "--allow-sys=hostname,osUptime",
      new URL("../cli.ts", import.meta.url).pathname,
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
