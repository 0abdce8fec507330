/**
 * examples/deploy/: the Prometheus alert rules load in the real promtool and
 * pass their unit tests, the systemd units pass `systemd-analyze verify`, and
 * the commands in the service unit and the crontab run a real pipeline whose
 * metrics make the alerts fire (evaluated by promtool).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";

const ROOT = new URL("..", import.meta.url).pathname;
const DEPLOY = join(ROOT, "examples", "deploy");
const PROMTOOL = "/usr/bin/promtool";
const SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze";
const CI = Deno.env.get("CI") === "true";
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** promtool is required under CI (Debian's prometheus package ships it); else skip loudly. */
async function havePromtool(): Promise<boolean> {
  if (await exists(PROMTOOL)) return true;
  if (CI) assert.fail(`${PROMTOOL} is missing (install the Debian package prometheus)`);
  console.warn(`SKIPPED: ${PROMTOOL} is missing (install the Debian package prometheus)`);
  return false;
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** `Key=value` lines of a unit file (comments and section headers left out). */
function unitSettings(text: string): [string, string][] {
  return text.split("\n")
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]);
}

function setting(text: string, key: string): string {
  const found = unitSettings(text).filter(([k]) => k === key);
  assert.equal(found.length, 1, `${key}= appears ${found.length} times`);
  return found[0][1];
}

/** The `sluice` task of deno.json, split into words. */
async function sluiceTask(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  return String(config.tasks.sluice).split(/\s+/);
}

const service = await Deno.readTextFile(join(DEPLOY, "sluice@.service"));
const timer = await Deno.readTextFile(join(DEPLOY, "sluice@.timer"));
const crontab = await Deno.readTextFile(join(DEPLOY, "crontab"));

Deno.test("the alert rules load in promtool check rules", async () => {
  if (!await havePromtool()) return;
  const r = await run(PROMTOOL, ["check", "rules", join(DEPLOY, "sluice_alerts.yml")]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS: 4 rules found/);
  const rules = parse(await Deno.readTextFile(join(DEPLOY, "sluice_alerts.yml")));
  const exprs = rules.groups[0].rules.map((rule: { expr: string }) => rule.expr).join("\n");
  assert.match(exprs, /sluice_last_success_timestamp_seconds/);
  assert.match(exprs, /sluice_run_status/);
});

Deno.test("the alert rules pass their promtool unit tests", async () => {
  if (!await havePromtool()) return;
  const r = await run(PROMTOOL, ["test", "rules", "sluice_alerts_test.yml"], { cwd: DEPLOY });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS/);
});

Deno.test("the systemd service and timer pass systemd-analyze verify", async () => {
  if (!await exists(SYSTEMD_ANALYZE)) {
    // A container may legitimately lack systemd; never a CI failure.
    console.warn(`SKIPPED: ${SYSTEMD_ANALYZE} is missing (Debian package systemd)`);
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "sluice_units_" });
  try {
    // verify needs an instance of the template; it also checks that ExecStart's
    // program exists, so where Deno is not /usr/bin/deno the copy names this one.
    const deno = await exists("/usr/bin/deno") ? "/usr/bin/deno" : Deno.execPath();
    await Deno.writeTextFile(
      join(dir, "sluice@shop.service"),
      service.replace("ExecStart=/usr/bin/deno ", `ExecStart=${deno} `),
    );
    await Deno.writeTextFile(join(dir, "sluice@shop.timer"), timer);
    const r = await run(SYSTEMD_ANALYZE, [
      "verify",
      "--man=no",
      join(dir, "sluice@shop.service"),
      join(dir, "sluice@shop.timer"),
    ]);
    // verify exits 0 on unknown keys and bad values, and says so on stderr.
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.trim(), "", "systemd-analyze verify reported problems");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the service stops Sluice with SIGTERM and gives it time to stop at a safe point", () => {
  assert.equal(setting(service, "KillSignal"), "SIGTERM");
  assert.equal(setting(service, "Type"), "oneshot");
  const stop = setting(service, "TimeoutStopSec");
  const seconds = Number(stop.replace(/s$/, ""));
  // At least the bounded push/post retries after the rollback (5 s x 3 each), well below
  // systemd's shutdown patience.
  assert.ok(seconds >= 30 && seconds <= 300, `TimeoutStopSec=${stop}`);
  // KillMode stays control-group: SIGTERM reaches the process that handles it.
  assert.equal(unitSettings(service).some(([k]) => k === "KillMode"), false);
  assert.equal(setting(service, "StandardError"), "journal");
  assert.match(setting(service, "ExecStart"), /--log-format json/);
  assert.equal(setting(timer, "Persistent"), "true");
});

Deno.test("the service runs the sluice task's exact deno command line", async () => {
  const task = await sluiceTask();
  const words = setting(service, "ExecStart").split(/\s+/);
  assert.equal(words[0], "/usr/bin/deno");
  const cli = words.indexOf("cli.ts");
  assert.deepEqual(
    ["deno", ...words.slice(1, cli + 1)],
    task,
    "ExecStart must use the same permissions as the sluice task in deno.json",
  );
  assert.equal(setting(service, "WorkingDirectory"), "/opt/sluice");
});

/** The crontab's one entry: its five schedule fields and its command. */
function cronEntry(): { schedule: string[]; command: string } {
  const entries = crontab.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
  assert.equal(entries.length, 1, entries.join("\n"));
  const fields = entries[0].trim().split(/\s+/);
  return { schedule: fields.slice(0, 5), command: fields.slice(5).join(" ") };
}

Deno.test("the crontab line is a valid schedule, uses Sluice's overlap policy and no flock", () => {
  const { schedule, command } = cronEntry();
  const ranges = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 7]];
  schedule.forEach((field, i) => {
    if (field === "*") return;
    assert.match(field, /^\d+$/, `field ${i + 1}: ${field}`);
    assert.ok(Number(field) >= ranges[i][0] && Number(field) <= ranges[i][1], field);
  });
  assert.doesNotMatch(command, /flock/);
  assert.match(command, /--on-overlap (skip|fail|wait)/);
  assert.match(command, /systemd-cat -t sluice-shop /);
  assert.match(command, /--log-format json/);
});

const PIPELINE = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
silver:
  orders:
    from: orders
    columns:
      id: { type: BIGINT, nullable: false }
      amount: { type: DOUBLE }
    checks:
      - range: { column: amount, min: 0 }
      - not_null: { column: amount, severity: warn }
observability:
  metrics:
    log: false
    textfile: { path: ./metrics/sluice_shop.prom }
`;

/** A promtool unit test that feeds a real .prom file's samples in as constant series. */
function promtoolTest(prom: string, expect: Record<string, unknown[]>): string {
  const series = prom.split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map((l) => {
      const cut = l.lastIndexOf(" ");
      return { series: l.slice(0, cut), values: `${l.slice(cut + 1)}x5` };
    });
  const tests = Object.entries(expect).map(([alertname, exp_alerts]) => ({
    eval_time: "2m",
    alertname,
    exp_alerts,
  }));
  return JSON.stringify({
    rule_files: [join(DEPLOY, "sluice_alerts.yml")],
    evaluation_interval: "1m",
    tests: [{ interval: "1m", input_series: series, alert_rule_test: tests }],
  });
}

/** Which alerts fire on these samples, as promtool reports a failed expectation. */
async function alertsOn(prom: string, dir: string, name: string): Promise<string> {
  const file = join(dir, `${name}_test.yml`);
  // Expect nothing: promtool then prints every alert that did fire.
  await Deno.writeTextFile(
    file,
    promtoolTest(prom, {
      SluiceRunFailed: [],
      SluiceCheckWarning: [],
      SluiceNoRecentSuccess: [],
      SluiceNotRunning: [],
    }),
  );
  const r = await run(PROMTOOL, ["test", "rules", file]);
  return r.stdout + r.stderr;
}

Deno.test("the crontab and service commands run a real pipeline whose metrics fire the alerts", async () => {
  if (!await havePromtool()) return;
  const project = await Deno.makeTempDir({ prefix: "sluice_deploy_" });
  try {
    await Deno.mkdir(join(project, "landing"));
    await Deno.writeTextFile(join(project, "pipeline.yaml"), PIPELINE);
    await Deno.writeTextFile(join(project, "landing", "day1.csv"), "id,amount\n1,10.5\n2,\n3,7\n");
    const place = (words: string[]) =>
      words.map((w) =>
        w.replaceAll("/srv/sluice/%i", project).replaceAll("/srv/sluice/shop", project)
          .replace(/^\/usr\/bin\/deno$/, "deno")
      );

    // 1. The crontab's command, as cron's shell would run it after `cd /opt/sluice`
    //    (systemd-cat only connects the output to journald).
    const { command } = cronEntry();
    const [cd, rest] = command.split(" && ");
    assert.equal(cd, "cd /opt/sluice");
    const cronWords = rest.split(/\s+/);
    assert.deepEqual(cronWords.slice(0, 3), ["systemd-cat", "-t", "sluice-shop"]);
    const [cronCmd, ...cronArgs] = place(cronWords.slice(3));
    const first = await run(cronCmd, cronArgs, { cwd: ROOT });
    assert.equal(first.code, 0, first.stderr);
    // Logs on stderr are JSON lines (one journal entry each), with the run id.
    // (`deno task` itself first prints the command it runs: "Task sluice deno run ...".)
    const lines = first.stderr.split("\n").filter((l) => l.trim() !== "")
      .filter((l) => !l.replace(ANSI, "").startsWith("Task sluice "));
    assert.ok(lines.length > 0);
    for (const line of lines) {
      const record = JSON.parse(line);
      assert.equal(typeof record.run_id, "string", line);
    }
    const okProm = await Deno.readTextFile(join(project, "metrics", "sluice_shop.prom"));
    assert.match(okProm, /^sluice_run_status\{pipeline="shop",status="success"\} 1$/m);
    assert.match(okProm, /^sluice_last_success_timestamp_seconds\{pipeline="shop"\} \d+/m);
    const afterOk = await alertsOn(okProm, project, "ok");
    // The warn check (a NULL amount) fires its alert; the run itself is fine.
    assert.match(afterOk, /alertname="SluiceCheckWarning".*check="not_null_amount"/);
    assert.doesNotMatch(afterOk, /alertname="SluiceRunFailed"/);

    // 2. The service's ExecStart, in its WorkingDirectory, on a file that fails the gate.
    await Deno.writeTextFile(join(project, "landing", "day2.csv"), "id,amount\n4,-3\n");
    const [svcCmd, ...svcArgs] = place(setting(service, "ExecStart").split(/\s+/))
      .map((w) => w.replaceAll("%i", "shop"));
    const second = await run(svcCmd, svcArgs, { cwd: ROOT, env: { NO_COLOR: "1" } });
    assert.equal(second.code, 3, second.stderr);
    const failedProm = await Deno.readTextFile(join(project, "metrics", "sluice_shop.prom"));
    assert.match(failedProm, /^sluice_run_status\{pipeline="shop",status="quality_failed"\} 1$/m);
    const afterFail = await alertsOn(failedProm, project, "failed");
    assert.match(afterFail, /alertname="SluiceRunFailed".*status="quality_failed"/);
    assert.doesNotMatch(afterFail, /alertname="SluiceNoRecentSuccess"/);
  } finally {
    await Deno.remove(project, { recursive: true });
  }
});
