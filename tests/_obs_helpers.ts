/**
 * Helpers of the observability tests: e-commerce demo projects with an
 * `observability:` section, in-process and subprocess runs, free ports, and
 * real server processes (Prometheus, Pushgateway, node_exporter, Chromium)
 * that skip loudly when their Debian package is missing and fail under
 * `CI=true`.
 *
 * @module
 */
import { join } from "node:path";
import { Registry } from "prom-client";
import type { Clock } from "../core/clock.ts";
import { loadConfig } from "../core/config/mod.ts";
import type { RunContext, RunSummary } from "../core/run_context.ts";
import { ECOMMERCE_PIPELINE_YAML } from "../scaffold/example_pipeline.ts";
import { generateDemoData } from "../scaffold/generate.ts";
import { withRun } from "../runtime/with_run.ts";
import { runPipeline } from "../stages/pipeline.ts";

/** A temp e-commerce project. */
export interface DemoProject {
  /** The project folder. */
  dir: string;
  /** Its pipeline.yaml. */
  configFile: string;
}

/**
 * Generates demo data (2000 orders) in a temp folder and writes the example
 * config with `extraYaml` appended (e.g. an `observability:` section).
 */
export async function makeDemoProject(extraYaml = "", options: { seed?: number } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "sluice_obs_" });
  await generateDemoData(dir, { scale: 2000, seed: options.seed ?? 7 });
  const configFile = join(dir, "pipeline.yaml");
  await Deno.writeTextFile(configFile, `${ECOMMERCE_PIPELINE_YAML}\n${extraYaml}`);
  return { dir, configFile } satisfies DemoProject;
}

/** Rewrites the project's config (keeping its folder), e.g. to break a model. */
export async function rewriteConfig(p: DemoProject, edit: (yaml: string) => string) {
  await Deno.writeTextFile(p.configFile, edit(await Deno.readTextFile(p.configFile)));
}

/** The result of an in-process run. */
export interface InProcessRun {
  /** Its run id. */
  runId: string;
  /** Summary (also for a failed run). */
  summary?: RunSummary;
  /** The error of a failed run. */
  error?: unknown;
  /** The run's registry, as the observer left it. */
  registry: Registry;
}

/** Runs the project once in this process (the observer included). */
export async function runInProcess(
  p: DemoProject,
  options: { clock?: Clock; runId?: string; trigger?: string } = {},
): Promise<InProcessRun> {
  const config = await loadConfig(p.configFile);
  const registry = new Registry();
  let runId = options.runId ?? "";
  try {
    const summary = await withRun(config, {
      clock: options.clock,
      runId: options.runId,
      trigger: options.trigger ?? "test",
      metrics: registry,
    }, (ctx: RunContext) => {
      runId = ctx.runId;
      return runPipeline(ctx);
    });
    return { runId, summary, registry };
  } catch (error) {
    return { runId, error, registry };
  }
}

/** Runs the CLI as a subprocess (`--allow-net=127.0.0.1` included). */
export async function cli(
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const root = new URL("../", import.meta.url).pathname;
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      `--allow-ffi=${root}node_modules`,
      "--allow-read",
      "--allow-write",
      "--allow-net=127.0.0.1",
      "--allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
      `${root}cli.ts`,
      ...args,
    ],
    env: { NO_COLOR: "1", ...options.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Whether a server binary from a Debian package is installed. Without it the
 * test is ignored with a loud warning naming the package, except under
 * `CI=true`, where the test runs and fails on the missing binary.
 */
export function requireBinary(path: string, pkg: string): { ignore: boolean } {
  let present = false;
  try {
    present = Deno.statSync(path).isFile;
  } catch {
    present = false;
  }
  if (present) return { ignore: false };
  if (Deno.env.get("CI") === "true") return { ignore: false };
  console.warn(
    `\n!!! SKIPPING: ${path} is not installed. Install the Debian package with\n` +
      `!!!   apt-get install ${pkg}\n` +
      `!!! to run this real-server test (under CI=true it fails instead).\n`,
  );
  return { ignore: true };
}

/** Fails clearly when a required binary is missing (the CI=true case). */
export function assertBinary(path: string, pkg: string): void {
  try {
    if (Deno.statSync(path).isFile) return;
  } catch { /* reported below */ }
  throw new Error(`${path} is missing: CI must install the Debian package ${pkg}`);
}

/** A running server process. */
export interface Server {
  /** Base URL. */
  url: string;
  /** Output so far (stdout and stderr), for failure messages. */
  log(): string;
  /** Kills the process and waits for it. */
  stop(): Promise<void>;
}

/**
 * Starts `cmd` and polls `readyPath` on `http://127.0.0.1:<port>` until it
 * answers 200 (at most `timeoutMs`, 200 ms apart).
 */
export async function startServer(
  cmd: string,
  args: string[],
  options: { port: number; readyPath: string; timeoutMs?: number },
): Promise<Server> {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .spawn();
  let output = "";
  const dec = new TextDecoder();
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output = (output + dec.decode(chunk)).slice(-20_000);
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const url = `http://127.0.0.1:${options.port}`;
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async () => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await status;
    await drained;
  };
  const deadline = (options.timeoutMs ?? 30_000) / 200;
  for (let i = 0; i < deadline; i++) {
    if (exited) break;
    try {
      const r = await fetch(url + options.readyPath);
      await r.body?.cancel();
      if (r.ok) return { url, log: () => output, stop };
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop();
  throw new Error(`${cmd} did not become ready on ${url}${options.readyPath}:\n${output}`);
}

/** Polls `fn` until it returns a value (not undefined), at most `tries` times `ms` apart. */
export async function poll<T>(
  fn: () => Promise<T | undefined>,
  options: { tries?: number; ms?: number } = {},
): Promise<T | undefined> {
  for (let i = 0; i < (options.tries ?? 100); i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, options.ms ?? 200));
  }
  return undefined;
}

/** Removes a temp folder, ignoring a folder already gone. */
export async function cleanup(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
