/**
 * `sluice stream`: the streaming landing folder in micro-batches.
 *
 * @module
 */
import { Command, Option } from "commander";
import {
  CancelledError,
  defaultWorkerId,
  formatJetStreamSummary,
  formatStreamSummary,
  isJetStreaming,
  type JetStreamSummary,
  loadConfig,
  type PipelineConfig,
  requireStreaming,
  serveJetStream,
  serveStream,
  STREAM_TRIGGERS,
  type StreamSummary,
  type StreamTrigger,
  TimedOutError,
} from "../mod.ts";
import {
  type RunFlags,
  runOptions,
  withRunIdOption,
  withRunPolicyOptions,
} from "./_run_options.ts";
import { atLeast, intOption, out, setupLogging } from "./_shared.ts";

interface StreamOpts extends RunFlags {
  config: string;
  trigger: StreamTrigger;
  maxBatches?: number;
  runId?: string;
  workerId?: string;
}

/** Runs `fn`; a stream stopped between batches (signal, time limit) prints what it did first. */
async function printingStopped<S>(fn: () => Promise<S>, print: (s: S) => string): Promise<S> {
  try {
    return await fn();
  } catch (e) {
    const done = (e as { result?: S }).result;
    if ((e instanceof CancelledError || e instanceof TimedOutError) && done) out(print(done));
    throw e;
  }
}

/** `streaming.source.type: jetstream`: this process is one worker with its own shard. */
async function jetStream(config: PipelineConfig, opts: StreamOpts): Promise<void> {
  const summary = await printingStopped<JetStreamSummary>(
    () =>
      serveJetStream(config, {
        workerId: opts.workerId ?? defaultWorkerId(),
        trigger: opts.trigger,
        maxBatches: opts.maxBatches,
        run: runOptions("stream", opts),
      }),
    formatJetStreamSummary,
  );
  out(formatJetStreamSummary(summary));
}

/** The `stream` command. */
export function streamCommand(): Command {
  const command = new Command("stream")
    .description("ingest the streaming: landing folder in micro-batches (exactly-once checkpoint)")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .addOption(
      new Option(
        "--trigger <trigger>",
        "once: one batch; available-now: every pending file; " +
          "interval: a batch every trigger_interval until SIGINT/SIGTERM",
      ).choices([...STREAM_TRIGGERS]).makeOptionMandatory(),
    )
    .option("--max-batches <n>", "stop after this many batches", intOption("--max-batches"))
    .option("--worker-id <id>", "JetStream source: this worker's id (default the host name)");
  return withRunPolicyOptions(withRunIdOption(command)).action(
    async (opts: StreamOpts, cmd: Command) => {
      atLeast("--max-batches", opts.maxBatches, 1);
      const config = await loadConfig(opts.config);
      await setupLogging(cmd, { secrets: config.secrets });
      if (config.streaming && isJetStreaming(config.streaming)) {
        return await jetStream(config, opts);
      }
      requireStreaming(config);
      // withRun handles SIGINT/SIGTERM (runOptions sets handleSignals): the first
      // finishes the batch in flight and ends with exit 130/143, a second exits at once.
      const summary = await printingStopped<StreamSummary>(
        () =>
          serveStream(config, {
            trigger: opts.trigger,
            maxBatches: opts.maxBatches,
            run: runOptions("stream", opts),
          }),
        formatStreamSummary,
      );
      out(formatStreamSummary(summary));
    },
  );
}
