/**
 * The fast path of `sluice --version` (and `-V`): prints the version and
 * exits while the CLI's modules are still only loaded, before they are
 * evaluated. Evaluating them (DuckDB's native bindings, zod, commander,
 * prom-client...) costs about 0.3 s; the version needs none of it.
 * `cli.ts` imports this module right after `_preload_duckdb.ts`, and it acts
 * only when `cli.ts` is the main module and the version flag is the only
 * argument; anything else goes through commander as before.
 *
 * @example
 * ```ts ignore
 * // cli.ts
 * import "./_preload_duckdb.ts";
 * import "./_fast_version.ts";
 * ```
 *
 * @module
 */
import { SLUICE_VERSION } from "./core/version.ts";

/**
 * The DuckDB version bundled with `@duckdb/node-api` (deno.json), as
 * `SELECT version()` reports it; `tests/cli_contract_test.ts` compares the
 * two, so bumping the package without this fails the suite.
 */
export const DUCKDB_VERSION = "v1.5.6";

/**
 * What `sluice --version` prints: the Sluice, DuckDB and Deno versions.
 *
 * @example
 * ```ts ignore
 * versionText(); // "sluice 0.1.0\nduckdb v1.5.6\ndeno 2.9.6"
 * ```
 */
export function versionText(): string {
  return `sluice ${SLUICE_VERSION}\nduckdb ${DUCKDB_VERSION}\ndeno ${Deno.version.deno}`;
}

/**
 * True when the process is the CLI asked for its version and nothing else.
 *
 * @example
 * ```ts ignore
 * isVersionOnly(["--version"], "file:///srv/sluice/cli.ts"); // true
 * ```
 */
export function isVersionOnly(args: readonly string[], mainModule: string): boolean {
  return args.length === 1 && (args[0] === "--version" || args[0] === "-V") &&
    /\/cli\.ts$/.test(mainModule);
}

if (isVersionOnly(Deno.args, Deno.mainModule)) {
  console.log(versionText());
  Deno.exit(0);
}
