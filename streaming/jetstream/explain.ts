/**
 * `sluice explain` for a JetStream source: the guarantee in plain words,
 * from the config alone (no database, no connection).
 *
 * @module
 */
import type { PipelineConfig } from "../../core/config/mod.ts";
import { isJetStreaming } from "../../core/config/mod.ts";
import { formatDuration, parseDuration } from "../../core/duration.ts";
import { UsageError } from "../../core/errors.ts";

/**
 * Explains what a JetStream stream guarantees: exactly-once per message into
 * each worker's shard, at-least-once delivery deduplicated by stream
 * sequence, what goes to the DLQ, poison messages, crashes, data loss.
 *
 * @example
 * ```ts ignore
 * const shown = explainJetStream(await loadConfig("pipeline.yaml"));
 * ```
 */
export function explainJetStream(config: PipelineConfig): string {
  const s = config.streaming;
  if (!isJetStreaming(s)) {
    throw new UsageError(`Cannot explain pipeline "${config.pipeline}" as JetStream: it is not`);
  }
  const src = s.source;
  const target = `silver.${s.target}`;
  const dlq = `silver.${s.dlq}`;
  const ackWait = formatDuration(parseDuration(src.ack_wait));
  const delay = formatDuration(parseDuration(s.watermark.delay));
  const batch = Math.min(src.batch, s.max_records_per_trigger).toLocaleString("en-US");
  const out: string[] = [];
  const para = (title: string, text: string) =>
    out.push(`${title}\n  ${text.replace(/\n/g, "\n  ")}`);
  out.push(
    `Stream "${s.checkpoint}" of pipeline "${config.pipeline}": JetStream stream ${src.stream}` +
      `${src.subject ? ` (subject ${src.subject})` : ""} on ${src.servers.join(", ")}, read by ` +
      `every worker through the shared durable consumer "${src.consumer}", into ${target} of ` +
      "each worker's own lake (its shard).",
  );
  para(
    "Delivery: exactly-once per message, per shard",
    `Each worker pulls at most ${batch} messages (what one commit takes, so memory stays ` +
      `bounded),\nthen writes their rows to ${target}, their dead letters to ${dlq}, the ` +
      `windows they close,\nthe watermark and the JetStream stream sequences it consumed in ONE ` +
      `DuckDB transaction.\nOnly after that commit does it ack the messages, and it waits for ` +
      `the server to confirm each ack.`,
  );
  para(
    "At-least-once from JetStream, deduplicated",
    `JetStream delivers a message again when it is not acked within ${ackWait} (ack_wait). A ` +
      `redelivered\nmessage whose sequence the shard already committed is acked and dropped ` +
      `(counted as\nredelivered_duplicates), so a crash between the commit and the ack neither ` +
      `loses nor duplicates\nanything. Acks the server did not confirm are kept in the same ` +
      `transaction and sent again when\nthe worker starts, before it pulls.`,
  );
  para(
    src.claims === "kv"
      ? "Across workers: exactly-once per event (claims: kv)"
      : "Across workers: at-least-once, exactly-once in the merged export (claims: none)",
    `JetStream hands each message to one worker at a time, and to another only after ${ackWait} ` +
      `without an ack.\nA worker commits only inside that deadline (a slow batch renews it ` +
      `with in-progress acks, or is\nabandoned uncommitted). JetStream can still give a ` +
      `message to a second worker when the\nconsumer's leader moves (a NATS node fails) or a ` +
      `worker stays away longer than ack_wait.\n` +
      (src.claims === "kv"
        ? `After its commit, a worker claims each message in the KV bucket ` +
          `sluice-claims-${src.consumer}\n(write-once entries: one holder per sequence, never ` +
          `taken back); a worker that finds a message\nclaimed by another removes it from its shard in ` +
          `one transaction. It forgets an ack only once\nits claim is settled, so a restart ` +
          `claims again. Every event ends in exactly one shard.`
        : `Then two shards hold it: \`sluice shards\` counts those sequences, and its export ` +
          `writes each of them once.`),
  );
  para(
    "Dead letters",
    `Messages that are not a JSON object (malformed_json), that do not match the declared ` +
      `columns\n(schema_violation), or whose event time is behind the shard's watermark (late, ` +
      `delay ${delay}) go to\n${dlq} with the subject, stream sequence, delivery count, headers ` +
      `and raw bytes (_js_* columns).\nA message delivered ${src.max_deliver} times (max_deliver) ` +
      `without being committed is dead-lettered on\nits next delivery as poison, without ` +
      `parsing: it never loops forever, and it is never lost.`,
  );
  para(
    "Failures",
    `A worker killed at any moment: its open transaction is rolled back; unacked messages come ` +
      `back\nafter ack_wait. A NATS node killed: the cluster elects new leaders; workers retry ` +
      `pulls and acks\nuntil it answers. DuckDB failing: nothing is acked, so nothing is lost.`,
  );
  para(
    "Data loss",
    s.fail_on_data_loss
      ? `fail_on_data_loss: true. When the stream's first sequence moves past the consumer's ack ` +
        `floor (a purge,\nor limits removing messages nobody committed) the worker stops with ` +
        `exit code 66 naming\nthe missing sequence range. Nothing after it is committed.`
      : `fail_on_data_loss: false. When messages are gone before they were committed (a purge, ` +
        `limits),\nthe worker logs event: data_loss with the range, counts it ` +
        `(sluice_jetstream_data_loss_messages_total,\n_sluice.jetstream_data_loss) and goes on.`,
  );
  para(
    "Shards",
    `Every worker needs its own lake (--worker-id, default the host name). \`sluice shards\` ` +
      `merges\ntheir ledgers and watermarks into one view and exports worker=…/date=…/part-….parquet.`,
  );
  return out.join("\n\n");
}
