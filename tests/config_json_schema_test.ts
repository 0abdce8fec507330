import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import formatsModule from "ajv-formats";
import fc from "fast-check";
import { parse, type ScalarTag, stringify } from "yaml";
import { parseConfig } from "../core/config/mod.ts";
import { pipelineJsonSchema, pipelineJsonSchemaText } from "../core/config/mod.ts";
import { ConfigError } from "../core/errors.ts";
import { ECOMMERCE_PIPELINE_YAML } from "../scaffold/example_pipeline.ts";
import { initProject, renderStarterConfig, SCHEMA_FILE } from "../scaffold/init.ts";

const schema = pipelineJsonSchema();
// A real validator, in strict mode (unknown keywords in the schema are errors).
const ajv = new Ajv2020({
  allErrors: true,
  strict: true,
  strictRequired: false,
  // `type: ["string", "null"]`: keys the loader accepts left empty.
  allowUnionTypes: true,
});
// ajv-formats is CommonJS: its default export arrives as the module object.
const addFormats = ((formatsModule as unknown as { default?: unknown }).default ??
  formatsModule) as unknown as (a: Ajv2020) => void;
addFormats(ajv);
const validate = ajv.compile(schema);

const SECRET: ScalarTag = { tag: "!secret", default: false, resolve: (v: string) => v };

function readYaml(text: string): unknown {
  return parse(text, { customTags: [SECRET] });
}

/** The schema's verdict: undefined when valid, else ajv's errors as text. */
function schemaErrors(doc: unknown): string | undefined {
  if (validate(doc)) return undefined;
  return ajv.errorsText(validate.errors, { separator: "\n" });
}

/** The loader's verdict on the same document: undefined when it loads. */
function loaderErrors(doc: unknown): string | undefined {
  try {
    parseConfig(stringify(doc), "/srv/shop/pipeline.yaml", { env: () => undefined });
    return undefined;
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
}

async function exampleConfigs(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const root = new URL("../examples/", import.meta.url).pathname;
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) {
        // examples/deploy/ holds Prometheus rules, not pipelines (tests/deploy_examples_test.ts).
        if (path !== join(root, "deploy")) await walk(path);
      } else if (/\.ya?ml$/.test(entry.name)) {
        found.set(`examples/${relative(root, path)}`, await Deno.readTextFile(path));
      }
    }
  }
  await walk(root);
  found.set("sluice demo's pipeline.yaml", ECOMMERCE_PIPELINE_YAML);
  found.set("sluice init's pipeline.yaml", renderStarterConfig("clicks"));
  return found;
}

type Node = Record<string, unknown>;

/** Every subschema with the key path it describes (`*` for record entries, `[]` for items). */
function subschemas(node: unknown, path = "", out: [string, Node][] = []): [string, Node][] {
  if (typeof node !== "object" || node === null) return out;
  const n = node as Node;
  out.push([path, n]);
  for (const [key, value] of Object.entries((n.properties ?? {}) as Node)) {
    subschemas(value, `${path}.${key}`, out);
  }
  if (typeof n.additionalProperties === "object") {
    subschemas(n.additionalProperties, `${path}.*`, out);
  }
  if (n.items !== undefined) subschemas(n.items, `${path}[]`, out);
  for (const k of ["anyOf", "oneOf", "allOf"]) {
    if (Array.isArray(n[k])) (n[k] as unknown[]).forEach((s) => subschemas(s, path, out));
  }
  return out;
}

function at(path: string): Node {
  const found = subschemas(schema).filter(([p, n]) => p === path && n.properties);
  assert.ok(found.length > 0, `no object schema at ${path}`);
  return found[0][1];
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

const ecommerce = readYaml(ECOMMERCE_PIPELINE_YAML) as Record<string, Record<string, Node>>;

Deno.test("the JSON Schema is draft 2020-12 and compiles in ajv's strict mode", () => {
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.equal(typeof validate, "function");
  // The text form is the same document, ending in a newline (for `sluice schema > file`).
  const text = pipelineJsonSchemaText();
  assert.ok(text.endsWith("}\n"));
  assert.deepEqual(JSON.parse(text), schema);
});

Deno.test("every key of the JSON Schema has a description", () => {
  const missing: string[] = [];
  for (const [path, node] of subschemas(schema)) {
    for (const [key, value] of Object.entries((node.properties ?? {}) as Node)) {
      if (typeof (value as Node).description !== "string") missing.push(`${path}.${key}`);
    }
  }
  assert.deepEqual(
    [...new Set(missing)],
    [],
    "give these zod keys a .describe(...) in core/config/*.ts",
  );
  const source = at(".sources.*").properties as Record<string, Node>;
  assert.match(String(source.on_change.description), /reingest/);
});

Deno.test("strict zod objects are closed: every object schema has additionalProperties false", () => {
  const open = subschemas(schema)
    .filter(([, n]) => n.properties !== undefined && n.additionalProperties !== false)
    .map(([p]) => p);
  assert.deepEqual(open, []);
  // Records keep their value schema (names are free, values are checked).
  const sources = subschemas(schema).find(([p]) => p === ".sources")![1];
  assert.equal(typeof sources.additionalProperties, "object");
});

Deno.test("allowed values and defaults come from the zod schema", () => {
  const source = at(".sources.*").properties as Record<string, Node>;
  assert.ok((source.format.enum as string[]).includes("csv"));
  assert.ok((source.format.enum as string[]).includes("parquet"));
  assert.deepEqual(source.on_change.enum, ["reingest", "fail", "ignore", null]);
  assert.equal(source.on_change.default, "fail");
  const silver = at(".silver.*").properties as Record<string, Node>;
  assert.deepEqual(silver.mode.enum, ["replace", "append", "merge", "scd2", null]);
  assert.equal(silver.mode.default, "replace");
  assert.deepEqual(at("").required, ["pipeline", "lake"]);
});

Deno.test("every example config, the demo's and init's pass the JSON Schema and the loader", async () => {
  const configs = await exampleConfigs();
  assert.ok(configs.size >= 3, [...configs.keys()].join(", "));
  for (const [name, text] of configs) {
    const doc = readYaml(text);
    assert.equal(schemaErrors(doc), undefined, `${name} fails the JSON Schema`);
    assert.equal(loaderErrors(doc), undefined, `${name} fails the loader`);
  }
});

Deno.test("sluice init writes the schema beside pipeline.yaml and names it on the first line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice_schema_" });
  try {
    await initProject(dir, { name: "clicks" });
    const yaml = await Deno.readTextFile(join(dir, "pipeline.yaml"));
    const first = yaml.split("\n")[0];
    assert.equal(first, `# yaml-language-server: $schema=./${SCHEMA_FILE}`);
    const written = JSON.parse(await Deno.readTextFile(join(dir, SCHEMA_FILE)));
    assert.deepEqual(written, schema);
    // The comment line changes nothing for the loader.
    assert.equal(loaderErrors(readYaml(yaml)), undefined);
    assert.equal(schemaErrors(readYaml(yaml)), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const BROKEN: {
  what: string;
  change: (doc: Record<string, Record<string, Node>>) => void;
  error: RegExp;
}[] = [
  {
    what: "an unknown top-level key",
    change: (d) => (d as Node).pipline = "typo",
    error: /must NOT have additional properties/,
  },
  {
    what: "an unknown key in a silver column",
    change: (d) => (d.silver.orders.columns as Record<string, Node>).order_id.typ = "BIGINT",
    error: /\/silver\/orders\/columns\/order_id must NOT have additional properties/,
  },
  {
    what: "a mode that is not one of the allowed values",
    change: (d) => d.silver.orders.mode = "upsert",
    error: /\/silver\/orders\/mode must be equal to one of the allowed values/,
  },
  {
    what: "a source format that does not exist",
    change: (d) => d.sources.orders.format = "xlsx",
    error: /\/sources\/orders\/format must be equal to one of the allowed values/,
  },
  {
    what: "threads given as text",
    change: (d) => (d as Node).engine = { threads: "four" },
    error: /\/engine\/threads must be integer/,
  },
  {
    what: "nullable given as text",
    change: (d) => (d.silver.orders.columns as Record<string, Node>).order_id.nullable = "no",
    error: /\/silver\/orders\/columns\/order_id\/nullable must be boolean/,
  },
  {
    what: "a missing required key",
    change: (d) => delete (d as Node).lake,
    error: /must have required property 'lake'/,
  },
  {
    what: "a table name that is not an identifier",
    change: (d) => d.gold["daily revenue"] = { sql: "select 1" },
    error: /property name must be valid/,
  },
  {
    what: "a check threshold that is neither a count nor a percentage",
    change: (d) =>
      d.silver.orders.checks = [{ not_null: { column: "order_id", threshold: "many" } }],
    error: /\/silver\/orders\/checks\/0\/not_null\/threshold/,
  },
];

for (const broken of BROKEN) {
  Deno.test(`the JSON Schema and the loader both reject ${broken.what}`, () => {
    const doc = clone(ecommerce);
    broken.change(doc);
    const errors = schemaErrors(doc);
    assert.ok(errors !== undefined, "the JSON Schema accepted it");
    assert.match(errors, broken.error);
    assert.ok(loaderErrors(doc) !== undefined, "the loader accepted it");
  });
}

Deno.test("a key left empty (YAML null) is accepted where the loader drops it", () => {
  const doc = clone(ecommerce) as Node;
  doc.engine = null;
  doc.quality = null;
  (doc.silver as Record<string, Node>).orders.rules = null;
  assert.equal(schemaErrors(doc), undefined);
  assert.equal(loaderErrors(doc), undefined);
  const required = clone(ecommerce) as Node;
  required.lake = null;
  assert.ok(schemaErrors(required) !== undefined);
  assert.ok(loaderErrors(required) !== undefined);
});

/** Paths of every object (not array) in a document, and of every scalar leaf. */
function walkDoc(
  doc: unknown,
  path: (string | number)[] = [],
  out = { objects: [] as (string | number)[][], leaves: [] as (string | number)[][] },
) {
  if (Array.isArray(doc)) doc.forEach((v, i) => walkDoc(v, [...path, i], out));
  else if (typeof doc === "object" && doc !== null) {
    out.objects.push(path);
    for (const [k, v] of Object.entries(doc)) walkDoc(v, [...path, k], out);
  } else out.leaves.push(path);
  return out;
}

function getAt(doc: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>((node, key) => (node as Record<string | number, unknown>)[key], doc);
}

const shape = walkDoc(ecommerce);

Deno.test("property: an unknown key anywhere in the example is rejected by the schema and the loader", () => {
  fc.assert(
    fc.property(fc.constantFrom(...shape.objects), (path) => {
      const doc = clone(ecommerce);
      (getAt(doc, path) as Node).zz_unknown = true;
      assert.ok(schemaErrors(doc) !== undefined, `schema accepted zz_unknown at ${path.join(".")}`);
      assert.ok(loaderErrors(doc) !== undefined, `loader accepted zz_unknown at ${path.join(".")}`);
    }),
    { numRuns: 60 },
  );
});

Deno.test("property: whatever the schema rejects after a leaf changes type, the loader rejects too", () => {
  let rejected = 0;
  fc.assert(
    fc.property(
      fc.constantFrom(...shape.leaves),
      fc.constantFrom<unknown>(12345, "text", true, -1, [], {}),
      (path, value) => {
        const doc = clone(ecommerce);
        const parent = getAt(doc, path.slice(0, -1)) as Record<string | number, unknown>;
        parent[path.at(-1)!] = value;
        if (schemaErrors(doc) === undefined) return;
        rejected++;
        assert.ok(
          loaderErrors(doc) !== undefined,
          `the schema rejects ${JSON.stringify(value)} at ${
            path.join(".")
          } but the loader loads it`,
        );
      },
    ),
    { numRuns: 150 },
  );
  assert.ok(rejected > 50, `only ${rejected} of 150 changes were rejected by the schema`);
});
