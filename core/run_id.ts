/**
 * Run ids: time-ordered UUIDv7 strings (RFC 9562).
 *
 * @module
 */
import type { Clock } from "./clock.ts";

/** Pattern a `--run-id` must match: letters, digits, `-`, `_`, `.`, 1 to 64. */
export const RUN_ID_PATTERN: RegExp = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Generates a UUIDv7 whose first 48 bits are the clock's milliseconds, so run
 * ids sort by start time.
 *
 * @example
 * ```ts
 * import { newRunId } from "./run_id.ts";
 * import { systemClock } from "./clock.ts";
 * const id = newRunId(systemClock); // e.g. "019abc12-3456-7def-8abc-0123456789ab"
 * ```
 */
export function newRunId(clock: Clock): string {
  const ms = BigInt(clock.now().getTime());
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}
