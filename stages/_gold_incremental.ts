/**
 * Incremental gold models: which model SQL is safe to compute only for the
 * keys (or partitions) a run's silver changes touched, found in DuckDB's own
 * parse tree (`json_serialize_sql`), and how to compute those keys from
 * silver's change set.
 *
 * A model is safe when it is one SELECT over silver tables, each read once,
 * joined with INNER joins only, without CTEs, subqueries, set operations,
 * window functions, QUALIFY, LIMIT or DISTINCT ON, and every key column is
 * an output column that is (a) grouped (`GROUP BY ALL`, or named in the
 * GROUP BY), or the model has no aggregate at all, and (b) computed from
 * columns of one silver table (or from columns an INNER JOIN ... USING
 * makes equal in several), with no aggregate in it. Then every output row
 * of a key depends only on the silver rows with that key value, so deleting
 * the affected keys and inserting the model filtered to them equals a full
 * rebuild.
 *
 * @module
 */
import type { GoldModelConfig } from "../core/config/mod.ts";
import type { Engine } from "../core/engine.ts";
import { EngineError } from "../core/errors.ts";
import { ident, literal } from "../core/quote.ts";

type Node = Record<string, unknown>;

/** How an incremental model's keys are computed from a silver table's changed rows. */
export interface IncrementalPlan {
  /** The model's key columns (`partition_by`, else `unique_key`). */
  keys: string[];
  /** Silver table → the parse-tree expression of each key over its columns (unqualified). */
  keyExprs: Map<string, Node[]>;
  /** Silver tables the model reads. */
  tables: string[];
}

/** The key columns of a model: its `partition_by`, else its `unique_key`. */
export function modelKeys(model: GoldModelConfig): string[] {
  if (model.partition_by) return [model.partition_by];
  const k = model.unique_key;
  return k === undefined ? [] : Array.isArray(k) ? k : [k];
}

function walk(node: unknown, fn: (n: Node) => void): void {
  if (Array.isArray(node)) return node.forEach((n) => walk(n, fn));
  if (node === null || typeof node !== "object") return;
  fn(node as Node);
  for (const v of Object.values(node as Node)) walk(v, fn);
}

function strip(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strip);
  if (node === null || typeof node !== "object") return node;
  const out: Node = {};
  for (const [k, v] of Object.entries(node as Node)) {
    if (k !== "query_location" && k !== "alias") out[k] = strip(v);
  }
  return out;
}

const same = (a: unknown, b: unknown) => JSON.stringify(strip(a)) === JSON.stringify(strip(b));

async function parse(db: Engine, sql: string): Promise<Node> {
  const row = await db.one<{ j: string }>(`SELECT json_serialize_sql(${literal(sql)}) AS j`);
  const parsed = JSON.parse(row?.j ?? "{}") as { error?: boolean; error_message?: string };
  if (parsed.error) throw new EngineError(parsed.error_message ?? "cannot parse SQL");
  return parsed as Node;
}

let aggregates: Set<string> | undefined;
async function aggregateNames(db: Engine): Promise<Set<string>> {
  aggregates ??= new Set(
    (await db.all<{ f: string }>(
      `SELECT DISTINCT function_name AS f FROM duckdb_functions()
       WHERE function_type = 'aggregate'`,
    )).map((r) => r.f.toLowerCase()),
  );
  return aggregates;
}

/** The shapes refused anywhere in the model, as reasons. */
function refusals(node: Node): Set<string> {
  const refuse = new Set<string>();
  walk(node, (x) => {
    if (x.class === "WINDOW") refuse.add("uses a window function (it reads rows of other keys)");
    if (x.class === "SUBQUERY" || x.type === "SUBQUERY") refuse.add("uses a subquery");
    if (x.type === "SET_OPERATION_NODE") refuse.add("uses a set operation (UNION, EXCEPT...)");
    if (x.type === "TABLE_FUNCTION") refuse.add("reads a table function");
    if (x.type === "LIMIT_MODIFIER" || x.type === "LIMIT_PERCENT_MODIFIER") {
      refuse.add("uses LIMIT (which rows are kept depends on the whole table)");
    }
    if (x.type === "DISTINCT_MODIFIER" && ((x.distinct_on_targets as unknown[]) ?? []).length) {
      refuse.add("uses DISTINCT ON");
    }
    if (x.qualify) refuse.add("uses QUALIFY");
    if (((x.cte_map as { map?: unknown[] })?.map ?? []).length) refuse.add("uses a WITH clause");
    if (x.type === "JOIN" && x.join_type !== "INNER") {
      refuse.add(`uses a ${String(x.join_type)} join (only INNER joins are safe)`);
    }
    if (x.type === "JOIN" && x.ref_type !== "REGULAR") {
      refuse.add(`uses a ${String(x.ref_type)} join (only plain INNER joins are safe)`);
    }
  });
  return refuse;
}

/** The tables a model reads (by alias) and which USING columns join which tables. */
function tablesRead(node: Node, silverNames: ReadonlySet<string>, problems: string[]) {
  // The tables read, by alias.
  const byAlias = new Map<string, string>();
  const tables: string[] = [];
  const using = new Map<string, Set<string>>();
  const baseOf = (n: Node): string | undefined =>
    n.type === "BASE_TABLE" ? String(n.table_name).toLowerCase() : undefined;
  walk(node.from_table, (x) => {
    if (x.type === "BASE_TABLE") {
      const t = String(x.table_name).toLowerCase();
      const schema = String(x.schema_name ?? "").toLowerCase();
      if (!silverNames.has(t) || (schema !== "" && schema !== "silver")) {
        problems.push(`reads "${schema ? `${schema}.` : ""}${t}", which is not a silver table`);
      }
      if (tables.includes(t)) problems.push(`reads "${t}" twice (a self-join)`);
      tables.push(t);
      byAlias.set(String(x.alias || x.table_name).toLowerCase(), t);
    }
    if (x.type === "JOIN") {
      for (const c of (x.using_columns as string[]) ?? []) {
        const set = using.get(c.toLowerCase()) ?? new Set<string>();
        for (const side of [x.left as Node, x.right as Node]) {
          const b = baseOf(side);
          if (b) set.add(b);
        }
        using.set(c.toLowerCase(), set);
      }
    }
  });
  return { byAlias, tables, using };
}

/**
 * Checks that a model's SQL is safe to build incrementally (see the module
 * doc). Returns the plan, or the reasons it is refused (each says what to
 * change).
 *
 * @example
 * ```ts ignore
 * const { plan, problems } = await planIncremental(db, config.gold.daily);
 * ```
 */
export async function planIncremental(
  db: Engine,
  model: GoldModelConfig,
  silverNames: ReadonlySet<string>,
): Promise<{ plan?: IncrementalPlan; problems: string[] }> {
  const problems: string[] = [];
  const keys = modelKeys(model);
  const tree = await parse(db, model.sql);
  const stmts = (tree.statements ?? []) as Node[];
  const node = stmts[0]?.node as Node | undefined;
  if (stmts.length !== 1 || node?.type !== "SELECT_NODE") {
    return { problems: ["is not one plain SELECT (UNION and other set operations are refused)"] };
  }
  const aggs = await aggregateNames(db);
  const isAgg = (n: unknown) => {
    let found = false;
    walk(n, (x) => {
      if (x.class === "FUNCTION" && aggs.has(String(x.function_name).toLowerCase())) found = true;
    });
    return found;
  };
  problems.push(...refusals(node));
  const { byAlias, tables, using } = tablesRead(node, silverNames, problems);
  const list = (node.select_list ?? []) as Node[];
  const aliases = new Set(list.map((s) => String(s.alias ?? "").toLowerCase()).filter(Boolean));
  const groups = (node.group_expressions ?? []) as Node[];
  const groupAll = node.aggregate_handling === "FORCE_AGGREGATES";
  const aggregated = groupAll || groups.length > 0 || list.some(isAgg) || isAgg(node.having);
  if (((node.group_sets as unknown[]) ?? []).length > 1) {
    problems.push("uses GROUPING SETS, ROLLUP or CUBE");
  }
  const keyExprs = new Map<string, Node[]>(tables.map((t) => [t, []]));
  keys.forEach((key, ki) => {
    const k = key.toLowerCase();
    const index = list.findIndex((s) =>
      String(s.alias ?? "").toLowerCase() === k ||
      (!s.alias && s.class === "COLUMN_REF" &&
        String((s.column_names as string[]).at(-1)).toLowerCase() === k)
    );
    let item = list[index];
    if (!item && list.some((s) => s.class === "STAR") && !aggregated) {
      item = { class: "COLUMN_REF", type: "COLUMN_REF", alias: "", column_names: [key] };
    }
    if (!item) {
      problems.push(`has no output column "${key}" (the key must be a column of the SELECT list)`);
      return;
    }
    if (isAgg(item)) problems.push(`computes key "${key}" with an aggregate`);
    const grouped = groupAll || groups.some((g) =>
      same(g, item) ||
      (g.class === "CONSTANT" && Number((g.value as Node)?.value) === index + 1) ||
      (g.class === "COLUMN_REF" && (g.column_names as string[]).length === 1 &&
        String((g.column_names as string[])[0]).toLowerCase() === k)
    );
    if (aggregated && !grouped) {
      problems.push(`aggregates without key "${key}" in its GROUP BY (add it, or GROUP BY ALL)`);
    }
    // Which tables' rows the key can be computed from.
    let from: Set<string> | undefined;
    walk(item, (x) => {
      if (x.class !== "COLUMN_REF") return;
      const names = x.column_names as string[];
      const col = String(names.at(-1)).toLowerCase();
      let here: Set<string>;
      if (names.length >= 2) {
        const t = byAlias.get(String(names.at(-2)).toLowerCase());
        here = new Set(t ? [t] : []);
      } else if (tables.length === 1) here = new Set(tables);
      else here = using.get(col) ?? new Set();
      if (names.length === 1 && aliases.has(col) && col !== k) here = new Set();
      from = from === undefined ? here : new Set([...from].filter((t) => here.has(t)));
    });
    if (from === undefined) from = new Set(tables);
    if (from.size === 0) {
      problems.push(
        `computes key "${key}" from columns of more than one table, or unqualified ` +
          "(qualify them with one table's alias, or join with USING on them)",
      );
      return;
    }
    for (const t of from) {
      const e = structuredClone(item);
      walk(e, (x) => {
        if (x.class === "COLUMN_REF") x.column_names = [(x.column_names as string[]).at(-1)];
      });
      e.alias = key;
      keyExprs.get(t)![ki] = e;
    }
  });
  if (problems.length > 0) return { problems };
  for (const [t, exprs] of keyExprs) {
    if (exprs.filter(Boolean).length !== keys.length) keyExprs.delete(t);
  }
  return { plan: { keys, keyExprs, tables }, problems };
}

/**
 * The SQL that selects a model's key values from a table of changed silver
 * rows (`delta`, quoted), built by DuckDB from the key expressions' parse
 * trees (`json_deserialize_sql`).
 *
 * @example
 * ```ts ignore
 * const sql = await keySql(db, plan.keyExprs.get("orders")!, '"_delta_orders"');
 * ```
 */
export async function keySql(db: Engine, exprs: Node[], delta: string): Promise<string> {
  const base = await parse(db, `SELECT NULL AS k FROM ${delta}`);
  const stmt = (base.statements as Node[])[0].node as Node;
  stmt.select_list = exprs;
  const row = await db.one<{ s: string }>(
    `SELECT json_deserialize_sql(${literal(JSON.stringify(base))}::JSON) AS s`,
  );
  return row!.s;
}

/**
 * A silver table's rows that can reach the affected keys: the table
 * filtered to the rows whose key expressions (over its columns) match a row
 * of `affected` (`IS NOT DISTINCT FROM`, so a NULL key matches a NULL key).
 * A safe model reads each silver table once with INNER joins and computes
 * its key from one table's columns, so the output rows of an affected key
 * come only from such rows: reading the filtered table instead of the whole
 * one gives the same rows for those keys.
 *
 * @example
 * ```ts ignore
 * const sql = await affectedRowsSql(db, plan.keyExprs.get("orders")!, {
 *   table: 'silver."orders"', affected: '"_gold_keys_clv"', keys: ["customer_id"],
 * });
 * ```
 */
export async function affectedRowsSql(
  db: Engine,
  exprs: Node[],
  o: { table: string; affected: string; keys: string[] },
): Promise<string> {
  const base = await parse(db, `SELECT * FROM ${o.table}`);
  const stmt = (base.statements as Node[])[0].node as Node;
  const star = (stmt.select_list as Node[])[0];
  const marks = o.keys.map((_, i) => `__sluice_k${i}`);
  stmt.select_list = [
    star,
    ...exprs.map((e, i) => ({ ...structuredClone(e), alias: marks[i] })),
  ];
  const row = await db.one<{ s: string }>(
    `SELECT json_deserialize_sql(${literal(JSON.stringify(base))}::JSON) AS s`,
  );
  const on = o.keys.map((k, i) => `__a.${ident(k)} IS NOT DISTINCT FROM __x.${marks[i]}`);
  return `SELECT * EXCLUDE (${marks.join(", ")}) FROM (${row!.s}) AS __x
    SEMI JOIN ${o.affected} AS __a ON ${on.join(" AND ")}`;
}
