/**
 * JSON documents on stdout.
 *
 * @module
 */

/** `JSON.stringify` with 2-space indent; BIGINTs become numbers when safe, else strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v !== "bigint") return v;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v.toString();
  }, 2);
}
