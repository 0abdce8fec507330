/**
 * Paths that escape the project: a source folder outside the config file's
 * folder needs `allow_outside_project: true` (and `validate` warns about
 * it); `..`, absolute paths elsewhere and globs like `../../*` are refused at
 * validation time. Separately, the DuckDB sandbox refuses the same escapes
 * at run time, symlinks included. A symlink that matches a source glob is
 * followed only when its target is inside the source folder, with a
 * warning either way.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { reset } from "@logtape/logtape";
import { loadConfig, parseConfig } from "../core/config/mod.ts";
import { openEngine } from "../core/engine.ts";
import { ConfigError, SandboxError } from "../core/errors.ts";
import { sandboxDirectories } from "../core/pipeline_db.ts";
import { configureLogging } from "../observability/logging.ts";
import { listFiles } from "../stages/_files.ts";
import { validatePipeline } from "../stages/validate.ts";

const FILE = "/srv/shop/pipeline.yaml";

function yaml(source: string): string {
  return `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, ${source} }
`;
}

function problems(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
  }
  return [];
}

Deno.test("source paths outside the project folder and escaping globs are refused at validation", () => {
  const refused: [string, RegExp][] = [
    [
      "path: ../../../../etc",
      /sources\.orders\.path: is outside the project folder "\/srv\/shop" \(resolves to "\/etc"\)/,
    ],
    ["path: /etc", /sources\.orders\.path: is outside the project folder/],
    ["path: ./landing/../../other", /sources\.orders\.path: is outside the project folder/],
    ["path: /srv/shopping", /sources\.orders\.path: is outside the project folder/],
    [
      'path: ./landing, glob: "../../*"',
      /sources\.orders\.glob: glob "..\/..\/\*" reaches outside/,
    ],
    ['path: ./landing, glob: "/etc/*"', /sources\.orders\.glob: .* reaches outside/],
    ['path: ./landing, glob: "a/../../b/*.csv"', /sources\.orders\.glob: .* reaches outside/],
    ['path: ./landing, glob: "~/x"', /sources\.orders\.glob: .* reaches outside/],
  ];
  for (const [source, message] of refused) {
    const got = problems(yaml(source));
    assert.equal(got.length, 1, `${source}: ${got.join("\n")}`);
    assert.match(got[0], message);
    assert.match(got[0], /^4:\d+ /, "the problem names the line");
  }
  const allowed = [
    "path: ./landing",
    "path: .",
    "path: /srv/shop/landing/orders",
    'path: ./landing, glob: "**/*.csv"',
    "path: /data/landing, allow_outside_project: true",
    "path: ../shared, allow_outside_project: true",
  ];
  for (const source of allowed) assert.deepEqual(problems(yaml(source)), [], source);
  // The opt-in does not open escaping globs.
  const glob = problems(yaml('path: /data, allow_outside_project: true, glob: "../*"'));
  assert.equal(glob.length, 1);
});

Deno.test("a stream's landing and archive folders outside the project are refused unless opted in", () => {
  const stream = (source: string, extra = "") =>
    `pipeline: shop
lake: ./lake
streaming:
  source: { format: ndjson, ${source} }
  columns: { id: { type: BIGINT }, at: { type: TIMESTAMPTZ } }
  target: events
  dlq: events__dlq
  checkpoint: events_v1
  watermark: { column: at, delay: 1 hour }
  fail_on_data_loss: true
${extra}`;
  const landing = problems(stream("path: /data/events"));
  assert.equal(landing.length, 1, landing.join("\n"));
  assert.match(
    landing[0],
    /^4:\d+ streaming\.source\.path: is outside the project folder "\/srv\/shop" \(resolves to "\/data\/events"\).*allow_outside_project: true to streaming\.source/,
  );
  const glob = problems(stream('path: ./landing, glob: "../*"'));
  assert.equal(glob.length, 1, glob.join("\n"));
  assert.match(glob[0], /streaming\.source\.glob: .* reaches outside/);
  const archive = problems(
    stream("path: ./landing", "  clean_source: archive\n  archive_path: /var/archive\n"),
  );
  assert.equal(archive.length, 1, archive.join("\n"));
  assert.match(archive[0], /^12:\d+ streaming\.archive_path: is outside the project folder/);
  assert.deepEqual(
    problems(stream(
      "path: /data/events, allow_outside_project: true",
      "  clean_source: archive\n  archive_path: /var/archive\n",
    )),
    [],
  );
  assert.deepEqual(problems(stream("path: ./landing/events")), []);
});

Deno.test("validate warns about a source folder outside the project that was opted in", async () => {
  const root = await Deno.makeTempDir({ prefix: "sluice_paths_" });
  const lines: string[] = [];
  await configureLogging({ format: "json", level: "warning", write: (l) => lines.push(l) });
  try {
    await Deno.mkdir(join(root, "project"));
    await Deno.mkdir(join(root, "shared"));
    const file = join(root, "project", "pipeline.yaml");
    await Deno.writeTextFile(file, yaml("path: ../shared, allow_outside_project: true"));
    const config = await loadConfig(file);
    await validatePipeline(config, { locate: config.locate });
    const warned = lines.map((l) => JSON.parse(l)).filter((l) =>
      l.event === "source_outside_project"
    );
    assert.equal(warned.length, 1, lines.join("\n"));
    assert.equal(warned[0].level, "warn");
    assert.equal(warned[0].source, "orders");
    assert.equal(warned[0].path, join(root, "shared"));
  } finally {
    await reset();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("at run time the DuckDB sandbox refuses .., sibling folders and symlinks out of a source folder", async () => {
  const root = await Deno.makeTempDir({ prefix: "sluice_paths_" });
  try {
    const project = join(root, "project");
    const landing = join(project, "landing");
    await Deno.mkdir(landing, { recursive: true });
    await Deno.mkdir(join(root, "outside"));
    await Deno.writeTextFile(join(root, "outside", "secret.txt"), "top secret");
    await Deno.writeTextFile(join(project, "not_a_source.txt"), "private");
    await Deno.writeTextFile(join(landing, "ok.csv"), "a\n1\n");
    await Deno.symlink(join(root, "outside", "secret.txt"), join(landing, "link.csv"));
    const file = join(project, "pipeline.yaml");
    await Deno.writeTextFile(file, yaml("path: ./landing"));
    const config = await loadConfig(file);
    const db = await openEngine(":memory:", { allowedDirectories: sandboxDirectories(config) });
    try {
      const ok = await db.all(`SELECT content FROM read_text('${join(landing, "ok.csv")}')`);
      assert.deepEqual(ok, [{ content: "a\n1\n" }]);
      for (
        const path of [
          `${landing}/../../outside/secret.txt`,
          join(root, "outside", "secret.txt"),
          join(project, "not_a_source.txt"),
          join(landing, "link.csv"),
          "/etc/passwd",
        ]
      ) {
        await assert.rejects(
          () => db.all(`SELECT content FROM read_text('${path}')`),
          SandboxError,
          path,
        );
      }
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a symlink matching a source glob is followed inside the folder and skipped outside, with a warning", async () => {
  const root = await Deno.makeTempDir({ prefix: "sluice_links_" });
  const lines: string[] = [];
  await configureLogging({ format: "json", level: "warning", write: (l) => lines.push(l) });
  try {
    const landing = join(root, "landing");
    await Deno.mkdir(join(landing, "sub"), { recursive: true });
    await Deno.mkdir(join(root, "outside"));
    await Deno.writeTextFile(join(landing, "a.csv"), "x\n1\n");
    await Deno.writeTextFile(join(landing, "sub", "real.txt"), "x\n2\n");
    await Deno.writeTextFile(join(root, "outside", "secret.csv"), "x\n3\n");
    await Deno.symlink(join(landing, "sub", "real.txt"), join(landing, "inside.csv"));
    await Deno.symlink(join(root, "outside", "secret.csv"), join(landing, "escape.csv"));
    await Deno.symlink(join(root, "missing.csv"), join(landing, "dangling.csv"));
    await Deno.symlink("/etc/passwd", join(landing, "passwd.txt")); // does not match *.csv
    const files = await listFiles(landing, "*.csv");
    assert.deepEqual(files, [join(landing, "a.csv"), join(landing, "inside.csv")]);
    const events = lines.map((l) => JSON.parse(l));
    const by = (e: string) => events.filter((l) => l.event === e).map((l) => l.file).sort();
    assert.deepEqual(by("symlink_followed"), [join(landing, "inside.csv")]);
    assert.deepEqual(by("symlink_skipped"), [
      join(landing, "dangling.csv"),
      join(landing, "escape.csv"),
    ]);
    assert.ok(
      !lines.join("").includes("passwd"),
      "a link the glob does not match is not looked at",
    );
  } finally {
    await reset();
    await Deno.remove(root, { recursive: true });
  }
});
