/**
 * Types of npm packages that appear in Sluice's public signatures:
 * prom-client's registry and metrics, LogTape's logger, records and levels,
 * and zod's inferred output type. Their documentation is the packages' own.
 *
 * Public modules import these types from here rather than from the
 * packages. Each re-export is tagged `@internal`, which tells
 * `deno doc --lint` that the type is deliberately not documented by Sluice.
 * Re-exporting them from `mod.ts` instead would make the linter check every
 * declaration of the packages themselves (their members, their private
 * helper types), which Sluice cannot fix.
 *
 * @module
 */

/**
 * prom-client's metric registry and metric classes (`npm:prom-client`).
 *
 * @example
 * ```ts ignore
 * import type { Registry } from "./npm_types.ts";
 * function render(registry: Registry): Promise<string> {
 *   return registry.metrics();
 * }
 * ```
 *
 * @internal
 */
export type { Counter, Gauge, Registry } from "prom-client";

/**
 * LogTape's logger, log record and level (`npm:@logtape/logtape`).
 *
 * @example
 * ```ts ignore
 * import type { Logger } from "./npm_types.ts";
 * function done(logger: Logger): void {
 *   logger.info("done", { event: "run_finished" });
 * }
 * ```
 *
 * @internal
 */
export type { Logger, LogLevel, LogRecord } from "@logtape/logtape";

/**
 * zod's `z.output`: the type a schema parses to (`npm:zod`).
 *
 * @example
 * ```ts ignore
 * import { z } from "zod";
 * import type { ZodOutput } from "./npm_types.ts";
 * const Point = z.object({ x: z.number() });
 * type Point = ZodOutput<typeof Point>; // { x: number }
 * ```
 *
 * @internal
 */
export type { output as ZodOutput } from "zod";
