/**
 * The `sluice` command. The only module that configures log sinks, prints to
 * stdout, and turns errors into one clear line and a documented exit code.
 *
 * @module
 */
import "./_preload_duckdb.ts"; // must stay the first import: see the module's doc
import { Command, CommanderError, Option } from "commander";
import {
  ConfigError,
  configureLogging,
  EXIT,
  formatConfigProblem,
  formatRunSummary,
  generateDemoData,
  initProject,
  loadConfig,
  openRun,
  runDemo,
  runPipeline,
  SLUICE_VERSION,
  SluiceError,
  type StageName,
  STAGES,
  UsageError,
  validatePipeline,
} from "./mod.ts";

interface GlobalOptions {
  logFormat: "json" | "text" | "auto";
  logLevel: "debug" | "info" | "warning" | "error";
}

function out(text: string): void {
  console.log(text);
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

async function setupLogging(program: Command): Promise<void> {
  const g = program.opts<GlobalOptions>();
  await configureLogging({ format: g.logFormat, level: g.logLevel });
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
      await configureLogging({
        ...program.opts<GlobalOptions>(),
        format: program.opts<GlobalOptions>().logFormat,
        level: program.opts<GlobalOptions>().logLevel,
        secrets: config.secrets,
      });
      const ctx = await openRun(config, { runId: opts.runId, trigger: opts.trigger });
      try {
        const summary = await runPipeline(ctx, { stages });
        out(formatRunSummary(summary));
      } finally {
        ctx.db.close();
      }
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
    });

  program.command("init")
    .description("scaffold a new pipeline project")
    .argument("<dir>", "folder to create")
    .option("--name <name>", "pipeline name")
    .action(async (dir: string, opts: { name?: string }) => {
      const created = await initProject(dir, { name: opts.name });
      out(created.map((p) => `created ${p}`).join("\n"));
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
      for (const p of e.problems) console.error(formatConfigProblem(p));
      return e.exitCode;
    }
    if (e instanceof SluiceError) {
      console.error(`sluice: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied) {
      console.error(`sluice: ${(e as Error).message}`);
      return EXIT.failed;
    }
    console.error(
      `sluice: internal error: ${e instanceof Error ? e.stack ?? e.message : String(e)}`,
    );
    return EXIT.failed;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
