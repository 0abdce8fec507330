/**
 * One JetStream worker process for the tests: the library's real worker
 * (`runJetStream`) on a config file, as `sluice stream --worker-id` runs it.
 * SIGTERM/SIGINT finish the current batch (commit and ack) and exit 0; an
 * error exits with its code (66 on JetStream data loss). The summary is
 * printed as one JSON line on stdout.
 *
 * `deno run ... tests/_jetstream_worker.ts CONFIG WORKER_ID [TRIGGER]`
 * (`SLUICE_CRASH_AT=<step>[@<batch>]` kills it at a step, as for `sluice stream`).
 *
 * @module
 */
import { loadConfig } from "../core/config/mod.ts";
import { CancelledError, SluiceError } from "../core/errors.ts";
import { configureLogging } from "../observability/logging.ts";
import type { StreamTrigger } from "../streaming/stream.ts";
import { runJetStreamPipeline } from "../streaming/jetstream/run.ts";

const [configFile, workerId, trigger = "interval"] = Deno.args;
const stop = new AbortController();
for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, () => stop.abort());
await configureLogging({
  format: "text",
  level: Deno.env.get("SLUICE_TEST_LOG_LEVEL") === "info" ? "info" : "warning",
});
try {
  const config = await loadConfig(configFile);
  const summary = await runJetStreamPipeline(config, {
    workerId,
    trigger: trigger as StreamTrigger,
    signal: stop.signal,
    run: { trigger: "test" },
  });
  console.log(JSON.stringify(summary));
} catch (e) {
  if (e instanceof CancelledError && e.result !== undefined) {
    // Stopped by the signal between batches: a clean stop.
    console.log(JSON.stringify(e.result));
    Deno.exit(0);
  }
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  Deno.exit(e instanceof SluiceError ? e.exitCode : 1);
}
Deno.exit(0);
