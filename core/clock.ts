/**
 * Clocks. Code reads time only through a {@linkcode Clock} passed in the run
 * context, so tests can inject a fixed or stepping clock.
 *
 * @module
 */

/** A source of the current time. */
export interface Clock {
  /** The current time. */
  now(): Date;
}

/**
 * The system clock.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const started = systemClock.now();
 * ```
 */
export const systemClock: Clock = { now: () => new Date() };

/**
 * A clock that starts at `start` and advances `stepMs` on every read; for tests.
 *
 * @example
 * ```ts
 * import { steppingClock } from "./clock.ts";
 * const clock = steppingClock(new Date("2026-01-01T00:00:00Z"), { stepMs: 1000 });
 * clock.now(); // 2026-01-01T00:00:00Z
 * clock.now(); // 2026-01-01T00:00:01Z
 * ```
 */
export function steppingClock(start: Date, options: { stepMs?: number } = {}): Clock {
  let t = start.getTime();
  const step = options.stepMs ?? 0;
  return {
    now() {
      const d = new Date(t);
      t += step;
      return d;
    },
  };
}
