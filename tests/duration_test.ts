import assert from "node:assert/strict";
import { parseConfig } from "../core/config/mod.ts";
import { durationProblem, formatDuration, parseDuration } from "../core/duration.ts";
import { ConfigError, UsageError } from "../core/errors.ts";
import { streamYaml } from "./fixtures/streaming.ts";

Deno.test("durations accept a number and a unit, short or long, singular or plural", () => {
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("30 minutes"), 1_800_000);
  assert.equal(parseDuration("1 hour"), 3_600_000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration("1 day"), 86_400_000);
  assert.equal(parseDuration("2.5 seconds"), 2_500);
  assert.equal(parseDuration("  1 Minute "), 60_000);
  assert.equal(parseDuration("0s"), 0);
});

Deno.test("durations may combine parts: 1h 30m, 1h30m, 1 hour 30 minutes", () => {
  assert.equal(parseDuration("1h 30m"), 5_400_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("1 hour 30 minutes"), 5_400_000);
});

Deno.test("a misspelt unit, a missing number or a missing unit is rejected with a hint", () => {
  assert.equal(
    durationProblem("1 hourz"),
    'unknown unit "hourz" in "1 hourz" (did you mean "hour"?)',
  );
  assert.equal(
    durationProblem("hour"),
    '"hour" needs a number before "hour" (write e.g. "1 hour")',
  );
  assert.equal(durationProblem("90"), '"90" has no unit (write e.g. "90s" or "90 minutes")');
  assert.match(durationProblem("")!, /must be a duration/);
  assert.match(durationProblem("-5s")!, /cannot read "-5s"/);
  assert.match(durationProblem("1 hour 30")!, /cannot read "30"/);
  assert.match(durationProblem("1,5s")!, /cannot read "1,5s"/);
  assert.match(durationProblem("5 fortnights")!, /unknown unit "fortnights"/);
  assert.throws(() => parseDuration("1 hourz"), UsageError);
});

Deno.test("formatDuration prints the largest units first", () => {
  assert.equal(formatDuration(5_400_000), "1h 30m");
  assert.equal(formatDuration(90_000), "1m 30s");
  assert.equal(formatDuration(500), "500ms");
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(86_400_000 + 1_000), "1d 1s");
});

function configProblems(yaml: string): string[] {
  try {
    parseConfig(yaml, "/srv/shop/pipeline.yaml", { env: () => undefined });
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
  }
  assert.fail("expected the config to be rejected");
}

Deno.test("a bad duration in the streaming config is reported with its line and column", () => {
  const yaml = streamYaml({ delay: '"1 hourz"', settle: "hour", interval: "90" });
  const lines = yaml.split("\n");
  /** `LINE:COL` of `value` on the line that holds `key`. */
  const at = (key: string, value: string) => {
    const line = lines.findIndex((l) => l.includes(key));
    return `${line + 1}:${lines[line].indexOf(value, lines[line].indexOf(key)) + 1}`;
  };
  assert.deepEqual(configProblems(yaml), [
    `${at("settle:", "hour")} streaming.source.settle: "hour" needs a number before "hour" ` +
    '(write e.g. "1 hour")',
    `${at("delay:", '"1 hourz"')} streaming.watermark.delay: unknown unit "hourz" in "1 hourz" ` +
    '(did you mean "hour"?)',
    `${at("trigger_interval:", "90")} streaming.trigger_interval: "90" has no unit ` +
    '(write e.g. "90s" or "90 minutes")',
  ]);
});

Deno.test("valid durations load and stay as written in the resolved config", () => {
  const config = parseConfig(
    streamYaml({ delay: '"30 minutes"', settle: "90s", interval: '"1h 30m"' }),
    "/srv/shop/pipeline.yaml",
    { env: () => undefined },
  );
  assert.equal(config.streaming?.watermark.delay, "30 minutes");
  const source = config.streaming?.source;
  assert.equal(source && "settle" in source ? source.settle : undefined, "90s");
  assert.equal(config.streaming?.trigger_interval, "1h 30m");
});
