/**
 * Compiled binaries only: load `libduckdb.so` before `duckdb.node` is
 * required. `deno compile` extracts `duckdb.node` without its sibling shared
 * library (denoland/deno#29203); opening the library first with
 * `Deno.dlopen` makes the addon's dependency resolvable. `cli.ts` imports
 * this module first, so it runs before DuckDB's bindings load.
 *
 * @module
 */

/** Library file name of DuckDB for this platform. */
function libraryName(): string {
  if (Deno.build.os === "darwin") return "libduckdb.dylib";
  if (Deno.build.os === "windows") return "duckdb.dll";
  return "libduckdb.so";
}

/**
 * Finds DuckDB's shared library inside the project's `node_modules` and opens
 * it. Returns the path it loaded, or undefined when none was found.
 *
 * @example
 * ```ts ignore
 * preloadDuckDbLibrary(new URL("./node_modules/", import.meta.url));
 * ```
 */
export function preloadDuckDbLibrary(nodeModules: URL): string | undefined {
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  const os = Deno.build.os === "windows" ? "win32" : Deno.build.os;
  const prefix = `@duckdb+node-bindings-${os}-${arch}@`;
  let store: URL;
  try {
    store = new URL(".deno/", nodeModules);
    for (const entry of Deno.readDirSync(store)) {
      if (!entry.name.startsWith(prefix)) continue;
      const lib = new URL(
        `${entry.name}/node_modules/@duckdb/node-bindings-${os}-${arch}/${libraryName()}`,
        store,
      );
      try {
        Deno.dlopen(lib, {});
        return lib.pathname;
      } catch {
        continue;
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

if (Deno.build.standalone) preloadDuckDbLibrary(new URL("./node_modules/", import.meta.url));
