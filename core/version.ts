/**
 * The version of Sluice: the one place it is written in code. It must equal
 * `version` in deno.json (what `deno publish` uses); `tests/architecture_test.ts`
 * fails when the two differ.
 *
 * @example
 * ```ts
 * import { SLUICE_VERSION } from "./version.ts";
 * const banner = `sluice ${SLUICE_VERSION}`;
 * ```
 *
 * @module
 */

/** The version of Sluice (ledger rows, lineage producer, `sluice --version`). */
export const SLUICE_VERSION = "0.1.0";
