/**
 * Prometheus metrics of a JetStream worker, on the run's registry (served
 * on `/metrics` with the stream metrics). Labels are bounded: pipeline,
 * stream (checkpoint name), worker (one per process) and outcome (fixed).
 *
 * @module
 */
import { Counter, Gauge, type Registry } from "../../core/prom.ts";

type L = "pipeline" | "stream" | "worker";

/** The metric set of a JetStream worker. */
export interface JetStreamMetrics {
  /** `sluice_jetstream_messages_received_total`: messages fetched from the consumer. */
  messagesReceived: Counter<L>;
  /** `sluice_jetstream_messages_total{outcome}`: written, dead_lettered, redelivered_duplicate, poison. */
  messages: Counter<L | "outcome">;
  /** `sluice_jetstream_redeliveries_total`: messages received with a delivery count above 1. */
  redeliveries: Counter<L>;
  /** `sluice_jetstream_acks_total`: acks the server confirmed. */
  acks: Counter<L>;
  /** `sluice_jetstream_ack_failures_total`: acks not confirmed in time (retried later). */
  ackFailures: Counter<L>;
  /** `sluice_jetstream_data_loss_messages_total`: sequences found missing. */
  dataLoss: Counter<L>;
  /** `sluice_jetstream_consumer_pending`: consumer lag, messages not yet delivered (`num_pending`). */
  pending: Gauge<L>;
  /** `sluice_jetstream_consumer_ack_pending`: delivered to some worker, not yet acked. */
  ackPending: Gauge<L>;
  /** `sluice_jetstream_worker_events_per_second`: this worker's rate over its last batch. */
  rate: Gauge<L>;
}

function counter<K extends string>(r: Registry, name: string, help: string, labels: K[]) {
  const existing = r.getSingleMetric(name);
  if (existing) return existing as Counter<K>;
  return new Counter({ name, help, labelNames: labels, registers: [r] });
}

function gauge<K extends string>(r: Registry, name: string, help: string, labels: K[]) {
  const existing = r.getSingleMetric(name);
  if (existing) return existing as Gauge<K>;
  return new Gauge({ name, help, labelNames: labels, registers: [r] });
}

/** Returns the JetStream metrics on `registry`, registering them on first use. */
export function jetStreamMetrics(registry: Registry): JetStreamMetrics {
  const l: L[] = ["pipeline", "stream", "worker"];
  return {
    messagesReceived: counter(
      registry,
      "sluice_jetstream_messages_received_total",
      "JetStream messages fetched from the consumer",
      l,
    ),
    messages: counter(
      registry,
      "sluice_jetstream_messages_total",
      "JetStream messages by outcome (written, dead_lettered, redelivered_duplicate, poison)",
      [...l, "outcome"],
    ),
    redeliveries: counter(
      registry,
      "sluice_jetstream_redeliveries_total",
      "Messages received with a delivery count above 1",
      l,
    ),
    acks: counter(registry, "sluice_jetstream_acks_total", "Acks confirmed by the server", l),
    ackFailures: counter(
      registry,
      "sluice_jetstream_ack_failures_total",
      "Acks not confirmed in time (retried at the next batch)",
      l,
    ),
    dataLoss: counter(
      registry,
      "sluice_jetstream_data_loss_messages_total",
      "Stream sequences found missing before they were committed",
      l,
    ),
    pending: gauge(
      registry,
      "sluice_jetstream_consumer_pending",
      "Consumer lag: messages not yet delivered (num_pending)",
      l,
    ),
    ackPending: gauge(
      registry,
      "sluice_jetstream_consumer_ack_pending",
      "Messages delivered to a worker and not yet acked (num_ack_pending)",
      l,
    ),
    rate: gauge(
      registry,
      "sluice_jetstream_worker_events_per_second",
      "This worker's messages per second over its last batch",
      l,
    ),
  };
}
