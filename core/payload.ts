/**
 * `payload_max_bytes`: how much of a raw row (a quarantine or DLQ payload, a
 * failing-row sample) is copied into logs, check results, `dlq list` and the
 * report. The DLQ and quarantine tables keep the whole payload; a capped
 * copy says so and how long the original is.
 *
 * @module
 */
import { literal } from "./quote.ts";

/** The cap when `quality.payload_max_bytes` is not set: 16 KiB. */
export const DEFAULT_PAYLOAD_MAX_BYTES = 16384;

/**
 * SQL that caps the text of `expr` (any type, cast to VARCHAR) at
 * `maxBytes` characters, appending ` … [capped: N bytes]`. NULL stays NULL.
 *
 * @example
 * ```ts
 * import { capPayloadSql } from "./payload.ts";
 * capPayloadSql("_payload", 100);
 * // "CASE WHEN strlen(CAST(_payload AS VARCHAR)) > 100 THEN ... END"
 * ```
 */
export function capPayloadSql(expr: string, maxBytes: number): string {
  const n = Math.max(1, Math.floor(maxBytes));
  const text = `CAST(${expr} AS VARCHAR)`;
  return `CASE WHEN strlen(${text}) > ${n} THEN left(${text}, ${n}) || ${
    literal(" … [capped: ")
  } || strlen(${text}) || ${literal(" bytes]")} ELSE ${text} END`;
}

/**
 * Caps a text at `maxBytes` UTF-8 bytes (never splitting a character),
 * appending ` … [capped: N bytes]`.
 *
 * @example
 * ```ts
 * import { capPayload } from "./payload.ts";
 * capPayload("x".repeat(10), 4); // "xxxx … [capped: 10 bytes]"
 * ```
 */
export function capPayload(text: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return text;
  let end = Math.max(0, Math.floor(maxBytes));
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return `${new TextDecoder().decode(bytes.subarray(0, end))} … [capped: ${bytes.length} bytes]`;
}

/**
 * Like {@linkcode capPayloadSql} for a JSON value, keeping it valid JSON: a
 * value longer than `maxBytes` becomes
 * `{"capped": true, "bytes": N, "head": "<first maxBytes characters>"}`.
 *
 * @example
 * ```ts
 * import { capJsonSql } from "./payload.ts";
 * capJsonSql("to_json(x)", 4096); // "CASE WHEN strlen(...) > 4096 THEN ... END"
 * ```
 */
export function capJsonSql(expr: string, maxBytes: number): string {
  const n = Math.max(1, Math.floor(maxBytes));
  const text = `CAST(${expr} AS VARCHAR)`;
  return `CASE WHEN strlen(${text}) > ${n} THEN CAST(to_json({'capped': true, ` +
    `'bytes': strlen(${text}), 'head': left(${text}, ${n})}) AS VARCHAR) ELSE ${text} END`;
}
