/**
 * The worker's two shortcuts through the NATS client: sequence and delivery
 * count read straight from the ack subject, and a batch's acks confirmed
 * through one reply inbox instead of a request each. Both are checked
 * against the client's own answers on a real server.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import fc from "fast-check";
import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { NatsCluster, skipWithoutNats } from "./_nats_cluster.ts";
import { ackConfirmed, ackTokens } from "../streaming/jetstream/_client.ts";

/** The ack subject of a delivery (the client keeps it, not in its public type). */
const replyOf = (m: JsMsg): string => (m as unknown as { reply: string }).reply;

const token = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const positive = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });

Deno.test("ack subjects of both formats give their stream sequence and delivery count", () => {
  fc.assert(fc.property(
    token,
    token,
    positive,
    positive,
    positive,
    fc.constantFrom("v1", "v2", "v2+token"),
    (stream, consumer, delivered, seq, dseq, shape) => {
      const tail = `${delivered}.${seq}.${dseq}.1700000000000000000.42`;
      const reply = shape === "v1"
        ? `$JS.ACK.${stream}.${consumer}.${tail}`
        : `$JS.ACK._.ACCHASH.${stream}.${consumer}.${tail}${shape === "v2+token" ? ".r4nd" : ""}`;
      assert.deepEqual(ackTokens(reply), { seq, delivered });
    },
  ));
});

Deno.test("subjects that are not ack subjects are left to the client's parser", () => {
  for (
    const s of [
      "",
      "orders.1",
      "$JS.ACK.S.C.1.2",
      "$JS.ACK.S.C.x.2.3.4.5",
      "$JS.ACK.S.C.1.0.3.4.5",
      "$JS.ACK.a.b.c.d.e.f.g.h.i.j.k.l.m",
      "$JS.NAK.S.C.1.2.3.4.5",
    ]
  ) {
    assert.equal(ackTokens(s), undefined, s);
  }
});

Deno.test({
  name:
    "a batch's acks are confirmed through one inbox and agree with the client's own delivery info",
  ignore: skipWithoutNats(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sluice_js_ack_" });
    const cluster = await NatsCluster.start({ dir: join(dir, "nats") });
    const nc = await cluster.connect();
    try {
      await cluster.createStream("ORDERS", ["orders.>"]);
      const js = jetstream(nc);
      for (let i = 0; i < 300; i++) await js.publish("orders.x", `{"i":${i}}`);
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.add("ORDERS", {
        durable_name: "acks",
        ack_policy: AckPolicy.Explicit,
        ack_wait: 2_000_000_000, // 2 s: the messages not acked come back
      });
      const c = await js.consumers.get("ORDERS", "acks");
      const pullAll = async (max: number) => {
        const out: JsMsg[] = [];
        for await (const m of await c.fetch({ max_messages: max, expires: 2000 })) out.push(m);
        return out;
      };
      const first = await pullAll(300);
      assert.equal(first.length, 300);
      for (const m of first) {
        assert.deepEqual(ackTokens(replyOf(m)), { seq: m.seq, delivered: m.info.deliveryCount });
      }
      // Ack the first 200 (plus a subject nobody answers); the other 100 are redelivered.
      const acks = first.slice(0, 200).map((m) => ({ seq: m.seq, reply: replyOf(m) }));
      const t0 = performance.now();
      const done = await ackConfirmed(nc, [...acks, { seq: 999_999, reply: "nobody.home" }], {
        timeoutMs: 5000,
      });
      assert.equal(done.size, 200, "every real ack is confirmed, the unanswered one is not");
      assert.ok(!done.has(999_999));
      assert.ok(performance.now() - t0 < 4000, "a 503 status ends the wait, not the timeout");
      const info = await jsm.consumers.info("ORDERS", "acks");
      assert.equal(info.ack_floor.stream_seq, first[199].seq, "the server has the acks");
      await new Promise((r) => setTimeout(r, 2300));
      const again = await pullAll(100);
      assert.deepEqual(again.map((m) => m.seq), first.slice(200).map((m) => m.seq));
      for (const m of again) {
        assert.equal(m.info.deliveryCount, 2);
        assert.deepEqual(ackTokens(replyOf(m)), { seq: m.seq, delivered: 2 });
      }
      const rest = await ackConfirmed(nc, again.map((m) => ({ seq: m.seq, reply: replyOf(m) })), {
        timeoutMs: 5000,
      });
      assert.equal(rest.size, 100);
      const end = await jsm.consumers.info("ORDERS", "acks");
      assert.equal(end.num_ack_pending, 0);
      assert.equal(end.num_pending, 0);
      // An ack sent again for a message acked before (a crash left it unconfirmed) is answered
      // too, twice in one call as well; a call with nothing to ack returns at once.
      const twice = [acks[0], acks[0], acks[1]];
      assert.deepEqual(
        [...await ackConfirmed(nc, twice, { timeoutMs: 5000 })].sort(),
        [
          acks[0].seq,
          acks[1].seq,
        ].sort(),
      );
      assert.equal((await ackConfirmed(nc, [], { timeoutMs: 5000 })).size, 0);
    } finally {
      await nc.close();
      await cluster.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
