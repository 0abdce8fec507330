import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { PipelineSchema } from "../core/config/mod.ts";
import { UsageError } from "../core/errors.ts";
import { initProject, renderStarterConfig } from "../scaffold/init.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice_init_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("initProject creates pipeline.yaml, its JSON Schema, landing/events/.gitkeep and .gitignore", async () => {
  await withTempDir(async (tmp) => {
    const dir = join(tmp, "shop");
    const created = await initProject(dir, { name: "shop_events" });
    assert.deepEqual(created, [
      join(dir, "pipeline.yaml"),
      join(dir, "pipeline.schema.json"),
      join(dir, "landing", "events", ".gitkeep"),
      join(dir, ".gitignore"),
    ]);
    assert.equal(await Deno.readTextFile(join(dir, ".gitignore")), "lake/\n");
    assert.equal(await Deno.readTextFile(join(dir, "landing", "events", ".gitkeep")), "");
    const yaml = await Deno.readTextFile(join(dir, "pipeline.yaml"));
    assert.match(yaml, /^pipeline: shop_events$/m);
    assert.match(yaml, /^# yaml-language-server: \$schema=\.\/pipeline\.schema\.json\n/);
    assert.match(yaml, /^# Sluice pipeline "shop_events"/m, "the config is commented");
    const schema = JSON.parse(await Deno.readTextFile(join(dir, "pipeline.schema.json")));
    assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  });
});

Deno.test("the starter config passes PipelineSchema with source, silver, gold and output", async () => {
  await withTempDir(async (dir) => {
    await initProject(dir, { name: "clicks" });
    const result = PipelineSchema.safeParse(
      parse(await Deno.readTextFile(join(dir, "pipeline.yaml"))),
    );
    assert.ok(result.success, JSON.stringify(result.error?.issues));
    const cfg = result.data;
    assert.equal(cfg.pipeline, "clicks");
    assert.deepEqual(Object.keys(cfg.sources), ["events"]);
    assert.equal(cfg.sources.events.format, "csv");
    assert.equal(cfg.sources.events.path, "./landing/events");
    assert.equal(Object.keys(cfg.silver).length, 1);
    assert.equal(Object.keys(cfg.gold).length, 1);
    assert.deepEqual(Object.keys(cfg.output!.tables), Object.keys(cfg.gold));
  });
});

Deno.test("initProject refuses to overwrite an existing pipeline.yaml", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "pipeline.yaml"), "pipeline: mine\n");
    await assert.rejects(() => initProject(dir), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, `Cannot init "${dir}": pipeline.yaml already exists`);
      assert.equal(e.exitCode, 2);
      return true;
    });
    assert.equal(await Deno.readTextFile(join(dir, "pipeline.yaml")), "pipeline: mine\n");
    await assert.rejects(() => Deno.stat(join(dir, "landing")), Deno.errors.NotFound);
  });
});

Deno.test("the pipeline name defaults to the folder name made an identifier", async () => {
  await withTempDir(async (tmp) => {
    const dir = join(tmp, "my-shop.v2");
    await initProject(dir);
    const yaml = await Deno.readTextFile(join(dir, "pipeline.yaml"));
    assert.match(yaml, /^pipeline: my_shop_v2$/m);
    const digits = join(tmp, "2026");
    await initProject(digits);
    assert.match(await Deno.readTextFile(join(digits, "pipeline.yaml")), /^pipeline: p_2026$/m);
  });
});

Deno.test("a --name that is not an identifier is a usage error and writes nothing", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(() => initProject(dir, { name: "my shop" }), UsageError);
    await assert.rejects(() => initProject(dir, { name: "x: y" }), /--name/);
    const entries: string[] = [];
    for await (const e of Deno.readDir(dir)) entries.push(e.name);
    assert.deepEqual(entries, []);
    assert.throws(() => renderStarterConfig("1abc"), UsageError);
  });
});

Deno.test("an existing .gitignore gets lake/ appended once and is otherwise kept", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, ".gitignore"), "node_modules/");
    const created = await initProject(dir);
    assert.ok(created.includes(join(dir, ".gitignore")));
    assert.equal(await Deno.readTextFile(join(dir, ".gitignore")), "node_modules/\nlake/\n");

    await Deno.remove(join(dir, "pipeline.yaml"));
    const again = await initProject(dir);
    assert.deepEqual(again, [join(dir, "pipeline.yaml"), join(dir, "pipeline.schema.json")]);
    assert.equal(await Deno.readTextFile(join(dir, ".gitignore")), "node_modules/\nlake/\n");
  });
});
