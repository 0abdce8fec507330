/**
 * The Sluice side of the streaming pair, run as its own process by
 * `bench/run.ts`: loads the config and runs the stream in-process with
 * `runStreamPipeline` (what `sluice stream --trigger available-now` does:
 * open the sandboxed database, every pending file in micro-batches with the
 * checkpoint, watermark and DLQ, close). Prints one JSON line: seconds from
 * loading the config to closing the database, and the stream's counts.
 *
 *   deno run --allow-ffi=./node_modules --allow-read --allow-write \
 *     --allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM bench/_stream_sluice.ts --config FILE
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadConfig, runStreamPipeline } from "../mod.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({ args: Deno.args, options: { config: { type: "string" } } });
  if (!values.config) {
    console.error("usage: _stream_sluice.ts --config FILE");
    Deno.exit(2);
  }
  const t0 = performance.now();
  const config = await loadConfig(values.config);
  const s = await runStreamPipeline(config, {
    trigger: "available-now",
    run: { trigger: "bench" },
  });
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({
    seconds,
    read: s.recordsRead,
    written: s.written,
    dead_lettered: s.deadLettered,
    by_reason: s.byReason,
    batches: s.batches,
    mode: "sluice",
  }));
}

if (import.meta.main) await main();
