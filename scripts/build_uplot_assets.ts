/**
 * Writes `observability/_uplot_assets.ts` from the uplot npm package. Run it
 * after changing the uplot version in deno.json:
 *
 *     deno run --allow-read --allow-write scripts/build_uplot_assets.ts
 *
 * `--check` only compares and exits 1 when the committed module is stale.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { renderAssetsModule, UPLOT_ASSETS_MODULE } from "../observability/_build_assets.ts";

const text = await renderAssetsModule();
const path = fileURLToPath(UPLOT_ASSETS_MODULE);
if (Deno.args.includes("--check")) {
  const current = await Deno.readTextFile(path).catch(() => "");
  if (current !== text) {
    console.error(`${path} is stale: run deno run --allow-read --allow-write ${import.meta.url}`);
    Deno.exit(1);
  }
  console.log(`${path} is up to date`);
} else {
  await Deno.writeTextFile(path, text);
  console.log(`wrote ${path} (${text.length} characters)`);
}
