/**
 * File discovery and fingerprinting for extract: glob matching, stat, and a
 * streamed SHA-256 of file contents.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join, relative, sep } from "node:path";
import { SourceError } from "../core/errors.ts";

/**
 * A file's identity: where it is, how big, when changed, what it holds.
 *
 * @example
 * ```ts
 * import type { FileFingerprint } from "./_files.ts";
 * const file: FileFingerprint = {
 *   path: "/srv/landing/orders_2026-01-01.csv",
 *   size: 1024,
 *   mtimeMs: Date.UTC(2026, 0, 1),
 *   sha256: "", // filled in once hashed
 * };
 * ```
 */
export interface FileFingerprint {
  /** Absolute path. */
  path: string;
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
}

/** Turns a glob (`*`, `?`, `**`, `[abc]`, `{a,b}`) into an anchored RegExp. */
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
    } else if (c === "{") {
      inGroup = true;
      re += "(?:";
    } else if (c === "}" && inGroup) {
      inGroup = false;
      re += ")";
    } else if (c === "," && inGroup) re += "|";
    else re += c.replace(/[.+^$()|\\/]/g, "\\$&");
    i++;
  }
  return new RegExp(`^${re}$`);
}

async function* walk(dir: string, recursive: boolean): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const full = join(dir, entry.name);
    if (entry.isDirectory && recursive) yield* walk(full, recursive);
    else if (entry.isFile) yield full;
  }
}

/**
 * Lists the files under `dir` whose path relative to `dir` matches `glob`,
 * sorted by path. Hidden files (starting with `.`) are skipped.
 */
export async function listFiles(dir: string, glob: string): Promise<string[]> {
  const re = globToRegExp(glob);
  const recursive = glob.includes("/") || glob.includes("**");
  const out: string[] = [];
  for await (const file of walk(dir, recursive)) {
    const rel = relative(dir, file).split(sep).join("/");
    if (rel.split("/").some((p) => p.startsWith("."))) continue;
    if (re.test(rel)) out.push(file);
  }
  return out.sort();
}

/** Stats a file (size and mtime) without hashing it. */
export async function statFile(path: string): Promise<FileFingerprint> {
  const info = await Deno.stat(path);
  return { path, size: info.size, mtimeMs: info.mtime?.getTime() ?? 0, sha256: "" };
}

/** Files up to this size are read whole and hashed in one native call. */
const WHOLE_FILE_HASH_BYTES = 64 * 1024 * 1024;

/**
 * Returns the SHA-256 of a file as hex, with `node:crypto`: files up to
 * 64 MiB are read whole and hashed in one call (about 5 ms for 8 MB), larger
 * ones are streamed in 1 MiB chunks. (WebCrypto's `digest` is no faster and
 * its first call costs 30 to 40 ms.)
 */
export async function hashFile(path: string): Promise<string> {
  using file = await Deno.open(path, { read: true });
  if ((await file.stat()).size <= WHOLE_FILE_HASH_BYTES) {
    return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
  }
  const hash = createHash("sha256");
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/**
 * Starts hashing `files` one after another in the background, so the hashes
 * are computed while other work (bronze's landing) waits on DuckDB. Each
 * file's `hashing` promise settles with its digest; {@linkcode fileSha256}
 * awaits it.
 */
export function hashInBackground(files: readonly FileFingerprint[]): void {
  let chain: Promise<unknown> = Promise.resolve();
  for (const fp of files) {
    const hashing = chain.then(() => hashFile(fp.path));
    // The next hash waits for this one; a failure surfaces where this hash is
    // awaited (`fileSha256`), not as an unhandled rejection.
    chain = hashing.catch(() => {});
    fp.hashing = hashing;
  }
}

/** The file's SHA-256, waiting for a background hash if one is running. */
export async function fileSha256(fp: FileFingerprint): Promise<string> {
  if (fp.sha256 !== "") return fp.sha256;
  try {
    fp.sha256 = fp.hashing ? await fp.hashing : await hashFile(fp.path);
  } catch (e) {
    throw new SourceError(`Cannot hash file ${fp.path}: ${(e as Error).message}`, {
      cause: e,
      context: { file: fp.path },
    });
  }
  return fp.sha256;
}
