import assert from "node:assert/strict";
import { preloadDuckDbLibrary } from "../_preload_duckdb.ts";

Deno.test("the compiled-binary preload finds and opens DuckDB's shared library in node_modules", () => {
  const path = preloadDuckDbLibrary(new URL("../node_modules/", import.meta.url));
  assert.ok(path, "libduckdb not found");
  assert.match(
    path,
    /@duckdb\+node-bindings-linux-x64@[^/]+\/node_modules\/@duckdb\/node-bindings-linux-x64\/libduckdb\.so$/,
  );
});
