/**
 * Deterministic e-commerce demo data: customers, products and orders as CSV
 * landing files, with the kind of mess real exports have (duplicates, late
 * updates, bad values, mixed-case codes, unknown customers).
 *
 * All rows are made inside DuckDB from `range(n)` and a seeded `hash()`, so
 * a million orders take seconds and the same seed and scale always give the
 * same bytes. No `random()` is used: it is not reproducible across threads.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { openEngine } from "../core/engine.ts";
import type { Engine } from "../core/engine.ts";
import { UsageError } from "../core/errors.ts";
import { literal, literalList } from "../core/quote.ts";

/**
 * Options of {@linkcode generateDemoData}.
 *
 * @example
 * ```ts
 * import type { GenerateOptions } from "./generate.ts";
 * const options: GenerateOptions = { scale: 1_000_000, seed: 42, files: 50 };
 * ```
 */
export interface GenerateOptions {
  /** Number of order rows, duplicates included (1000 .. 10000000). Default 10000. */
  scale?: number;
  /** Seed of the pseudo-random choices; same seed, same bytes. Default 42. */
  seed?: number;
  /** Number of order landing files. Default `clamp(scale / 20000, 4, 200)`. */
  files?: number;
}

/**
 * What {@linkcode generateDemoData} wrote.
 *
 * @example
 * ```ts
 * import { generateDemoData } from "./generate.ts";
 * const { orders, customers, products, files } = await generateDemoData("./demo");
 * ```
 */
export interface GenerateSummary {
  /** Order rows written, duplicates included. */
  orders: number;
  /** Customer rows written. */
  customers: number;
  /** Product rows written. */
  products: number;
  /** Absolute paths of every CSV file written, customers and products first. */
  files: string[];
  /** Absolute output folder (the one holding `landing/`). */
  outDir: string;
}

/**
 * Smallest accepted `scale`.
 *
 * @example
 * ```ts
 * import { MAX_SCALE, MIN_SCALE } from "./generate.ts";
 * const ok = (n: number) => n >= MIN_SCALE && n <= MAX_SCALE;
 * ```
 */
export const MIN_SCALE = 1_000;
/**
 * Largest accepted `scale`.
 *
 * @example
 * ```ts
 * import { MAX_SCALE } from "./generate.ts";
 * const help = `--scale at most ${MAX_SCALE}`;
 * ```
 */
export const MAX_SCALE = 10_000_000;
/**
 * Largest accepted number of order files (also at most `scale / 100`).
 *
 * @example
 * ```ts
 * import { MAX_FILES } from "./generate.ts";
 * const help = `--files at most ${MAX_FILES}`;
 * ```
 */
export const MAX_FILES = 1_000;

/** Orders are spread over these 91 days, ending 2026-06-30 23:59:59. */
const START_TS = "2026-04-01 00:00:00";
const SPAN_SECONDS = 91 * 86_400;

/** ISO-2 country codes; repeats weight the common ones. */
const COUNTRIES = [
  "DE",
  "DE",
  "DE",
  "DE",
  "US",
  "US",
  "US",
  "FR",
  "FR",
  "GB",
  "GB",
  "NL",
  "ES",
  "IT",
  "PL",
  "SE",
  "AT",
  "BE",
  "CH",
  "DK",
]; // deno-fmt-ignore

const FIRST_NAMES = [
  "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hugo", "Ines", "Jonas",
  "Karin", "Luca", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sami", "Tara",
  "Uwe", "Vera", "Will", "Xenia", "Yusuf", "Zoe", "Amir", "Lena", "Marco", "Sofia",
]; // deno-fmt-ignore

const LAST_NAMES = [
  "Andersen", "Becker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hansen",
  "Ivanova", "Jansen", "Kowalski", "Larsen", "Meyer", "Novak", "O'Brien", "Petrov",
  "Rossi", "Schmidt", "Taylor", "Urban", "Vogel", "Weber", "Yilmaz", "Zimmermann",
]; // deno-fmt-ignore

const ADJECTIVES = [
  "Compact", "Classic", "Ergonomic", "Smart", "Eco", "Deluxe", "Portable", "Wireless",
  "Vintage", "Premium", "Rugged", "Slim",
]; // deno-fmt-ignore

/** Product nouns and their categories, index for index. */
const NOUNS = [
  "Kettle", "Toaster", "Blender", "Desk Lamp", "Office Chair", "Monitor", "Keyboard",
  "Headphones", "Backpack", "Water Bottle", "Running Shoes", "Yoga Mat", "Novel",
  "Cookbook", "Board Game", "Puzzle",
]; // deno-fmt-ignore
const CATEGORIES = [
  "kitchen", "kitchen", "kitchen", "home", "home", "electronics", "electronics",
  "electronics", "outdoor", "outdoor", "sports", "sports", "books", "books", "toys", "toys",
]; // deno-fmt-ignore

/** Quantity words for non-numeric quantities. */
const QUANTITY_WORDS = ["two", "three", "ten", "a few"];

/** Resolves the options to numbers, or throws a {@linkcode UsageError}. */
function settle(options: GenerateOptions): { scale: number; seed: number; files: number } {
  const scale = options.scale ?? 10_000;
  if (!Number.isInteger(scale)) {
    throw new UsageError(
      `Cannot generate: --scale must be a whole number between ${MIN_SCALE} and ${MAX_SCALE} (got ${scale})`,
    );
  }
  if (scale < MIN_SCALE || scale > MAX_SCALE) {
    throw new UsageError(
      `Cannot generate: --scale must be between ${MIN_SCALE} and ${MAX_SCALE} (got ${scale})`,
    );
  }
  const seed = options.seed ?? 42;
  if (!Number.isSafeInteger(seed)) {
    throw new UsageError(`Cannot generate: --seed must be a whole number (got ${seed})`);
  }
  const maxFiles = Math.min(MAX_FILES, Math.floor(scale / 100));
  const files = options.files ?? Math.min(200, Math.max(4, Math.round(scale / 20_000)));
  if (!Number.isInteger(files) || files < 1 || files > maxFiles) {
    throw new UsageError(
      `Cannot generate: --files must be a whole number between 1 and ${maxFiles} for --scale ${scale} (got ${files})`,
    );
  }
  return { scale, seed, files };
}

/** `orders_0001.csv` style name of order file `k` (0-based). */
function orderFileName(k: number, files: number): string {
  const width = Math.max(4, String(files).length);
  return `orders_${String(k + 1).padStart(width, "0")}.csv`;
}

/**
 * Creates the macros every generator query uses. `h(i, salt)` is the seeded
 * hash; `u(i, salt)` a uniform double in [0, 1).
 */
async function createMacros(db: Engine, seed: number): Promise<void> {
  const macros = [
    // The outer hash mixes the bits: DuckDB combines the hashes of several
    // arguments with a final XOR, which leaves the low bits of two salts correlated.
    `h(i, salt) AS hash(hash(CAST(i AS BIGINT), CAST(${literal(seed)} AS BIGINT), salt))`,
    `u(i, salt) AS CAST(h(i, salt) % 1000000007 AS DOUBLE) / 1000000007`,
    `pick(choices, i, salt) AS choices[1 + CAST(h(i, salt) % len(choices) AS BIGINT)]`,
    `iso(ts) AS strftime(ts, '%Y-%m-%dT%H:%M:%S')`,
    // Home country of a customer id (also defined for unknown customers).
    `home_country(cid) AS pick(${literalList(COUNTRIES)}, cid, 'country')`,
    // Writes a clean code the way sloppy upstream systems do, 30% of the time.
    `messy_country(c, i, salt) AS CASE h(i, salt) % 20
       WHEN 14 THEN lower(c) WHEN 15 THEN lower(c)
       WHEN 16 THEN upper(c[1]) || lower(c[2:])
       WHEN 17 THEN ' ' || c WHEN 18 THEN c || ' '
       WHEN 19 THEN ' ' || lower(c) || ' '
       ELSE c END`,
    `price_cents(pid) AS 199 + h(pid, 'price') % 49801`,
    `money(cents) AS printf('%d.%02d', cents // 100, cents % 100)`,
  ];
  for (const m of macros) await db.run(`CREATE TEMP MACRO ${m}`);
}

/** SELECT of all customers, ordered by id. */
function customersSql(customers: number): string {
  return `
    SELECT customer_id, name,
      CASE WHEN e = 0 THEN NULL
           WHEN e = 1 THEN ''
           WHEN e < 6 THEN upper(email)
           WHEN e < 8 THEN ' ' || email || ' '
           ELSE email END AS email,
      messy_country(home_country(customer_id), customer_id, 'country_case') AS country,
      strftime(signup, '%Y-%m-%d') AS signup_date,
      iso(signup + to_seconds(CAST(h(customer_id, 'updated') % (30 * 86400) AS BIGINT)))
        AS updated_at
    FROM (
      SELECT i + 1 AS customer_id,
        pick(${literalList(FIRST_NAMES)}, i, 'first') AS first_name,
        pick(${literalList(LAST_NAMES)}, i, 'last') AS last_name,
        first_name || ' ' || last_name AS name,
        lower(first_name || '.' || replace(last_name, '''', '')) || '.' || (i + 1)
          || '@example.com' AS email,
        h(i, 'email') % 100 AS e,
        CAST(DATE '2022-01-01' + CAST(h(i, 'signup') % 1550 AS INTEGER) AS TIMESTAMP) AS signup
      FROM range(${literal(customers)}) t(i)
    )
    ORDER BY customer_id`;
}

/** SELECT of all products, ordered by id. */
function productsSql(products: number): string {
  return `
    SELECT i + 1 AS product_id,
      pick(${literalList(ADJECTIVES)}, i, 'adjective') || ' ' || ${literalList(NOUNS)}[1 + n]
        || ' ' || (100 + i) AS name,
      ${literalList(CATEGORIES)}[1 + n] AS category,
      money(price_cents(i + 1)) AS unit_price
    FROM (SELECT i, CAST(h(i, 'noun') % ${literal(NOUNS.length)} AS BIGINT) AS n
          FROM range(${literal(products)}) t(i))
    ORDER BY product_id`;
}

/** Layout of the order rows over files. */
interface OrderPlan {
  /** Distinct orders. */
  base: number;
  /** Extra rows repeating an order id. */
  dups: number;
  /** Number of files. */
  files: number;
  /** Customers (known ids are 1..customers). */
  customers: number;
  /** Products. */
  products: number;
}

/**
 * Creates `dup_plan`: for each duplicate row `j`, the order it repeats and
 * the file it is sent with (the original's file or one of the next two).
 */
function dupPlanSql(plan: OrderPlan): string {
  const B = literal(plan.base);
  const F = literal(plan.files);
  return `
    CREATE TEMP TABLE dup_plan AS
    SELECT orig, j + 1 AS dup_seq,
      least(${F} - 1, orig * ${F} // ${B} + CAST(h(j, 'dup_file') % 3 AS BIGINT)) AS file
    FROM (SELECT j, CAST(h(j, 'dup_of') % ${B} AS BIGINT) AS orig
          FROM range(${literal(plan.dups)}) t(j))`;
}

/**
 * SELECT of the order rows of file `k`: the distinct orders whose index falls
 * in the file's slice of time, plus the duplicates that were sent with it.
 */
function ordersFileSql(plan: OrderPlan, k: number): string {
  const { base, files, customers, products } = plan;
  // Order i belongs to file floor(i * files / base); file k holds [lo, hi).
  const lo = Math.ceil((k * base) / files);
  const hi = Math.ceil(((k + 1) * base) / files);
  const B = literal(base);
  const unknownSpread = literal(Math.max(10, Math.floor(customers / 10)));
  const jitter = literal(Math.max(1, Math.floor(SPAN_SECONDS / base)));
  return `
    WITH picked AS (
      SELECT i, 0 AS dup_seq FROM range(${literal(lo)}, ${literal(hi)}) t(i)
      UNION ALL
      SELECT orig AS i, dup_seq FROM dup_plan WHERE file = ${literal(k)}
    ),
    facts AS (
      SELECT i, dup_seq,
        i + 1 AS order_id,
        CASE WHEN h(i, 'unknown') % 1000 < 5
          THEN ${literal(customers + 1)} + CAST(h(i, 'unknown_id') % ${unknownSpread} AS BIGINT)
          ELSE 1 + CAST(floor(${literal(customers)} * pow(u(i, 'customer'), 1.5)) AS BIGINT)
        END AS customer_id,
        1 + CAST(floor(${literal(products)} * pow(u(i, 'product'), 2)) AS BIGINT) AS product_id,
        CASE WHEN q < 55 THEN 1 WHEN q < 78 THEN 2 WHEN q < 88 THEN 3 WHEN q < 94 THEN 4
             ELSE 5 + CAST(q % 6 AS BIGINT) END AS qty,
        TIMESTAMP ${literal(START_TS)} + to_seconds(
          i * ${literal(SPAN_SECONDS)} // ${B} + CAST(h(i, 'ts') % ${jitter} AS BIGINT)) AS ts,
        ts + to_seconds(CAST(60 + h(i, 'updated') % 7200 AS BIGINT)) AS upd,
        CASE WHEN s < 70 THEN 'completed' WHEN s < 80 THEN 'shipped' WHEN s < 90 THEN 'pending'
             WHEN s < 97 THEN 'cancelled' ELSE 'returned' END AS clean_status,
        CASE WHEN h(i, 'abroad') % 10 = 0 THEN pick(${literalList(COUNTRIES)}, i, 'abroad_country')
             ELSE home_country(customer_id) END AS clean_country,
        CASE WHEN h(i, 'bad') % 1000 < 5 THEN CAST(h(i, 'bad_kind') % 4 AS INTEGER) END AS bad,
        dup_seq > 0 AND h(dup_seq, 'dup_kind') % 2 = 1 AS is_update
      FROM (SELECT i, dup_seq, h(i, 'qty') % 100 AS q, h(i, 'status') % 100 AS s FROM picked)
    ),
    final AS (
      SELECT order_id, dup_seq, customer_id, product_id,
        CASE bad WHEN 0 THEN '-' || qty
                 WHEN 1 THEN pick(${literalList(QUANTITY_WORDS)}, order_id, 'word')
                 ELSE CAST(qty AS VARCHAR) END AS quantity,
        money(price_cents(product_id)) AS unit_price,
        CASE bad WHEN 2 THEN '2024-13-45' WHEN 3 THEN 'not a date' ELSE iso(ts) END AS order_ts,
        messy_country(clean_country, i, 'country_case') AS country,
        CASE WHEN NOT is_update THEN clean_status
             WHEN clean_status = 'pending' THEN 'shipped'
             WHEN clean_status = 'shipped' THEN 'completed'
             WHEN clean_status = 'completed' THEN 'returned'
             ELSE clean_status END AS new_status,
        CASE h(i, 'status_case') % 20 WHEN 0 THEN upper(new_status)
             WHEN 1 THEN upper(new_status[1]) || new_status[2:]
             ELSE new_status END AS status,
        iso(CASE WHEN is_update
                 THEN upd + to_seconds(CAST(3600 + h(dup_seq, 'later') % (72 * 3600) AS BIGINT))
                 ELSE upd END) AS updated_at
      FROM facts
    )
    SELECT order_id, customer_id, product_id, quantity, unit_price, order_ts, country, status,
      updated_at
    FROM final
    ORDER BY order_id, dup_seq`;
}

/** Runs `COPY (query) TO file` as CSV with a header; returns the rows written. */
async function copyCsv(db: Engine, query: string, file: string): Promise<number> {
  const rows = await db.all<{ Count: number | bigint }>(
    `COPY (${query}) TO ${literal(file)} (FORMAT csv, HEADER, DELIMITER ',')`,
  );
  return Number(rows[0]?.Count ?? 0);
}

/** Removes order files left by an earlier generation (they may be more). */
async function removeOldOrderFiles(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && /^orders_\d{4,}\.csv$/.test(entry.name)) {
      await Deno.remove(join(dir, entry.name));
    }
  }
}

/**
 * Writes deterministic e-commerce demo data below `outDir/landing/`:
 * `customers/customers.csv`, `products/products.csv` and
 * `orders/orders_0001.csv` ... . `scale` is the number of order rows
 * (duplicates included). About 1% of orders appear twice (some with a later
 * `updated_at` and a new status), 0.5% carry bad values (negative or
 * non-numeric quantities, unparsable timestamps), 0.5% name unknown
 * customers, about 2% of customers have no email, and country codes come in
 * mixed case with stray spaces. Order timestamps cover the 91 days ending
 * 2026-06-30. The same `scale`, `seed` and `files` always give the same bytes.
 *
 * Order files from an earlier generation in the same folder are removed.
 * Throws {@linkcode UsageError} for options out of range.
 *
 * @example
 * ```ts
 * import { generateDemoData } from "./generate.ts";
 * const summary = await generateDemoData("./demo", { scale: 100_000, seed: 7 });
 * const orderFiles = summary.files.length - 2; // customers and products come first
 * ```
 */
export async function generateDemoData(
  outDir: string,
  options: GenerateOptions = {},
): Promise<GenerateSummary> {
  const { scale, seed, files } = settle(options);
  const absOut = resolve(outDir);
  const customersDir = join(absOut, "landing", "customers");
  const productsDir = join(absOut, "landing", "products");
  const ordersDir = join(absOut, "landing", "orders");
  for (const d of [customersDir, productsDir, ordersDir]) await Deno.mkdir(d, { recursive: true });
  await removeOldOrderFiles(ordersDir);

  const dups = Math.round(scale / 100);
  const plan: OrderPlan = {
    base: scale - dups,
    dups,
    files,
    customers: Math.max(100, Math.floor(scale / 10)),
    products: Math.max(50, Math.floor(scale / 1000)),
  };

  const db = await openEngine(":memory:", { allowedDirectories: [absOut] });
  try {
    await createMacros(db, seed);
    await db.run(dupPlanSql(plan));
    const written: string[] = [];
    const customersFile = join(customersDir, "customers.csv");
    const customers = await copyCsv(db, customersSql(plan.customers), customersFile);
    written.push(customersFile);
    const productsFile = join(productsDir, "products.csv");
    const products = await copyCsv(db, productsSql(plan.products), productsFile);
    written.push(productsFile);
    let orders = 0;
    for (let k = 0; k < files; k++) {
      const file = join(ordersDir, orderFileName(k, files));
      orders += await copyCsv(db, ordersFileSql(plan, k), file);
      written.push(file);
    }
    return { orders, customers, products, files: written, outDir: absOut };
  } finally {
    db.close();
  }
}
