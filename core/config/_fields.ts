/**
 * Zod field types shared by the section schemas (names, DuckDB types, sizes).
 *
 * @module
 */
import { z } from "zod";
import { IDENTIFIER_PATTERN, TYPE_PATTERN } from "../quote.ts";

export const identifier: z.ZodString = z.string().regex(IDENTIFIER_PATTERN, {
  error: "must be an identifier (letters, digits and _, not starting with a digit, at most 63)",
});

export const sqlTypeName: z.ZodString = z.string().regex(TYPE_PATTERN, {
  error: "must be a DuckDB type such as VARCHAR, BIGINT, DOUBLE, DECIMAL(12,2), DATE, TIMESTAMP",
});

export const sizeText: z.ZodString = z.string().regex(
  /^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$/i,
  {
    error: 'must be a size such as "512MB" or "2GB"',
  },
);
