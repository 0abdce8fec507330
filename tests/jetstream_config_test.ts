/**
 * The `type: jetstream` source is validated like every other key (strict,
 * positioned, with what would be valid), credentials are `!secret`-able and
 * never shown, and `sluice explain` states the JetStream guarantee.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../core/config/mod.ts";
import { isJetStreaming } from "../core/config/mod.ts";
import { ConfigError, UsageError } from "../core/errors.ts";
import { explainStream } from "../streaming/explain.ts";
import { requireStreaming } from "../streaming/stream.ts";
import { workerYaml } from "./_jetstream.ts";

const servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"];

function problems(text: string): string {
  try {
    parseConfig(text, "/srv/shop/pipeline.yaml", {
      env: (n: string) => (n === "NATS_PASSWORD" ? "s3cret-pw" : undefined),
    });
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.message;
  }
  assert.fail("the config was accepted");
}

Deno.test("a jetstream source parses with its defaults and is told apart from a landing folder", () => {
  const config = parseConfig(workerYaml("w1", { servers }), "/srv/shop/pipeline.yaml");
  assert.ok(isJetStreaming(config.streaming));
  const src = config.streaming.source;
  assert.equal(src.stream, "ORDERS");
  assert.equal(src.max_deliver, 5);
  assert.equal(src.max_wait, "2s");
  assert.deepEqual(src.servers, servers);
  assert.throws(() => requireStreaming(config), UsageError);
});

Deno.test("an unknown key in a jetstream source is an error with its line, column and key path", () => {
  const text = workerYaml("w1", { servers }).replace("    max_wait: 2s\n", "    max_wiat: 2s\n");
  const message = problems(text);
  assert.match(message, /pipeline\.yaml:\d+:\d+/);
  assert.match(message, /streaming\.source/);
  assert.match(message, /max_wiat/);
});

Deno.test("bad servers, names, durations and credentials are refused with what would be valid", () => {
  const base = workerYaml("w1", { servers });
  assert.match(
    problems(
      base.replace(
        "servers: [nats://127.0.0.1:4222, nats://127.0.0.1:4223]",
        "servers: [localhost]",
      ),
    ),
    /server URL such as "nats:\/\/10\.0\.0\.1:4222"/,
  );
  assert.match(problems(base.replace("stream: ORDERS", "stream: ORD.ERS")), /JetStream name/);
  assert.match(problems(base.replace("ack_wait: 30s", "ack_wait: 30 secondz")), /ack_wait/);
  assert.match(
    problems(base.replace("    max_deliver: 5\n", "    max_deliver: 5\n    password: x\n")),
    /password needs user/,
  );
  assert.match(
    problems(base.replace("    type: jetstream\n", "    type: kafka\n")),
    /type must be files \(a landing folder, the default\) or jetstream/,
  );
  assert.match(
    problems(
      base.replace(
        "  fail_on_data_loss: true\n",
        "  fail_on_data_loss: true\n  clean_source: delete\n",
      ),
    ),
    /clean_source applies only to a landing folder/,
  );
});

Deno.test("a !secret password is kept out of error messages", () => {
  const text = workerYaml("w1", { servers }).replace(
    "    max_deliver: 5\n",
    "    max_deliver: nope\n    user: sluice\n    password: !secret ${NATS_PASSWORD}\n",
  );
  const message = problems(text);
  assert.match(message, /max_deliver/);
  assert.doesNotMatch(message, /s3cret-pw/);
  const ok = parseConfig(
    workerYaml("w1", { servers }).replace(
      "    max_deliver: 5\n",
      "    max_deliver: 5\n    user: sluice\n    password: !secret ${NATS_PASSWORD}\n",
    ),
    "/srv/shop/pipeline.yaml",
    { env: (n: string) => (n === "NATS_PASSWORD" ? "s3cret-pw" : undefined) },
  );
  assert.ok(ok.secrets.includes("s3cret-pw"));
});

Deno.test("explain states the JetStream guarantee: exactly-once per shard, dedup, poison, exit 66", () => {
  const config = parseConfig(workerYaml("w1", { servers }), "/srv/shop/pipeline.yaml");
  const text = explainStream(config);
  assert.match(text, /exactly-once per message, per shard/);
  assert.match(text, /ONE DuckDB transaction/);
  assert.match(text, /redelivered_duplicates/);
  assert.match(text, /poison/);
  assert.match(text, /exit code 66/);
  assert.match(text, /consumer "sluice-orders"/);
  assert.match(text, /claims each message in the KV bucket sluice-claims-sluice-orders/);
  assert.match(text, /write-once entries: one holder per sequence, never\s+taken back/);
  assert.match(text, /forgets an ack only once\s+its claim is settled/);
});
