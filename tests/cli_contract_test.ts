/**
 * The CLI contract, tested the way users run the CLI: through the real
 * `deno task sluice …` (so with the task's exact permissions and
 * `--no-prompt`), on a pseudo-terminal (`script -qec`) and with pipes, with
 * and without `NO_COLOR`. The command tree is read from the commander
 * program, so a command added to `cli/program.ts` is covered here with no
 * change to this file; the examples are read from the README.
 *
 * `deno task` itself writes a `Task sluice …` header to stderr, coloured
 * even into a pipe unless NO_COLOR is set; that line is Deno's, not
 * Sluice's, and is left out of the ANSI check.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Command } from "commander";
import { DUCKDB_VERSION } from "../_fast_version.ts";
import { SLUICE_VERSION } from "../mod.ts";
import { buildProgram } from "../cli/program.ts";
import { openEngine } from "../core/engine.ts";
import { event, makeStreamProject, streamYaml, writeLanding } from "./fixtures/streaming.ts";
import { workerYaml } from "./_jetstream.ts";

const REPO = new URL("..", import.meta.url).pathname;
const SCRIPT = "/usr/bin/script";
const ENV = "/usr/bin/env";
const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[`);
const TASK_HEADER = new RegExp(`^(${ESC}\\[[0-9;]*m)*Task(${ESC}\\[[0-9;]*m)* `);
const STACK_FRAME = /^\s{4}at /m;

interface Mode {
  /** On a pseudo-terminal (stdout and stderr are the same terminal). */
  tty: boolean;
  /** `NO_COLOR=1` set, else removed from the environment. */
  noColor: boolean;
}

const MODES: readonly Mode[] = [
  { tty: false, noColor: false },
  { tty: false, noColor: true },
  { tty: true, noColor: false },
  { tty: true, noColor: true },
];

function label(m: Mode): string {
  return `${m.tty ? "tty" : "pipes"}${m.noColor ? "+NO_COLOR" : ""}`;
}

interface Result {
  code: number;
  /** stdout (on a terminal: stdout and stderr together). */
  stdout: string;
  /** stderr (empty on a terminal). */
  stderr: string;
}

function shellQuote(s: string): string {
  return /^[\w./=,:@+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

const scriptAvailable = await Deno.stat(SCRIPT).then(() => true, () => false);
if (!scriptAvailable) {
  if (Deno.env.get("CI") === "true") throw new Error(`CI=true but ${SCRIPT} is missing`);
  console.warn(`SKIPPED: the pseudo-terminal runs need ${SCRIPT} (Debian package util-linux)`);
}

/** Runs `deno task sluice <args>` from the repository in the given mode. */
async function task(
  args: readonly string[],
  mode: Mode,
  extraEnv: readonly string[] = [],
): Promise<Result> {
  const envArgs = [...(mode.noColor ? ["NO_COLOR=1"] : ["-u", "NO_COLOR"]), ...extraEnv];
  const line = ["deno", "task", "sluice", ...args].map(shellQuote).join(" ");
  const argv = mode.tty
    ? [...envArgs, SCRIPT, "-qec", line, "/dev/null"]
    : [...envArgs, "deno", "task", "sluice", ...args];
  const out = await new Deno.Command(ENV, {
    args: argv,
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Output without the `Task sluice …` line `deno task` writes itself. */
function ours(text: string): string {
  return text.split(/\r?\n/).filter((l) => !TASK_HEADER.test(l)).join("\n");
}

/** The contract every command line meets in every mode. */
function assertContract(what: string, r: Result, mode: Mode): void {
  const all = `${r.stdout}\n${r.stderr}`;
  const where = `${what} [${label(mode)}]\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  assert.equal(r.code, 0, `exit ${r.code}: ${where}`);
  assert.doesNotMatch(all, /internal error/, where);
  assert.doesNotMatch(all, STACK_FRAME, where);
  assert.doesNotMatch(all, /NotCapable|Requires \w+ access|Granted|Allow\?/, where);
  if (mode.noColor || !mode.tty) assert.doesNotMatch(ours(all), ANSI, `ANSI code: ${where}`);
}

/** Every command path of the program: `["run"]`, `["dlq"]`, sub-commands of sub-commands... */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  const paths: string[][] = [];
  for (const sub of command.commands) {
    const path = [...prefix, sub.name()];
    paths.push(path, ...commandPaths(sub, path));
  }
  return paths;
}

/** Runs `jobs` at most `limit` at a time. */
async function pool<T>(jobs: (() => Promise<T>)[], limit = 2): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

const modes = scriptAvailable ? MODES : MODES.filter((m) => !m.tty);

Deno.test("every command's --help exits 0 with help on stdout, no prompt, no stack, no ANSI off a colour terminal", async () => {
  const paths = [[], ...commandPaths(buildProgram())];
  assert.ok(paths.length >= 12, `the walk found ${paths.length} commands`);
  const jobs = paths.flatMap((path) =>
    modes.map((mode) => async () => {
      const r = await task([...path, "--help"], mode);
      assertContract(`sluice ${path.join(" ")} --help`, r, mode);
      assert.match(r.stdout, new RegExp(`Usage: sluice ${path.join(" ")}`), label(mode));
      if (!mode.tty) assert.equal(ours(r.stderr).trim(), "", "help goes to stdout only");
    })
  );
  await pool(jobs);
});

Deno.test("--version prints the Sluice, DuckDB and Deno versions, and DuckDB's is the real one", async () => {
  const db = await openEngine(":memory:", { allowedDirectories: [REPO] });
  try {
    const row = await db.one<{ v: string }>("SELECT version() AS v");
    assert.equal(DUCKDB_VERSION, row?.v, "_fast_version.ts DUCKDB_VERSION is the bundled DuckDB");
  } finally {
    db.close();
  }
  const expected = `sluice ${SLUICE_VERSION}\nduckdb ${DUCKDB_VERSION}\ndeno ${Deno.version.deno}`;
  for (const args of [["--version"], ["-V"], ["--log-level", "debug", "--version"]]) {
    const r = await task(args, { tty: false, noColor: false });
    assertContract(`sluice ${args.join(" ")}`, r, { tty: false, noColor: false });
    assert.equal(r.stdout.trim(), expected);
  }
});

Deno.test("FORCE_COLOR and CLICOLOR_FORCE are never read: help stays plain and needs no env permission", async () => {
  const mode: Mode = { tty: false, noColor: false };
  for (const path of [[], ["run"], ["stream"]]) {
    const r = await task([...path, "--help"], mode, ["FORCE_COLOR=1", "CLICOLOR_FORCE=1"]);
    assertContract(`FORCE_COLOR=1 CLICOLOR_FORCE=1 sluice ${path.join(" ")} --help`, r, mode);
    assert.match(r.stdout, /Usage: sluice/);
  }
});

/** A README example, as written, with its paths pointed into a temp folder. */
interface Example {
  /** The line as the README has it. */
  readme: string;
  /** The arguments after `deno task sluice`, adapted. */
  args: string[];
}

/** The `deno task sluice …` lines of the README's shell blocks, comments and redirections cut. */
async function readmeExamples(): Promise<string[]> {
  const text = await Deno.readTextFile(join(REPO, "README.md"));
  const lines: string[] = [];
  for (const block of text.matchAll(/```(?:sh|bash|shell)\n([\s\S]*?)```/g)) {
    for (const raw of block[1].split("\n")) {
      const line = raw.replace(/\s+#.*$/, "").trim();
      if (line.startsWith("deno task sluice ")) lines.push(line);
    }
  }
  return lines;
}

/** Splits a README command line into words (single and double quotes kept together). */
function words(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/**
 * Points a README example into the temp folders: `demo/` is a
 * `sluice demo --scale 1000` project, `pipeline.yaml` a streaming project,
 * `my_pipeline`, `/tmp/shop` and `run.html` go into the temp folder, large
 * `--scale`s become 1000, `RUN_ID` a recorded run, `--trigger interval`
 * stops after one batch (of a file written just before), and `> file`
 * writes into the temp folder.
 */
function adapt(line: string, dirs: { tmp: string; demo: string; stream: string; runId: string }) {
  const args = words(line).slice(3);
  const outArgs: string[] = [];
  let redirect: string | undefined;
  for (let i = 0; i < args.length; i++) {
    let a = args[i];
    if (a === ">") {
      redirect = join(dirs.tmp, args[++i].replace(/^.*\//, ""));
      continue;
    }
    if (a.startsWith("demo/")) a = join(dirs.demo, a.slice("demo/".length));
    else if (a === "pipeline.yaml") a = join(dirs.stream, "pipeline.yaml");
    else if (a === "my_pipeline" || a === "run.html") a = join(dirs.tmp, a);
    else if (a.startsWith("/tmp/")) a = join(dirs.tmp, a.slice("/tmp/".length));
    else if (a === "RUN_ID") a = dirs.runId;
    else if (args[i - 1] === "--scale" && Number(a) > 5_000) a = "1000";
    outArgs.push(a);
  }
  if (outArgs.includes("interval") && !outArgs.includes("--max-batches")) {
    outArgs.push("--max-batches", "1");
  }
  return { readme: line, args: outArgs, redirect };
}

/** Sets up the temp projects one mode's README run works in. */
async function setUp(mode: Mode) {
  const tmp = await Deno.makeTempDir({ prefix: "sluice_contract_" });
  const demo = join(tmp, "demo");
  const r = await task(["demo", "--dir", demo, "--scale", "1000"], mode);
  assertContract("sluice demo --dir DIR --scale 1000", r, mode);
  const stream = await makeStreamProject(streamYaml({ delay: "1 minute" }));
  const rows = [event("e1", 0), event("e2", 1), "{broken", event("e3", 2)];
  await writeLanding(stream, "a.ndjson", rows.join("\n") + "\n");
  const runs = await task(["runs", "-c", join(demo, "pipeline.yaml"), "--json"], {
    tty: false,
    noColor: true,
  });
  const runId = (JSON.parse(runs.stdout) as { run_id: string }[])[0].run_id;
  return { tmp, demo, stream: stream.dir, runId, project: stream };
}

/**
 * The README examples run twice (each costs a real run): in pipes without
 * NO_COLOR (no ANSI must reach a pipe) and on a terminal with NO_COLOR (none
 * must reach the terminal either); `--help` above covers all four modes.
 */
const README_MODES = modes.filter((m) => m.tty === m.noColor);

Deno.test("every README example of `deno task sluice` works as written, on a terminal and in pipes", async () => {
  const lines = await readmeExamples();
  assert.ok(lines.length >= 15, `found ${lines.length} README examples`);
  await pool(README_MODES.map((mode) => async () => {
    const dirs = await setUp(mode);
    try {
      for (const [i, line] of lines.entries()) {
        const ex = adapt(line, dirs);
        if (ex.args.includes("interval")) {
          // A new file, so the one batch `--max-batches 1` waits for comes at once.
          await writeLanding(dirs.project, `b${i}.ndjson`, event(`n${i}`, 10 + i) + "\n");
        }
        const r = await task(ex.args, mode);
        assertContract(`${ex.readme}\n  (ran: sluice ${ex.args.join(" ")})`, r, mode);
        if (ex.redirect) await Deno.writeTextFile(ex.redirect, r.stdout);
      }
    } finally {
      await Deno.remove(dirs.tmp, { recursive: true });
      await Deno.remove(dirs.stream, { recursive: true });
    }
  }));
});

Deno.test("`run --json` and `runs --json` print one JSON document on stdout while debug logs go to stderr", async () => {
  const mode: Mode = { tty: false, noColor: false };
  const tmp = await Deno.makeTempDir({ prefix: "sluice_contract_json_" });
  try {
    const demo = join(tmp, "demo");
    const d = await task(["demo", "--dir", demo, "--scale", "1000", "--json"], mode);
    assertContract("sluice demo --json", d, mode);
    assert.equal(JSON.parse(d.stdout).status, "success");
    const config = join(demo, "pipeline.yaml");
    // silver and gold rebuild (and are profiled, at debug) without an extract.
    const args = ["--log-level", "debug", "run", "-c", config, "--stages", "silver,gold", "--json"];
    const run = await task(args, mode);
    assertContract("sluice --log-level debug run --stages silver,gold --json", run, mode);
    const summary = JSON.parse(run.stdout);
    assert.equal(summary.status, "success");
    assert.deepEqual(summary.stages.map((s: { stage: string }) => s.stage), ["silver", "gold"]);
    assert.ok(summary.checks.length > 0, "the checks are in the document");
    const debugLines = ours(run.stderr).split("\n").filter(Boolean).map((l) => JSON.parse(l));
    assert.ok(debugLines.some((l) => l.level === "debug"), "debug logs went to stderr");
    assert.ok(debugLines.every((l) => l.run_id === summary.runId), "every log line names the run");

    const runs = await task(["--log-level", "debug", "runs", "-c", config, "--json"], mode);
    assertContract("sluice --log-level debug runs --json", runs, mode);
    const listed = JSON.parse(runs.stdout) as { run_id: string }[];
    assert.equal(listed[0].run_id, summary.runId);
    assert.equal(listed.length, 2);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a missing permission is one line naming the flag to add, never a prompt or a stack", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "sluice_contract_perm_" });
  try {
    const out = await new Deno.Command("deno", {
      args: [
        "run",
        "--no-prompt",
        `--allow-ffi=${join(REPO, "node_modules")}`,
        "--allow-read",
        "--allow-env=SLUICE_*,LOG_TOKENS,LOG_STREAM,NO_COLOR,TERM",
        join(REPO, "cli.ts"),
        "init",
        join(tmp, "p"),
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 1, stderr);
    assert.doesNotMatch(stderr, STACK_FRAME);
    assert.equal(stderr.split("\n").length, 1, stderr);
    assert.match(stderr, /^sluice: missing permission: .*\(add --allow-write=\S+ to the deno run/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a NATS server on another host under the task's --allow-net stops at once with exit 2 naming the flag", async () => {
  // Deno refuses the connection before it leaves this machine; without the check the
  // client saw an unreachable server and the worker retried for two minutes.
  const tmp = await Deno.makeTempDir({ prefix: "sluice_contract_natsnet_" });
  try {
    const cfg = join(tmp, "pipeline.yaml");
    await Deno.writeTextFile(
      cfg,
      workerYaml("w1", { servers: ["nats://nats-1.example.internal:4222"] }),
    );
    for (const mode of [MODES[0], MODES[2]]) {
      if (mode.tty && !scriptAvailable) continue;
      const r = await task(["stream", "-c", cfg, "--trigger", "available-now"], mode);
      const all = `${r.stdout}\n${r.stderr}`;
      assert.equal(r.code, 2, `[${label(mode)}] ${all}`);
      assert.match(
        all,
        /sluice: Cannot connect to NATS \(nats:\/\/nats-1\.example\.internal:4222\): no network permission for nats-1\.example\.internal:4222; run with --allow-net=127\.0\.0\.1,localhost,nats-1\.example\.internal:4222/,
        `[${label(mode)}] ${all}`,
      );
      assert.doesNotMatch(all, /nats_retry|NotCapable|EPERM/, `[${label(mode)}] ${all}`);
      assert.doesNotMatch(all, STACK_FRAME, `[${label(mode)}] ${all}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("on a terminal a run shows stage progress on stderr and the summary, not the info lines", async () => {
  if (!scriptAvailable) return;
  const tmp = await Deno.makeTempDir({ prefix: "sluice_contract_tty_" });
  try {
    const r = await task(["demo", "--dir", join(tmp, "demo"), "--scale", "1000"], {
      tty: true,
      noColor: true,
    });
    assertContract("sluice demo on a terminal", r, { tty: true, noColor: true });
    for (const stage of ["extract", "bronze", "silver", "gold", "output"]) {
      assert.match(r.stdout, new RegExp(`✓ ${stage}\\s+[\\d,]+ (rows|files)`), stage);
    }
    assert.match(r.stdout, /run \S+: success/);
    assert.doesNotMatch(r.stdout, /INFO /, "info lines are not shown at the default level");
    assert.doesNotMatch(r.stdout, /WARN .*check failed/, "check warnings are in the summary");
    assert.match(r.stdout, /data-quality warnings:/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
