/**
 * The JetStream variant of `streaming.source`: a NATS JetStream stream read
 * through one durable pull consumer that several Sluice workers share.
 *
 * ```yaml
 * streaming:
 *   source:
 *     type: jetstream
 *     servers: [nats://10.0.0.1:4222, nats://10.0.0.2:4222, nats://10.0.0.3:4222]
 *     stream: ORDERS
 *     subject: "orders.>"
 *     consumer: sluice-orders
 *     batch: 5000
 *     max_wait: 2s
 *     ack_wait: 60s
 *     max_deliver: 5
 *     user: sluice
 *     password: !secret ${NATS_PASSWORD}
 * ```
 *
 * @module
 */
import { z } from "zod";
import type { ZodOutput } from "../npm_types.ts";
import { durationProblem, parseDuration } from "../duration.ts";

/** A duration key: a string or bare number, checked, then kept as its text. */
type DurationField = z.ZodPipe<
  z.ZodUnion<readonly [z.ZodString, z.ZodNumber]>,
  z.ZodTransform<string, string | number>
>;

/** A strict duration string; zero is refused. */
function positiveDuration(): DurationField {
  return z.union([z.string(), z.number()]).superRefine((value, ctx) => {
    const problem = durationProblem(String(value));
    if (problem !== undefined) {
      ctx.addIssue({ code: "custom", message: problem, input: value });
    } else if (parseDuration(String(value)) <= 0) {
      ctx.addIssue({ code: "custom", message: `must be longer than zero, got "${value}"` });
    }
  }).transform((value) => String(value));
}

/** JetStream stream and consumer names: no spaces, dots, `*`, `>`, slashes. */
const NATS_NAME = /^[A-Za-z0-9_-]{1,64}$/;

const natsName: z.ZodString = z.string().regex(NATS_NAME, {
  error: "must be a JetStream name (letters, digits, _ and -, at most 64; no dots or spaces)",
});

/** `nats://host:port`, `tls://host:port` or `host:port`. */
const SERVER = /^(?:(?:nats|tls|ws|wss):\/\/)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$/;

const SUBJECT = /^[^\s]+$/;

const jetStreamSourceSchema: z.ZodObject<
  {
    type: z.ZodLiteral<"jetstream">;
    servers: z.ZodArray<z.ZodString>;
    stream: z.ZodString;
    subject: z.ZodOptional<z.ZodString>;
    consumer: z.ZodString;
    batch: z.ZodDefault<z.ZodNumber>;
    max_bytes: z.ZodDefault<z.ZodString>;
    max_wait: z.ZodDefault<DurationField>;
    ack_wait: z.ZodDefault<DurationField>;
    max_deliver: z.ZodDefault<z.ZodNumber>;
    claims: z.ZodDefault<z.ZodEnum<{ kv: "kv"; none: "none" }>>;
    user: z.ZodOptional<z.ZodString>;
    password: z.ZodOptional<z.ZodString>;
    token: z.ZodOptional<z.ZodString>;
    creds: z.ZodOptional<z.ZodString>;
  },
  z.core.$strict
> = z.strictObject({
  type: z.literal("jetstream").describe("`jetstream`: read a NATS JetStream stream."),
  servers: z.array(
    z.string().regex(SERVER, { error: 'must be a server URL such as "nats://10.0.0.1:4222"' }),
  ).min(1, { error: "needs at least one server, e.g. [nats://127.0.0.1:4222]" }).describe(
    "NATS servers of the cluster (any of them; the client finds the others).",
  ),
  stream: natsName.describe("The JetStream stream, e.g. ORDERS (it must exist)."),
  subject: z.string().regex(SUBJECT, { error: "must be a NATS subject such as orders.>" })
    .optional().describe("Filter subject of the consumer, e.g. `orders.>`. Default: all."),
  consumer: natsName.describe(
    "Durable pull consumer shared by every worker (created when missing).",
  ),
  batch: z.number().int().min(1).max(100_000).default(1000).describe(
    "At most this many messages per batch (one pull, one commit). Default 1000.",
  ),
  max_bytes: z.string().regex(/^\s*\d+(?:\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)\s*$/i, {
    error: 'must be a size such as "16MB"',
  }).default("32MB").describe("At most this many payload bytes per pull. Default `32MB`."),
  max_wait: positiveDuration().default("2s").describe(
    "How long one pull waits for messages. Default `2s`.",
  ),
  ack_wait: positiveDuration().default("60s").describe(
    "Time a worker has to commit and ack a message before JetStream redelivers it. Default `60s`.",
  ),
  max_deliver: z.number().int().min(1).max(1000).default(5).describe(
    "Deliveries before a message is a poison message (dead-lettered). Default 5.",
  ),
  claims: z.enum(["kv", "none"]).default("kv").describe(
    "`kv` (default): a committed message is claimed in a JetStream KV bucket, so a message " +
      "redelivered to another worker stays in one shard; `none`: no claims (duplicates across " +
      "shards are possible around node failures and dropped by `sluice shards export`).",
  ),
  user: z.string().min(1).optional().describe("User name (with `password`)."),
  password: z.string().min(1).optional().describe("Password (use `!secret`)."),
  token: z.string().min(1).optional().describe("Token (use `!secret`)."),
  creds: z.string().min(1).optional().describe(
    "A `.creds` file (JWT and NKey seed), relative to the config file.",
  ),
}).superRefine((s, ctx) => {
  const at = (path: string, message: string) =>
    ctx.addIssue({ code: "custom", path: [path], message });
  if (s.password !== undefined && s.user === undefined) at("password", "password needs user");
  if (s.user !== undefined && s.password === undefined) at("user", "user needs password");
  const kinds = [s.user !== undefined, s.token !== undefined, s.creds !== undefined]
    .filter(Boolean).length;
  if (kinds > 1) {
    at(
      s.token !== undefined ? "token" : "creds",
      "use one way to authenticate: user/password, token or creds",
    );
  }
});

/**
 * The zod type of {@linkcode JetStreamSourceSchema}. It is spelled out by
 * zod, so the documentation shows {@linkcode JetStreamSourceConfig}.
 *
 * @internal
 */
type JetStreamSourceSchemaType = typeof jetStreamSourceSchema;

/**
 * `streaming.source` when it is a JetStream stream.
 *
 * @example
 * ```ts
 * import { JetStreamSourceSchema } from "./jetstream.ts";
 * const s = JetStreamSourceSchema.parse({
 *   type: "jetstream",
 *   servers: ["nats://127.0.0.1:4222"],
 *   stream: "ORDERS",
 *   consumer: "sluice-orders",
 * });
 * s.batch; // 1000
 * ```
 */
export const JetStreamSourceSchema: JetStreamSourceSchemaType = jetStreamSourceSchema;

/**
 * A JetStream source after validation.
 *
 * @example
 * ```ts
 * import type { JetStreamSourceConfig } from "./jetstream.ts";
 * const s: Pick<JetStreamSourceConfig, "stream" | "consumer"> = {
 *   stream: "ORDERS",
 *   consumer: "sluice-orders",
 * };
 * ```
 */
export type JetStreamSourceConfig = ZodOutput<typeof JetStreamSourceSchema>;
