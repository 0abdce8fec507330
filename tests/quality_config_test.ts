/**
 * The `checks:`, `quarantine_checks:` and `quality:` config: defaults, derived
 * check names, and mistakes reported with line, column and a suggestion.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../core/config/mod.ts";
import { checkSpec, qualitySettings } from "../core/config/mod.ts";
import { DLQ_COLUMNS } from "../core/dlq.ts";
import { ConfigError } from "../core/errors.ts";
import { ECOMMERCE_PIPELINE_YAML } from "../scaffold/example_pipeline.ts";

const BASE = `pipeline: shop
lake: ./lake
sources:
  orders: { format: csv, path: ./landing }
  customers: { format: csv, path: ./landing/c }
silver:
  customers:
    from: customers
    columns:
      customer_id: { type: BIGINT }
  orders:
    from: orders
    key: [order_id]
    columns:
      order_id: { type: BIGINT }
      email: { type: VARCHAR }
      customer_id: { type: BIGINT }
    checks:
CHECKS
`;

function parse(checks: string, extra = "") {
  return parseConfig(BASE.replace("CHECKS", checks) + extra, "/srv/shop/pipeline.yaml", {
    env: () => undefined,
  });
}

function problems(checks: string, extra = ""): string[] {
  try {
    parse(checks, extra);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`);
  }
  return assert.fail("expected a ConfigError");
}

Deno.test("checks get derived names and error severity unless set; quality has defaults", () => {
  const config = parse(`      - not_null: { column: email, severity: warn }
      - unique: { columns: [order_id, email] }
      - drift: { metric: row_count, max_change_pct: 20 }
      - expression: { name: has_id, sql: "order_id > 0", threshold: "0.5%" }`);
  const specs = config.silver.orders.checks!.map(checkSpec);
  assert.deepEqual(specs.map((s) => [s.type, s.name, s.severity, s.columns]), [
    ["not_null", "not_null_email", "warn", ["email"]],
    ["unique", "unique_order_id_email", "error", ["order_id", "email"]],
    ["drift", "drift_row_count", "error", []],
    ["expression", "has_id", "error", []],
  ]);
  assert.equal(config.quality, undefined);
  assert.deepEqual(qualitySettings(config), { checks: true, profiling: true, sample_size: 5 });
  const off = parse("      - not_null: { column: email }", "quality: { profiling: false }\n");
  assert.deepEqual(qualitySettings(off), { checks: true, profiling: false, sample_size: 5 });
});

Deno.test("the e-commerce example declares checks on every layer", () => {
  const config = parseConfig(ECOMMERCE_PIPELINE_YAML, "/srv/demo/pipeline.yaml", {
    env: () => undefined,
  });
  assert.equal(config.sources.orders.checks?.length, 1);
  assert.ok((config.silver.orders.checks ?? []).length >= 8);
  assert.equal(config.silver.orders.quarantine_checks?.length, 1);
  assert.ok(Object.values(config.gold).every((m) => (m.checks ?? []).length > 0));
  const types = new Set(
    [
      ...Object.values(config.sources).flatMap((s) => s.checks ?? []),
      ...Object.values(config.silver).flatMap((s) => [
        ...(s.checks ?? []),
        ...(s.quarantine_checks ?? []),
      ]),
      ...Object.values(config.gold).flatMap((g) => g.checks ?? []),
    ].map((c) => checkSpec(c).type),
  );
  for (
    const t of [
      "not_null",
      "unique",
      "accepted_values",
      "range",
      "regex",
      "relationships",
      "row_count",
      "freshness",
      "null_ratio",
      "expression",
      "drift",
    ]
  ) {
    assert.ok(types.has(t as never), `the example shows ${t}`);
  }
  assert.deepEqual(config.quality, {
    checks: true,
    profiling: true,
    sample_size: 5,
    quarantine_retention: { runs: 30 },
  });
});

Deno.test("check mistakes are reported with their position and a suggestion", () => {
  assert.deepEqual(problems("      - not_nul: { column: email }"), [
    '19:9 silver.orders.checks.0.not_nul: unknown key "not_nul" (did you mean "not_null"?)',
  ]);
  assert.deepEqual(problems("      - not_null: { column: emial }"), [
    '19:29 silver.orders.checks.0.not_null.column: column "emial" is not among the declared ' +
    'columns (did you mean "email"?)',
  ]);
  assert.deepEqual(problems("      - relationships: { column: customer_id, to: custmers }"), [
    '19:51 silver.orders.checks.0.relationships.to: unknown table "custmers" ' +
    '(did you mean "customers"?)',
  ]);
  assert.deepEqual(problems("      - relationships: { column: email, to: customers }"), [
    '19:34 silver.orders.checks.0.relationships.column: column "email" is not among the ' +
    "columns of silver.customers (columns: customer_id); name its column with field: NAME",
  ]);
  assert.deepEqual(
    problems("      - unique: { column: order_id }\n      - unique: { column: order_id }"),
    [
      '20:17 silver.orders.checks.1.unique: check name "unique_order_id" is already used by ' +
      "entry 1 of this list (give one of them another name: NAME)",
    ],
  );
  assert.deepEqual(problems("      - not_null: { column: email, threshold: 0.5 }"), [
    "19:47 silver.orders.checks.0.not_null.threshold: must be a number of rows such as 25 " +
    'or a percentage of the rows checked such as "0.5%"',
  ]);
  const age = problems("      - freshness: { column: email, max_age: 2 dayz }");
  assert.equal(age.length, 1);
  assert.match(age[0], /^19:46 silver\.orders\.checks\.0\.freshness\.max_age: unknown unit "dayz"/);
  assert.deepEqual(problems("      - drift: { metric: null_ratio, max_delta: 0.1 }"), [
    '19:16 silver.orders.checks.0.drift.column: missing required key "column"',
  ]);
  assert.deepEqual(
    problems("      - not_null: { column: email }\n        unique: { column: email }"),
    [
      "19:9 silver.orders.checks.0: a check is a mapping with exactly one check type as its key " +
      "(not_null, unique, accepted_values, range, regex, relationships, row_count, freshness, " +
      "null_ratio, expression, drift), e.g. - not_null: { column: email }",
    ],
  );
});

Deno.test("quarantine checks name quarantine columns and cannot drift", () => {
  const config = parse(
    "      - not_null: { column: email }\n    quarantine_checks:\n" +
      "      - accepted_values: { column: _reason_code, values: [cast_failed] }",
  );
  assert.equal(config.silver.orders.quarantine_checks?.length, 1);
  assert.deepEqual(
    problems(
      "      - not_null: { column: email }\n    quarantine_checks:\n" +
        "      - not_null: { column: email }\n" +
        "      - drift: { metric: row_count, max_delta: 10 }",
    ),
    [
      '21:29 silver.orders.quarantine_checks.0.not_null.column: column "email" is not a ' +
      `quarantine table column (quarantine columns: ${DLQ_COLUMNS.map(([n]) => n).join(", ")})`,
      "22:16 silver.orders.quarantine_checks.1.drift: drift compares table profiles; quarantine " +
      "tables are not profiled (use row_count or expression on quarantine tables)",
    ],
  );
});
