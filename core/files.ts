/**
 * File discovery shared by the batch stages and streaming: glob matching
 * (`globToRegExp`), listing a source folder (`listFiles`, symlinks followed
 * only inside the allowed folders) and the `FileFingerprint` type a listed
 * file becomes.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { isAbsolute, join, relative, sep } from "node:path";
import { SourceError } from "./errors.ts";

/**
 * A file's identity: where it is, how big, when changed, what it holds.
 *
 * @example
 * ```ts
 * import type { FileFingerprint } from "./files.ts";
 * const file: FileFingerprint = {
 *   path: "/srv/landing/orders_2026-01-01.csv",
 *   rel: "orders_2026-01-01.csv",
 *   size: 1024,
 *   mtimeMs: Date.UTC(2026, 0, 1),
 *   sha256: "", // filled in once hashed
 * };
 * ```
 */
export interface FileFingerprint {
  /** Absolute path (where the file is read from). */
  path: string;
  /**
   * The path relative to the source folder, with `/` separators: what the
   * manifest (`_sluice.files.path`) and bronze (`_source_file`) store, so a
   * moved project folder continues where it was. Defaults to `path`.
   */
  rel?: string;
  /** Size in bytes. */
  size: number;
  /** Modification time, ms since epoch. */
  mtimeMs: number;
  /** SHA-256 of the content, hex; empty until hashed. */
  sha256: string;
  /**
   * The SHA-256 being computed in the background (new files are hashed while
   * bronze lands them); {@linkcode fileSha256} waits for it.
   */
  hashing?: Promise<string>;
  /**
   * The whole file, when it is small and bronze read it once for its kind
   * check, CSV header and hash (dropped once the landing is recorded).
   */
  content?: Uint8Array;
}

/**
 * Turns a glob into an anchored RegExp over `/`-separated relative paths:
 * `*` and `?` within one segment, `**` across segments, `[abc]`, `[!abc]`,
 * `{a,b}` (not nested); every other character is literal, parentheses
 * included. A `{` without its `}` is refused with a SourceError. (Why not
 * picomatch: see "Decisions" in docs/architecture.md.)
 *
 * @example
 * ```ts
 * import { globToRegExp } from "./files.ts";
 * globToRegExp("orders_*.{csv,tsv}").test("orders_1.tsv"); // true
 * ```
 */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  let i = 0;
  let inGroup = false;
  while (i < glob.length) {
    const c = glob[i];
    if (c === "*") {
      if (glob[i + 1] === "*") {
        const slash = glob[i + 2] === "/";
        re += slash ? "(?:.*/)?" : ".*";
        i += slash ? 3 : 2;
        continue;
      }
      re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i);
      if (end < 0) re += "\\[";
      else {
        re += `[${glob.slice(i + 1, end).replace(/^!/, "^").replaceAll("\\", "\\\\")}]`;
        i = end;
      }
    } else if (c === "{" && !inGroup) {
      inGroup = true;
      re += "(?:";
    } else if (c === "}" && inGroup) {
      inGroup = false;
      re += ")";
    } else if (c === "," && inGroup) re += "|";
    else re += c.replace(/[.+^$()|\\/{}]/g, "\\$&");
    i++;
  }
  if (inGroup) throw new SourceError(`Cannot use glob "${glob}": "{" has no closing "}"`);
  return new RegExp(`^${re}$`);
}

async function* walk(
  dir: string,
  recursive: boolean,
): AsyncGenerator<{ path: string; link: boolean }> {
  for await (const entry of Deno.readDir(dir)) {
    const full = join(dir, entry.name);
    if (entry.isDirectory && recursive) yield* walk(full, recursive);
    else if (entry.isFile) yield { path: full, link: false };
    else if (entry.isSymlink) yield { path: full, link: true };
  }
}

function inside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * Whether a symlink that matched a source glob is followed: only when it
 * resolves to a regular file inside one of the allowed folders (by default
 * the source folder itself, resolved through symlinks too). Either way a
 * warning is logged, so a link is never skipped silently.
 */
async function followLink(link: string, allowed: readonly string[]): Promise<boolean> {
  const log = getLogger(["sluice", "extract"]);
  let target: string;
  let isFile = false;
  try {
    target = await Deno.realPath(link);
    isFile = (await Deno.stat(target)).isFile;
  } catch (e) {
    log.warn("symlink skipped: its target cannot be read", {
      event: "symlink_skipped",
      file: link,
      reason: (e as Error).message,
    });
    return false;
  }
  const roots: string[] = [];
  for (const a of allowed) {
    roots.push(a);
    try {
      roots.push(await Deno.realPath(a));
    } catch { /* a folder that does not exist allows nothing more */ }
  }
  if (!isFile || !roots.some((r) => inside(r, target))) {
    log.warn("symlink skipped: it points outside the source folder", {
      event: "symlink_skipped",
      file: link,
      target,
      reason: isFile ? "outside the allowed folders" : "not a regular file",
    });
    return false;
  }
  log.warn("symlink followed: its target is inside the source folder", {
    event: "symlink_followed",
    file: link,
    target,
  });
  return true;
}

/**
 * Lists the files under `dir` whose path relative to `dir` matches `glob`,
 * sorted by path. Hidden files (starting with `.`) are skipped. A matching
 * symlink is followed only when its target is a file inside `allowed`
 * (default: `dir`), with a warning either way.
 */
export async function listFiles(
  dir: string,
  glob: string,
  options: { allowed?: readonly string[] } = {},
): Promise<string[]> {
  const re = globToRegExp(glob);
  const recursive = glob.includes("/") || glob.includes("**");
  const out: string[] = [];
  for await (const { path: file, link } of walk(dir, recursive)) {
    const rel = relative(dir, file).split(sep).join("/");
    if (rel.split("/").some((p) => p.startsWith("."))) continue;
    if (!re.test(rel)) continue;
    if (link && !await followLink(file, options.allowed ?? [dir])) continue;
    out.push(file);
  }
  return out.sort();
}
