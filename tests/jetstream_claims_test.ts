/**
 * Claims of committed JetStream sequences: each block of sequences has an
 * append-only log of write-once entries (runs per worker). Whatever the order
 * and overlap of claims, each sequence has exactly one holder, a claim is
 * never taken back, and concurrent workers racing on the same blocks of a
 * real 3-node cluster agree on every holder (an update-with-revision scheme
 * failed this test on nats-server 2.9: nats-io/nats-server#4320).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsCluster, skipWithoutNats } from "./_nats_cluster.ts";
import { writeWorkerConfig } from "./_jetstream.ts";
import { loadConfig } from "../core/config/mod.ts";
import type { JetStreamingConfig } from "../core/config/mod.ts";
import {
  claim,
  type ClaimCache,
  ensureClaims,
  type JetStreamLink,
} from "../streaming/jetstream/_client.ts";
import {
  CLAIM_BLOCK,
  claimEntry,
  claimKey,
  emptyClaimBlock,
  entrySeqs,
  holderOf,
  parseClaimEntry,
  withClaims,
} from "../streaming/jetstream/_claim_blocks.ts";
import { SourceError } from "../core/errors.ts";

Deno.test("a claims block gives each sequence exactly one holder, first claim wins, runs stay sorted", () => {
  const workers = ["w1", "w2", "w3"];
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          worker: fc.constantFrom(...workers),
          seqs: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 60 }),
        }),
        { maxLength: 12 },
      ),
      (claims) => {
        let block = emptyClaimBlock();
        const expected = new Map<number, string>();
        for (const c of claims) {
          const fresh = c.seqs.filter((s) => holderOf(block, s) === undefined);
          // Written as an entry and read back, it claims the same sequences.
          const entry = parseClaimEntry(JSON.stringify(claimEntry(fresh, c.worker)), "test");
          assert.deepEqual(entrySeqs(entry), [...new Set(fresh)].sort((a, b) => a - b));
          block = withClaims(block, entrySeqs(entry), entry.w);
          for (const s of fresh) if (!expected.has(s)) expected.set(s, c.worker);
        }
        for (let s = 0; s <= 300; s++) assert.equal(holderOf(block, s), expected.get(s));
        for (let i = 1; i < block.r.length; i++) {
          const [prev, run] = [block.r[i - 1], block.r[i]];
          assert.ok(prev[1] < run[0], "runs sorted, not overlapping");
          // Adjacent runs of one worker are merged.
          assert.ok(!(prev[2] === run[2] && prev[1] + 1 === run[0]));
        }
      },
    ),
  );
});

Deno.test("a claims block refuses to claim a sequence someone holds", () => {
  const block = withClaims(emptyClaimBlock(), [5, 6, 7], "w1");
  assert.deepEqual(block.r, [[5, 7, 0]]);
  assert.deepEqual(withClaims(block, [8, 4], "w1").r, [[4, 8, 0]]);
  assert.throws(() => withClaims(block, [7], "w2"), SourceError);
  assert.throws(() => withClaims(block, [6], "w1"), SourceError);
});

Deno.test("a claims entry that is not one is refused with the key's name", () => {
  assert.throws(
    () => parseClaimEntry("w1", "ORDERS.b0.3"),
    /claims key "ORDERS.b0.3": it is not JSON/,
  );
  assert.throws(
    () => parseClaimEntry(JSON.stringify({ v: 1, w: "a", r: [[5, 9], [7, 8]] }), "X.b1.0"),
    /claims key "X.b1.0": expected .*sorted runs/,
  );
  assert.throws(() => parseClaimEntry(JSON.stringify({ v: 1, w: 3, r: [] }), "k"), SourceError);
  assert.deepEqual(claimEntry([9, 3, 4, 5, 9], "w1"), { v: 1, w: "w1", r: [[3, 5], [9, 9]] });
});

Deno.test("claims keys group sequences by block", () => {
  assert.equal(claimKey("ORDERS", 0), "ORDERS.b0");
  assert.equal(claimKey("ORDERS", CLAIM_BLOCK - 1), "ORDERS.b0");
  assert.equal(claimKey("ORDERS", CLAIM_BLOCK), "ORDERS.b1");
});

Deno.test({
  name: "workers racing to claim overlapping sequences on a real cluster agree on one holder each",
  ignore: skipWithoutNats(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sluice_js_claims_" });
    const cluster = await NatsCluster.start({ dir: join(dir, "nats") });
    try {
      await cluster.createStream("ORDERS", ["orders.>"]);
      const cfg = await writeWorkerConfig(dir, "w1", { servers: cluster.servers });
      const src = (await loadConfig(cfg)).streaming as JetStreamingConfig;
      const links: JetStreamLink[] = [];
      for (let i = 0; i < 3; i++) {
        const nc = await cluster.connect();
        links.push({
          nc,
          jsm: await jetstreamManager(nc),
          js: jetstream(nc),
          consumer: undefined as unknown as JetStreamLink["consumer"],
        });
      }
      await ensureClaims(links[0], src.source);
      // Three workers, each claiming an overlapping range across two blocks, in rounds.
      const all = new Map<string, Map<number, string>>();
      const caches: ClaimCache[] = links.map(() => new Map());
      for (let round = 0; round < 12; round++) {
        const base = CLAIM_BLOCK - 300 + round * 60;
        const results = await Promise.all(links.map((link, i) => {
          const seqs = Array.from({ length: 400 }, (_, j) => base + i * 100 + j);
          // Each worker keeps its own cache of what it read, as a worker process does.
          return claim(link, src.source, seqs, `w${i + 1}`, {
            timeoutMs: 5000,
            untilMs: Date.now() + 30_000,
            cache: caches[i],
          });
        }));
        results.forEach((r, i) => {
          const seen = all.get(`w${i + 1}`) ?? new Map();
          for (const [seq, holder] of r) seen.set(seq, holder);
          all.set(`w${i + 1}`, seen);
        });
      }
      // Every answer for a sequence names the same holder, and the bucket says so too.
      const holder = new Map<number, string>();
      for (const answers of all.values()) {
        for (const [seq, w] of answers) {
          if (holder.has(seq)) assert.equal(w, holder.get(seq), `sequence ${seq}`);
          holder.set(seq, w);
        }
      }
      const again = await claim(links[0], src.source, [...holder.keys()], "w9", {
        timeoutMs: 5000,
        untilMs: Date.now() + 30_000,
      });
      const sorted = (m: Map<number, string>) => [...m].sort((a, b) => a[0] - b[0]);
      assert.deepEqual(sorted(again), sorted(holder));
      assert.ok(![...again.values()].includes("w9"), "nothing was free to take");
      // The racing claims spread over the workers: a real race, not one winner of all.
      assert.ok(new Set(holder.values()).size >= 2);
      console.log(
        `claims: ${holder.size} sequences, holders ${
          JSON.stringify(Object.fromEntries(
            [...new Set(holder.values())].map((w) => [
              w,
              [...holder.values()].filter((x) => x === w).length,
            ]),
          ))
        }`,
      );
      for (const l of links) await l.nc.close();
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
