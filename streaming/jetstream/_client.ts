/**
 * The NATS side of a JetStream worker: the connection (credentials from the
 * config, never logged), the shared durable pull consumer (created when
 * missing, checked when present), pulls and confirmed acks.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type {
  AckPolicy,
  Consumer,
  ConsumerInfo,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
  ReplayPolicy,
  StreamInfo,
} from "@nats-io/jetstream";
import type { JetStreamSourceConfig } from "../../core/config/mod.ts";
import { parseDuration } from "../../core/duration.ts";
import { SourceError, UsageError } from "../../core/errors.ts";
import {
  type ClaimBlock,
  claimEntry,
  claimKey,
  emptyClaimBlock,
  entrySeqs,
  holderOf,
  parseClaimEntry,
  withClaims,
} from "./_claim_blocks.ts";

/** The NATS client modules, loaded on the first connection (not by `sluice run`). */
interface NatsModules {
  core: typeof import("@nats-io/nats-core");
  transport: typeof import("@nats-io/transport-node");
  js: typeof import("@nats-io/jetstream");
}
let natsModules: Promise<NatsModules> | undefined;
/**
 * Loads the NATS client on first use: about 30 ms of module loading that a
 * batch run, which never talks to NATS, does not pay.
 */
function nats(): Promise<NatsModules> {
  natsModules ??= Promise.all([
    import("@nats-io/nats-core"),
    import("@nats-io/transport-node"),
    import("@nats-io/jetstream"),
  ]).then(([core, transport, js]) => ({ core, transport, js }));
  return natsModules;
}
/** JetStream's `AckPolicy.Explicit`, without loading the client. */
const ACK_EXPLICIT = "explicit" as AckPolicy;

/** An open connection with the stream's manager, client and consumer. */
export interface JetStreamLink {
  /** The NATS connection. */
  nc: NatsConnection;
  /** JetStream management API. */
  jsm: JetStreamManager;
  /** JetStream client. */
  js: JetStreamClient;
  /** The shared durable pull consumer. */
  consumer: Consumer;
}

/** One pulled message, as the worker stages it. */
export interface PulledMessage {
  /** Stream sequence. */
  seq: number;
  /** Subject it was published on. */
  subject: string;
  /** Delivery count (1 the first time). */
  delivered: number;
  /** Headers as a JSON object text, or null. */
  headers: string | null;
  /** Payload bytes. */
  data: Uint8Array;
  /** The ack subject of this delivery. */
  reply: string;
}

/** Connection options from the config: servers, name and credentials. */
async function connectOptions(src: JetStreamSourceConfig, name: string) {
  const auth: Record<string, unknown> = {};
  if (src.user !== undefined) {
    auth.user = src.user;
    auth.pass = src.password;
  }
  if (src.token !== undefined) auth.token = src.token;
  if (src.creds !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(src.creds);
    } catch (e) {
      throw new SourceError(`Cannot read the NATS creds file ${src.creds}: ${String(e)}`);
    }
    auth.authenticator = (await nats()).core.credsAuthenticator(bytes);
  }
  return {
    servers: src.servers.map((s) => s.replace(/^nats:\/\//, "")),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: 5000,
    // No stack trace captured per request: a batch sends thousands (acks, claims), and the
    // errors Sluice reports name what failed without the client's async stack.
    noAsyncTraces: true,
    ...auth,
  };
}

/** Consumer settings that must agree between the config and the server. */
export function consumerSettings(src: JetStreamSourceConfig) {
  return {
    durable_name: src.consumer,
    ack_policy: ACK_EXPLICIT,
    deliver_policy: "all" as DeliverPolicy,
    replay_policy: "instant" as ReplayPolicy,
    ack_wait: parseDuration(src.ack_wait) * 1_000_000,
    // Unlimited on the server: the worker dead-letters a message delivered more than
    // max_deliver times (without parsing it), so a crash during that last delivery cannot
    // lose it — JetStream simply delivers it again.
    max_deliver: -1,
    max_ack_pending: Math.max(10_000, src.batch * 16),
    ...(src.subject !== undefined ? { filter_subject: src.subject } : {}),
  };
}

/**
 * The configured servers (as `host:port`) this process has no network
 * permission for. Deno refuses such a connection before it leaves the machine,
 * which the NATS client reports as an unreachable server; asking first turns
 * it into one clear, terminal error instead of endless retries.
 */
export async function serversWithoutNet(servers: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const server of servers) {
    const host = server.replace(/^[a-z]+:\/\//, "");
    const { state } = await Deno.permissions.query({ name: "net", host });
    if (state !== "granted") missing.push(host);
  }
  return missing;
}

/**
 * Connects, checks the stream exists and gets (or creates) the durable
 * pull consumer. Errors name the stream and consumer, never a credential.
 */
export async function openLink(
  src: JetStreamSourceConfig,
  options: { name: string },
): Promise<JetStreamLink> {
  const denied = await serversWithoutNet(src.servers);
  if (denied.length > 0) {
    const hosts = denied.join(",");
    throw new UsageError(
      `Cannot connect to NATS (${src.servers.join(", ")}): no network permission for ` +
        `${denied.join(", ")}; run with --allow-net=127.0.0.1,localhost,${hosts} ` +
        "(the sluice task allows only this machine)",
      { context: { denied } },
    );
  }
  const lib = await nats();
  let nc: NatsConnection;
  try {
    nc = await lib.transport.connect(await connectOptions(src, options.name));
  } catch (e) {
    throw new SourceError(
      `Cannot connect to NATS (${src.servers.join(", ")}): ${safeMessage(e)}`,
      { cause: e },
    );
  }
  try {
    const jsm = await lib.js.jetstreamManager(nc, { timeout: 10_000 });
    try {
      await jsm.streams.info(src.stream);
    } catch (e) {
      throw new SourceError(
        `Cannot read JetStream stream "${src.stream}": ${safeMessage(e)}`,
        { cause: e },
      );
    }
    const want = consumerSettings(src);
    let info: ConsumerInfo | undefined;
    try {
      info = await jsm.consumers.info(src.stream, src.consumer);
    } catch (e) {
      if (!/not found/i.test(safeMessage(e))) throw e;
    }
    if (info === undefined) {
      try {
        await jsm.consumers.add(src.stream, want);
      } catch (e) {
        // Another worker created it first.
        if (!/already (exists|in use)/i.test(safeMessage(e))) throw e;
      }
    } else if (
      info.config.ack_policy !== ACK_EXPLICIT ||
      (info.config.filter_subject ?? undefined) !== want.filter_subject
    ) {
      throw new SourceError(
        `Cannot use consumer "${src.consumer}" of stream "${src.stream}": it exists with ` +
          `ack_policy ${info.config.ack_policy} and filter ${
            info.config.filter_subject ?? "(none)"
          }; the config needs explicit acks and filter ${want.filter_subject ?? "(none)"}`,
      );
    } else if (
      info.config.ack_wait !== want.ack_wait || info.config.max_deliver !== want.max_deliver
    ) {
      await jsm.consumers.update(src.stream, src.consumer, {
        ack_wait: want.ack_wait,
        max_deliver: want.max_deliver,
        max_ack_pending: want.max_ack_pending,
      });
    }
    const js = lib.js.jetstream(nc, { timeout: 10_000 });
    const consumer = await js.consumers.get(src.stream, src.consumer);
    return { nc, jsm, js, consumer };
  } catch (e) {
    await nc.close().catch(() => {});
    if (e instanceof SourceError) throw e;
    throw new SourceError(
      `Cannot open consumer "${src.consumer}" of stream "${src.stream}": ${safeMessage(e)}`,
      { cause: e },
    );
  }
}

/** A message text without anything that could be a credential (URLs with user info). */
export function safeMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.replace(/\/\/[^@/\s]+@/g, "//***@");
}

/**
 * Pulls at most `max` messages, waiting at most `expiresMs`: exactly what
 * one batch may commit, so memory stays bounded (`max` times the server's
 * `max_payload`) whatever the backlog.
 */
export async function pull(
  link: JetStreamLink,
  options: { max: number; expiresMs: number },
): Promise<PulledMessage[]> {
  const out: PulledMessage[] = [];
  const expires = Math.max(1000, options.expiresMs);
  const iter = await link.consumer.fetch({
    max_messages: options.max,
    expires,
  });
  try {
    for await (const m of iter) out.push(pulled(m));
  } catch (e) {
    // A pull cut short keeps what it received: those messages are delivered to this worker
    // and are committed like any others. Two missed idle heartbeats (the client's default
    // is half of `expires`) race with the pull's own expiry on a quiet stream: that is an
    // empty pull, and a server that is really gone fails the next look at the consumer.
    if (out.length === 0 && !/heartbeats missed/i.test(safeMessage(e))) throw e;
  }
  return out;
}

function pulled(m: JsMsg): PulledMessage {
  let headers: string | null = null;
  if (m.headers) {
    const h: Record<string, string[]> = {};
    for (const k of m.headers.keys()) h[k] = m.headers.values(k);
    headers = JSON.stringify(h);
  }
  const reply = (m as unknown as { reply: string }).reply;
  const at = ackTokens(reply);
  return {
    seq: at ? at.seq : m.seq,
    subject: m.subject,
    delivered: at ? at.delivered : m.info.deliveryCount,
    headers,
    data: m.data,
    reply,
  };
}

/**
 * Stream sequence and delivery count from an ack subject, without the
 * client's full parse (an array of every token and an object a message):
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<seq>...` (9 tokens) or
 * `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<seq>...`
 * (11 or 12). Undefined for any other shape (the client parses those).
 */
export function ackTokens(reply: string): { seq: number; delivered: number } | undefined {
  if (!reply.startsWith("$JS.ACK.")) return undefined;
  const dots: number[] = [];
  for (let i = reply.indexOf("."); i !== -1; i = reply.indexOf(".", i + 1)) dots.push(i);
  const tokens = dots.length + 1;
  const first = tokens === 9 ? 4 : tokens === 11 || tokens === 12 ? 6 : -1;
  if (first < 0) return undefined;
  const delivered = Number(reply.slice(dots[first - 1] + 1, dots[first]));
  const seq = Number(reply.slice(dots[first] + 1, dots[first + 1]));
  if (!Number.isSafeInteger(delivered) || !Number.isSafeInteger(seq)) return undefined;
  if (delivered < 1 || seq < 1) return undefined;
  return { seq, delivered };
}

const ACK = new TextEncoder().encode("+ACK");

/**
 * Acks deliveries by their ack subjects and waits for the server to
 * confirm each (double ack). Returns the sequences confirmed.
 *
 * One reply inbox per call (`<inbox>.<i>` names the i-th ack) and one timer
 * for all: a request per ack would cost a timer, a promise and a reply
 * route each, most of what a worker allocated per message.
 */
export async function ackConfirmed(
  nc: NatsConnection,
  acks: { seq: number; reply: string }[],
  options: { timeoutMs: number },
): Promise<Set<number>> {
  const done = new Set<number>();
  if (acks.length === 0) return done;
  const inbox = (await nats()).core.createInbox();
  const answered = new Uint8Array(acks.length);
  let left = acks.length;
  let finish = () => {};
  const finished = new Promise<void>((resolve) => finish = resolve);
  const sub = nc.subscribe(`${inbox}.*`, {
    callback: (err, msg) => {
      // A subscription error (a permission, the connection closing) ends the wait.
      if (err) return finish();
      const i = Number(msg.subject.slice(inbox.length + 1));
      if (!Number.isInteger(i) || i < 0 || i >= acks.length || answered[i]) return;
      answered[i] = 1;
      // A status reply (503: nobody answers that ack subject) is not a confirmation.
      if (!msg.headers?.hasError) done.add(acks[i].seq);
      if (--left === 0) finish();
    },
  });
  const timer = setTimeout(finish, options.timeoutMs);
  try {
    for (let i = 0; i < acks.length; i++) {
      nc.publish(acks[i].reply, ACK, { reply: `${inbox}.${i}` });
    }
    await finished;
  } catch {
    // The connection closed under the acks: what was confirmed stands, the rest is sent again.
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
  return done;
}

/** Stream and consumer state in one look. */
export interface Position {
  /** First sequence still in the stream. */
  firstSeq: number;
  /** Last sequence in the stream. */
  lastSeq: number;
  /** Messages in the stream. */
  messages: number;
  /** Messages not yet delivered to any worker (`num_pending`). */
  pending: number;
  /** Delivered, not yet acked (`num_ack_pending`). */
  ackPending: number;
  /** Redelivered messages not yet acked (`num_redelivered`). */
  redelivered: number;
  /** Every stream sequence up to this one is acked. */
  ackFloor: number;
}

/** Reads the stream's and the consumer's state. */
export async function position(
  link: JetStreamLink,
  src: JetStreamSourceConfig,
): Promise<Position> {
  const [si, ci]: [StreamInfo, ConsumerInfo] = await Promise.all([
    link.jsm.streams.info(src.stream),
    link.jsm.consumers.info(src.stream, src.consumer),
  ]);
  return {
    firstSeq: si.state.first_seq,
    lastSeq: si.state.last_seq,
    messages: si.state.messages,
    pending: ci.num_pending,
    ackPending: ci.num_ack_pending,
    redelivered: ci.num_redelivered,
    ackFloor: ci.ack_floor.stream_seq,
  };
}

/** The claims bucket of a consumer: a JetStream KV bucket (`$KV.<bucket>.<stream>.b<block>.<n>`). */
export function claimsBucket(src: JetStreamSourceConfig): string {
  return `sluice-claims-${src.consumer}`;
}

/**
 * Creates the claims bucket when missing: a KV-compatible stream (one value
 * per key, `nats kv` reads it) with as many replicas as the source stream.
 */
export async function ensureClaims(link: JetStreamLink, src: JetStreamSourceConfig) {
  const bucket = claimsBucket(src);
  const name = `KV_${bucket}`;
  try {
    await link.jsm.streams.info(name);
    return;
  } catch (e) {
    if (!/not found/i.test(safeMessage(e))) throw e;
  }
  const si = await link.jsm.streams.info(src.stream);
  try {
    await link.jsm.streams.add({
      name,
      subjects: [`$KV.${bucket}.>`],
      max_msgs_per_subject: 1,
      num_replicas: si.config.num_replicas,
      discard: "new" as DiscardPolicy,
      allow_rollup_hdrs: true,
      deny_delete: true,
      allow_direct: true,
    });
  } catch (e) {
    // Another worker created it first.
    if (!/already in use|exists/i.test(safeMessage(e))) throw e;
  }
  await untilAnswered(link, bucket);
}

/**
 * Waits until a just-created claims bucket has a leader: until then JetStream
 * drops its requests unanswered, and the first claims would wait out their
 * whole timeout (10 s measured with three workers starting together).
 */
async function untilAnswered(link: JetStreamLink, bucket: string): Promise<void> {
  const jsm = await (await nats()).js.jetstreamManager(link.nc, { timeout: 500 });
  const until = Date.now() + 30_000;
  while (true) {
    try {
      // Answered (found or not) only by the stream's leader.
      await jsm.streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}._leader_probe` });
      return;
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * What a worker has read of the claims bucket: per block, the claims so far
 * and the next entry to read. Entries never change, so what was read stays
 * true; the oldest blocks are dropped past {@linkcode CLAIM_CACHE_BLOCKS}.
 */
export type ClaimCache = Map<string, { block: ClaimBlock; next: number }>;

/** Blocks a {@linkcode ClaimCache} keeps. */
const CLAIM_CACHE_BLOCKS = 256;

/**
 * Claims stream sequences for `worker` in the claims bucket: per block
 * ({@linkcode claimKey}), reads the entries not seen yet and creates the next
 * one with the sequences nobody holds (see `_claim_blocks.ts`), so exactly
 * one worker ever holds a sequence and a claim is never taken back. Returns
 * the holder of each sequence (`worker` when the claim is ours, also when we
 * wrote it before a crash or a lost reply). Unreachable servers are retried
 * until `untilMs`.
 */
export async function claim(
  link: JetStreamLink,
  src: JetStreamSourceConfig,
  seqs: number[],
  worker: string,
  options: { timeoutMs: number; untilMs: number; cache?: ClaimCache },
): Promise<Map<number, string>> {
  const bucket = claimsBucket(src);
  const cache: ClaimCache = options.cache ?? new Map();
  const byKey = new Map<string, number[]>();
  for (const seq of new Set(seqs)) {
    const key = claimKey(src.stream, seq);
    const list = byKey.get(key);
    if (list) list.push(seq);
    else byKey.set(key, [seq]);
  }
  const out = new Map<number, string>();
  // Reads with a short timeout: a read JetStream drops (seen right after the bucket is
  // created) is tried again at once instead of stalling the batch for the default 10 s.
  const jsm = await (await nats()).js.jetstreamManager(link.nc, {
    timeout: Math.min(options.timeoutMs, 1000),
    checkAPI: false,
  });
  await Promise.all(
    [...byKey].map(([key, list]) =>
      claimInBlock({ ...link, jsm }, { bucket, key, list, worker, out, cache, options })
    ),
  );
  while (cache.size > CLAIM_CACHE_BLOCKS) cache.delete(cache.keys().next().value!);
  return out;
}

/** One block's part of {@linkcode claim}: catch up on its entries, create the next one. */
async function claimInBlock(
  link: JetStreamLink,
  c: {
    bucket: string;
    key: string;
    list: number[];
    worker: string;
    out: Map<number, string>;
    cache: ClaimCache;
    options: { timeoutMs: number; untilMs: number };
  },
): Promise<void> {
  const known = c.cache.get(c.key) ?? { block: emptyClaimBlock(), next: 0 };
  c.cache.delete(c.key);
  c.cache.set(c.key, known);
  const subject = (n: number) => `$KV.${c.bucket}.${c.key}.${n}`;
  let failures = 0;
  for (let attempt = 0;; attempt++) {
    if (attempt > 0) {
      if (Date.now() > c.options.untilMs) {
        throw new SourceError(
          `Cannot claim ${c.list.length} message(s) in block "${c.key}" of bucket ` +
            `"${c.bucket}": NATS did not answer`,
        );
      }
      // A lost race reads again at once; an unreachable server backs off.
      if (failures > 0) await new Promise((r) => setTimeout(r, Math.min(2000, 200 * failures)));
    }
    try {
      // Catch up: the entries written since we last looked.
      while (true) {
        const n = known.next;
        const m = await link.jsm.streams.getMessage(`KV_${c.bucket}`, {
          last_by_subj: subject(n),
        });
        if (m === null) break;
        // Another claim of this worker on the same block may have read it meanwhile.
        if (known.next !== n) continue;
        const e = parseClaimEntry(m.string(), `${c.key}.${n}`);
        known.block = withClaims(known.block, entrySeqs(e), e.w);
        known.next = n + 1;
      }
    } catch (e) {
      if (e instanceof SourceError) throw e;
      failures++;
      continue;
    }
    const mine: number[] = [];
    for (const seq of c.list) {
      const holder = holderOf(known.block, seq);
      if (holder === undefined) mine.push(seq);
      else c.out.set(seq, holder);
    }
    if (mine.length === 0) return;
    const n = known.next;
    try {
      await link.js.publish(subject(n), JSON.stringify(claimEntry(mine, c.worker)), {
        expect: { lastSubjectSequence: 0 },
        timeout: c.options.timeoutMs,
      });
    } catch (e) {
      // Another worker created that entry first (or ours landed and its reply was lost):
      // read it and decide again.
      if (!/wrong last sequence|10071/i.test(safeMessage(e))) failures++;
      continue;
    }
    if (known.next === n) {
      known.block = withClaims(known.block, mine, c.worker);
      known.next = n + 1;
    }
    for (const seq of mine) c.out.set(seq, c.worker);
    return;
  }
}
