/**
 * The three prom-client classes Sluice uses (registry, counter, gauge),
 * loaded from their own files. prom-client's index also loads its default
 * process metrics (which pull in `@opentelemetry/api`), the Pushgateway
 * client (`node:http`, `node:https`) and the cluster aggregator on every
 * start: about 40 ms a run that no Sluice command needs. The classes are
 * the same ones (`import { Registry } from "prom-client"` interoperates).
 *
 * @module
 */
import type * as Prom from "prom-client";
// prom-client's files carry no types of their own: the package's are used.
import RegistryJs from "prom-client/lib/registry.js";
import CounterJs from "prom-client/lib/counter.js";
import GaugeJs from "prom-client/lib/gauge.js";

/**
 * prom-client's `Registry` class.
 *
 * @example
 * ```ts
 * import { Registry } from "./prom.ts";
 * const registry = new Registry();
 * await registry.metrics();
 * ```
 */
export const Registry: typeof Prom.Registry = RegistryJs as unknown as typeof Prom.Registry;
/** A prom-client registry. */
export type Registry = Prom.Registry;

/**
 * prom-client's `Counter` class.
 *
 * @example
 * ```ts
 * import { Counter, Registry } from "./prom.ts";
 * const c = new Counter({ name: "x_total", help: "x", registers: [new Registry()] });
 * c.inc();
 * ```
 */
export const Counter: typeof Prom.Counter = CounterJs as unknown as typeof Prom.Counter;
/** A prom-client counter. */
export type Counter<T extends string = string> = Prom.Counter<T>;

/**
 * prom-client's `Gauge` class.
 *
 * @example
 * ```ts
 * import { Gauge, Registry } from "./prom.ts";
 * const g = new Gauge({ name: "x", help: "x", registers: [new Registry()] });
 * g.set(1);
 * ```
 */
export const Gauge: typeof Prom.Gauge = GaugeJs as unknown as typeof Prom.Gauge;
/** A prom-client gauge. */
export type Gauge<T extends string = string> = Prom.Gauge<T>;
