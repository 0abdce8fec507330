/**
 * Small file-system helpers shared by the stages and streaming.
 *
 * @module
 */

/**
 * True when something (file, folder or link, even a dangling one) is at
 * `path`; other errors than "not found" are thrown.
 *
 * @example
 * ```ts
 * import { pathExists } from "./fs.ts";
 * await pathExists("/etc"); // true
 * ```
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
