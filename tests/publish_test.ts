/**
 * The package publishes without slow types: `deno publish --dry-run` (no
 * network needed for a dry run) type-checks the public API the way JSR does.
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);

Deno.test("deno publish --dry-run finds no slow types in the public API", async () => {
  const { code, stdout, stderr } = await new Deno.Command("deno", {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  // "Checking for slow types..." is always printed; a finding says "errors for slow types".
  assert.doesNotMatch(text, /errors for slow types|go\/slow-type-/i, text);
  assert.equal(code, 0, text);
  assert.match(text, /Dry run complete/);
});
