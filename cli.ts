/**
 * The `sluice` command. The only module that configures log sinks, prints to
 * stdout, and turns errors into one clear line and a documented exit code.
 *
 * @module
 */
import "./_preload_duckdb.ts"; // must stay the first import: see the module's doc
import "./_fast_version.ts"; // `sluice --version` exits here, before the rest is evaluated
import { getLogger } from "@logtape/logtape";
import { Argument, Command, CommanderError, Option } from "commander";
import {
  ConfigError,
  configureLogging,
  errorMessage,
  EXIT,
  formatConfigProblem,
  formatRunSummary,
  generateDemoData,
  initProject,
  loadConfig,
  openRun,
  openStreamRun,
  runDemo,
  runPipeline,
  serveMetrics,
  SLUICE_VERSION,
  SluiceError,
  type StageName,
  STAGES,
  UsageError,
  validatePipeline,
} from "./mod.ts";
import {
  buildReport,
  formatRunDetail,
  formatRunsTable,
  getRun,
  listRuns,
  logFormatInUse,
  newRunId,
  openLedger,
  systemClock,
  withLogContext,
  writeFileAtomic,
} from "./mod.ts";
import {
  checkTables,
  formatCheckProblems,
  formatCheckResults,
  type Layer,
  qualityGateError,
} from "./mod.ts";
import {
  type DlqFilter,
  explainStream,
  formatDlqListing,
  formatReplayResults,
  formatStreamSummary,
  listDlq,
  parseCrashPoint,
  replayDlq,
  requireStreaming,
  runStream,
  STREAM_TRIGGERS,
  type StreamTrigger,
} from "./mod.ts";

interface GlobalOptions {
  logFormat: "json" | "text" | "auto";
  logLevel: "debug" | "info" | "warning" | "error";
}

function out(text: string): void {
  console.log(text);
}

/** `run_id` and `pipeline` of the run this process is doing, for its error lines. */
let runLogFields: Record<string, unknown> = {};

/**
 * Writes an error line to stderr: plain text, or, when a run was under way
 * and logs are JSON, a JSON log line (`event: "command_failed"`) carrying
 * the run's id, so every line of a run parses and names its run.
 */
function printError(message: string, fields: Record<string, unknown> = {}): void {
  if (logFormatInUse() === "json" && runLogFields.run_id !== undefined) {
    getLogger(["sluice", "cli"]).error(message, {
      ...runLogFields,
      event: "command_failed",
      ...fields,
    });
  } else {
    console.error(message);
  }
}

function parseStages(value: string): StageName[] {
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(STAGES as readonly string[]).includes(n)) {
      throw new UsageError(`Cannot run: unknown stage "${n}" (valid: ${STAGES.join(", ")})`);
    }
  }
  return STAGES.filter((s) => names.includes(s));
}

function parseIntOption(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) {
      throw new UsageError(`Cannot use ${name} ${value}: expected an integer`);
    }
    return n;
  };
}

/** Configures the log sinks from the global options; with `secrets`, they are redacted. */
async function setupLogging(program: Command, secrets?: readonly string[]): Promise<void> {
  const g = program.opts<GlobalOptions>();
  await configureLogging({ format: g.logFormat, level: g.logLevel, secrets });
}

function buildProgram(): Command {
  const program = new Command()
    .name("sluice")
    .description("Cron-scheduled, observable data pipelines on embedded DuckDB")
    .version(SLUICE_VERSION, "-V, --version")
    .addOption(
      new Option("--log-format <format>", "log format on stderr").choices(["json", "text", "auto"])
        .default("auto"),
    )
    .addOption(
      new Option("--log-level <level>", "lowest level logged").choices([
        "debug",
        "info",
        "warning",
        "error",
      ]).default("info"),
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => Deno.stderr.writeSync(new TextEncoder().encode(s)) });

  program.command("run")
    .description("run the pipeline: extract, bronze, silver, gold, output")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .option("--stages <list>", `comma-separated stages (${STAGES.join(",")})`)
    .option("--run-id <id>", "use this run id instead of a new UUIDv7")
    .option("--trigger <name>", "what started the run (cli, cron...)", "cli")
    .action(async (opts: { config: string; stages?: string; runId?: string; trigger: string }) => {
      const stages = opts.stages ? parseStages(opts.stages) : undefined;
      const config = await loadConfig(opts.config);
      await setupLogging(program, config.secrets);
      // Known before the database opens, so every line of the run carries it.
      const runId = opts.runId ?? newRunId(systemClock);
      runLogFields = { run_id: runId, pipeline: config.pipeline };
      await withLogContext(runLogFields, async () => {
        const ctx = await openRun(config, { runId, trigger: opts.trigger });
        try {
          const summary = await runPipeline(ctx, { stages });
          out(formatRunSummary(summary));
          const checkProblems = formatCheckProblems(summary.checks);
          if (checkProblems) out(`data-quality warnings:\n${checkProblems}`);
        } finally {
          ctx.db.close();
        }
      });
    });

  program.command("validate")
    .description("check the config and bind all SQL without running the pipeline")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .action(async (opts: { config: string }) => {
      const config = await loadConfig(opts.config);
      await validatePipeline(config, { locate: config.locate });
      out("ok");
    });

  program.command("generate")
    .description("write deterministic e-commerce sample data (landing CSV files)")
    .requiredOption("--out <dir>", "output folder")
    .option("--scale <n>", "orders to generate", parseIntOption("--scale"), 100_000)
    .option("--seed <n>", "random seed", parseIntOption("--seed"), 42)
    .action(async (opts: { out: string; scale: number; seed: number }) => {
      const t0 = performance.now();
      const g = await generateDemoData(opts.out, { scale: opts.scale, seed: opts.seed });
      out(
        `generated ${g.orders} orders, ${g.customers} customers, ${g.products} products in ${g.files.length} files under ${g.outDir}/landing (${
          ((performance.now() - t0) / 1000).toFixed(1)
        }s)`,
      );
    });

  program.command("demo")
    .description("generate sample data, run the example pipeline, print a summary")
    .option("--dir <dir>", "demo folder", "./demo")
    .option("--scale <n>", "orders to generate", parseIntOption("--scale"), 100_000)
    .option("--seed <n>", "random seed", parseIntOption("--seed"), 42)
    .action(async (opts: { dir: string; scale: number; seed: number }) => {
      const { generated, summary, configFile } = await runDemo(opts.dir, {
        scale: opts.scale,
        seed: opts.seed,
      });
      out(
        `generated ${generated.orders} orders in ${generated.files.length} files; config ${configFile}`,
      );
      out(formatRunSummary(summary));
      const checkProblems = formatCheckProblems(summary.checks);
      if (checkProblems) out(`data-quality warnings:\n${checkProblems}`);
    });

  program.command("init")
    .description("scaffold a new pipeline project")
    .argument("<dir>", "folder to create")
    .option("--name <name>", "pipeline name")
    .action(async (dir: string, opts: { name?: string }) => {
      const created = await initProject(dir, { name: opts.name });
      out(created.map((p) => `created ${p}`).join("\n"));
    });

  program.command("check")
    .description("run the data-quality checks alone against the current tables")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .addOption(
      new Option("--layer <layer>", "only this layer's checks (silver includes quarantine checks)")
        .choices(["bronze", "silver", "gold"]),
    )
    .option("--table <name>", "only this table's checks")
    .action(async (opts: { config: string; layer?: Layer; table?: string }) => {
      const config = await loadConfig(opts.config);
      await setupLogging(program, config.secrets);
      const runId = newRunId(systemClock);
      runLogFields = { run_id: runId, pipeline: config.pipeline };
      await withLogContext(runLogFields, async () => {
        const ctx = await openRun(config, { runId, trigger: "cli" });
        try {
          const { results, failed } = await checkTables(ctx, {
            layers: opts.layer ? [opts.layer] : undefined,
            tables: opts.table ? [opts.table] : undefined,
          });
          out(formatCheckResults(results));
          if (failed.length > 0) throw qualityGateError(failed);
        } finally {
          ctx.db.close();
        }
      });
    });

  program.command("runs")
    .description("list recent runs from the run ledger, or show one in full")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .option("--limit <n>", "runs to list", parseIntOption("--limit"), 20)
    .option("--json", "print JSON on stdout")
    .option("--show <run_id>", "show one run (id or unique prefix): stages, checks, manifest")
    .action(async (opts: { config: string; limit: number; json?: boolean; show?: string }) => {
      if (opts.limit < 1) {
        throw new UsageError(`Cannot use --limit ${opts.limit}: must be 1 or more`);
      }
      const config = await loadConfig(opts.config);
      const db = await openLedger(config);
      if (!db) {
        if (opts.show !== undefined) {
          throw new UsageError(`Cannot show run "${opts.show}": no run has been recorded yet`);
        }
        out(opts.json ? "[]" : "no runs recorded yet");
        return;
      }
      try {
        const samples = config.observability?.report.failing_samples ?? 10;
        if (opts.show !== undefined) {
          const run = await getRun(db, opts.show, { samples });
          out(opts.json ? JSON.stringify(run, null, 2) : formatRunDetail(run));
        } else {
          const runs = await listRuns(db, { pipeline: config.pipeline, limit: opts.limit });
          out(opts.json ? JSON.stringify(runs, null, 2) : formatRunsTable(runs));
        }
      } finally {
        db.close();
      }
    });

  program.command("report")
    .description("write a self-contained HTML report of a run (default the latest)")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .option("--run <run_id>", "run id or unique prefix (default the latest run)")
    .option("-o, --output <file>", "HTML file to write (default observability.report.path)")
    .option("--history <n>", "runs in the history charts", parseIntOption("--history"))
    .action(async (opts: { config: string; run?: string; output?: string; history?: number }) => {
      const config = await loadConfig(opts.config);
      const target = opts.output ?? config.observability?.report.path;
      if (!target) {
        throw new UsageError(
          "Cannot write a report: give -o FILE.html (or set observability.report.path)",
        );
      }
      if (opts.history !== undefined && opts.history < 1) {
        throw new UsageError(`Cannot use --history ${opts.history}: must be 1 or more`);
      }
      const db = await openLedger(config);
      if (!db) throw new UsageError("Cannot write a report: no run has been recorded yet");
      try {
        const html = await buildReport(db, {
          pipeline: config.pipeline,
          runId: opts.run,
          history: opts.history ?? config.observability?.report.history ?? 30,
          failingSamples: config.observability?.report.failing_samples ?? 10,
          generatedAt: systemClock.now(),
        });
        await writeFileAtomic(target, html);
        out(`wrote ${target}`);
      } finally {
        db.close();
      }
    });

  program.command("stream")
    .description("ingest the streaming: landing folder in micro-batches (exactly-once checkpoint)")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .addOption(
      new Option(
        "--trigger <trigger>",
        "once: one batch; available-now: every pending file; " +
          "interval: a batch every trigger_interval until SIGINT/SIGTERM",
      )
        .choices([...STREAM_TRIGGERS]).makeOptionMandatory(),
    )
    .option("--max-batches <n>", "stop after this many batches", parseIntOption("--max-batches"))
    .option("--run-id <id>", "use this run id instead of a new UUIDv7")
    .action(
      async (
        opts: { config: string; trigger: StreamTrigger; maxBatches?: number; runId?: string },
      ) => {
        if (opts.maxBatches !== undefined && opts.maxBatches < 1) {
          throw new UsageError(`Cannot use --max-batches ${opts.maxBatches}: must be 1 or more`);
        }
        const config = await loadConfig(opts.config);
        requireStreaming(config);
        await setupLogging(program, config.secrets);
        // Test hook for the crash tests: SLUICE_CRASH_AT=<step>[@<batch>] kills this process.
        let crash: string | undefined;
        try {
          crash = Deno.env.get("SLUICE_CRASH_AT");
        } catch { /* no env permission: no hook */ }
        const crashAt = crash ? parseCrashPoint(crash) : undefined;
        const runId = opts.runId ?? newRunId(systemClock);
        runLogFields = { run_id: runId, pipeline: config.pipeline };
        const controller = new AbortController();
        const log = getLogger(["sluice", "cli"]);
        const onSignal = (signal: Deno.Signal) => () => {
          if (controller.signal.aborted) {
            // A second signal abandons the batch in flight: nothing of it is committed.
            log.warn("second signal, abandoning the current batch", {
              ...runLogFields,
              event: "stream_abandoned",
              signal,
            });
            Deno.exit(EXIT.ok);
          }
          log.info("stop requested, finishing the current batch", {
            ...runLogFields,
            event: "stream_stop_requested",
            signal,
          });
          controller.abort();
        };
        const handlers = [["SIGINT", onSignal("SIGINT")], [
          "SIGTERM",
          onSignal("SIGTERM"),
        ]] as const;
        for (const [sig, fn] of handlers) Deno.addSignalListener(sig, fn);
        try {
          await withLogContext(runLogFields, async () => {
            const ctx = await openStreamRun(config, { runId, trigger: "cli" });
            // observability.metrics.server: /metrics and /healthz while the stream runs.
            const serverConfig = config.observability?.metrics.server;
            let server: ReturnType<typeof serveMetrics> | undefined;
            if (serverConfig) {
              try {
                server = serveMetrics(ctx.metrics, {
                  port: serverConfig.port,
                  hostname: serverConfig.host,
                  logFields: runLogFields,
                });
              } catch (e) {
                ctx.db.close();
                const hint = e instanceof Deno.errors.NotCapable
                  ? ` (allow it with --allow-net=${serverConfig.host}:${serverConfig.port})`
                  : "";
                throw new SluiceError(
                  `Cannot serve metrics on ${serverConfig.host}:${serverConfig.port}: ${
                    errorMessage(e)
                  }${hint}`,
                  { cause: e },
                );
              }
            }
            try {
              const summary = await runStream(ctx, {
                trigger: opts.trigger,
                signal: controller.signal,
                maxBatches: opts.maxBatches,
                crashAt,
              });
              out(formatStreamSummary(summary));
            } finally {
              await server?.close();
              ctx.db.close();
            }
          });
        } finally {
          for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
        }
      },
    );

  program.command("dlq")
    .description("list or replay dead letters (the stream DLQ and batch quarantine tables)")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .addArgument(new Argument("<action>", "list | replay").choices(["list", "replay"]))
    .option("--table <name>", "only this dead-letter table (e.g. events__dlq, orders__quarantine)")
    .option("--run <run_id>", "only rows refused by this run")
    .option(
      "--reason <codes>",
      "only these reason codes, comma-separated (e.g. late,malformed_json)",
    )
    .option("--where <sql>", "only rows matching this SQL condition over the DLQ columns")
    .option("--pending", "list: only rows not yet replayed")
    .option("--limit <n>", "list: rows to show", parseIntOption("--limit"), 50)
    .option("--dry-run", "replay: report what would be replayed, change nothing")
    .option("--json", "list: print the rows as JSON lines")
    .action(async (
      action: "list" | "replay",
      opts: {
        config: string;
        table?: string;
        run?: string;
        reason?: string;
        where?: string;
        pending?: boolean;
        limit: number;
        dryRun?: boolean;
        json?: boolean;
      },
    ) => {
      if (opts.limit < 0) {
        throw new UsageError(`Cannot use --limit ${opts.limit}: must be 0 or more`);
      }
      const config = await loadConfig(opts.config);
      await setupLogging(program, config.secrets);
      const filter: DlqFilter = {
        table: opts.table,
        runId: opts.run,
        reasons: opts.reason?.split(",").map((r) => r.trim()).filter(Boolean),
        where: opts.where,
      };
      const runId = newRunId(systemClock);
      runLogFields = { run_id: runId, pipeline: config.pipeline };
      await withLogContext(runLogFields, async () => {
        const ctx = await openRun(config, { runId, trigger: "cli" });
        try {
          if (action === "list") {
            const listing = await listDlq(ctx, filter, {
              limit: opts.limit,
              pendingOnly: opts.pending,
            });
            if (opts.json) {
              for (const row of listing.rows) out(JSON.stringify(row));
            } else {
              out(formatDlqListing(listing));
            }
          } else {
            const results = await replayDlq(ctx, filter, { dryRun: opts.dryRun });
            out(formatReplayResults(results, { dryRun: opts.dryRun }));
          }
        } finally {
          ctx.db.close();
        }
      });
    });

  program.command("explain")
    .description("print the stream's delivery guarantee in plain words")
    .requiredOption("-c, --config <file>", "pipeline.yaml")
    .action(async (opts: { config: string }) => {
      const config = await loadConfig(opts.config);
      out(explainStream(config));
    });

  program.hook("preAction", async () => await setupLogging(program));
  return program;
}

/** Runs the CLI with `args` and returns the exit code. */
async function main(args: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(args, { from: "user" });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === "commander.version" || e.code === "commander.helpDisplayed" ||
        e.code === "commander.help"
      ) {
        return EXIT.ok;
      }
      return EXIT.usage;
    }
    if (e instanceof ConfigError) {
      for (const p of e.problems) {
        printError(formatConfigProblem(p), { error_kind: e.kind, exit_code: e.exitCode });
      }
      return e.exitCode;
    }
    if (e instanceof SluiceError) {
      printError(`sluice: ${e.message}`, { error_kind: e.kind, exit_code: e.exitCode });
      return e.exitCode;
    }
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      printError(`sluice: ${(e as Error).message}`, { error_kind: "io", exit_code: EXIT.failed });
      return EXIT.failed;
    }
    printError(
      `sluice: internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`,
      { error_kind: "internal", exit_code: EXIT.failed },
    );
    return EXIT.failed;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
