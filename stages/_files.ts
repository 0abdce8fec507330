/**
 * File fingerprinting for extract: stat, sniffing and a streamed SHA-256 of
 * file contents. Listing and globs live in `core/files.ts` (streaming uses
 * them too) and are re-exported here.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { relative, sep } from "node:path";
import { SourceError } from "../core/errors.ts";

export { type FileFingerprint, globToRegExp, listFiles } from "../core/files.ts";
import type { FileFingerprint } from "../core/files.ts";

/** The path of `file` relative to `dir`, with `/` separators. */
export function relativePath(dir: string, file: string): string {
  return relative(dir, file).split(sep).join("/");
}

/** Stats a file (size and mtime) without hashing it; `root` sets its `rel`. */
export async function statFile(
  path: string,
  options: { root?: string } = {},
): Promise<FileFingerprint> {
  const info = await Deno.stat(path);
  const rel = options.root === undefined ? path : relativePath(options.root, path);
  return { path, rel, size: info.size, mtimeMs: info.mtime?.getTime() ?? 0, sha256: "" };
}

/** What a file's first and last bytes say it is. */
export type FileKind = "gzip" | "parquet" | "zstd" | "json_array" | "text" | "empty";

/**
 * Looks at a file's first bytes (and last four, for Parquet's footer
 * magic) to tell gzip, zstd, Parquet and a JSON array from text, so a file
 * of the wrong kind fails with one clear line instead of a reader error.
 * `parquetFooter` is false when a file starting with `PAR1` lacks the
 * footer (truncated).
 */
export async function sniffFile(
  path: string,
  content?: Uint8Array,
): Promise<{ kind: FileKind; parquetFooter: boolean }> {
  if (content) {
    const tail = content.length >= 12 ? content.subarray(content.length - 4) : undefined;
    return kindOf(content.subarray(0, 4096), tail);
  }
  using file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  const head = new Uint8Array(Math.min(size, 4096));
  let got = 0;
  while (got < head.length) {
    const n = await file.read(head.subarray(got));
    if (n === null) break;
    got += n;
  }
  const b = head.subarray(0, got);
  let tail: Uint8Array | undefined;
  if (isParquetMagic(b) && size >= 12) {
    const t4 = new Uint8Array(4);
    await file.seek(size - 4, Deno.SeekMode.Start);
    let t = 0;
    while (t < 4) {
      const n = await file.read(t4.subarray(t));
      if (n === null) break;
      t += n;
    }
    tail = t4.subarray(0, t);
  }
  return kindOf(b, tail);
}

function isParquetMagic(b: Uint8Array): boolean {
  return b[0] === 0x50 && b[1] === 0x41 && b[2] === 0x52 && b[3] === 0x31;
}

/** The kind a file's first bytes (`b`) and, for a file of 12 bytes or more, last four say. */
function kindOf(b: Uint8Array, tail: Uint8Array | undefined): {
  kind: FileKind;
  parquetFooter: boolean;
} {
  if (b.length === 0) return { kind: "empty", parquetFooter: false };
  if (b[0] === 0x1f && b[1] === 0x8b) return { kind: "gzip", parquetFooter: false };
  if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) {
    return { kind: "zstd", parquetFooter: false };
  }
  if (isParquetMagic(b)) {
    const footer = tail !== undefined && tail.length === 4 &&
      new TextDecoder().decode(tail) === "PAR1";
    return { kind: "parquet", parquetFooter: footer };
  }
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  if (b[i] === 0x5b) return { kind: "json_array", parquetFooter: false };
  return { kind: "text", parquetFooter: false };
}

/** Files up to this size are read whole, once, by {@linkcode readSmallFiles}. */
export const SMALL_FILE_BYTES = 256 * 1024;

/**
 * Reads the small files of a landing whole, once, 32 at a time and up to
 * `budgetBytes` in all (default 64 MiB), into each fingerprint's `content`:
 * their kind check, CSV header and hash then need no read of their own (for
 * 2,000 files of 2.5 KB: 30 ms, against 0.3 to 0.6 s for a sniff, a header
 * read and a hash each). A file whose size differs from its fingerprint's,
 * or that cannot be read, gets no content and is read as before, where an
 * error is reported.
 */
export async function readSmallFiles(
  files: readonly FileFingerprint[],
  options: { budgetBytes?: number } = {},
): Promise<void> {
  let budget = options.budgetBytes ?? 64 * 1024 * 1024;
  const todo = files.filter((fp) => {
    if (fp.content || fp.size > SMALL_FILE_BYTES || fp.size > budget) return false;
    budget -= fp.size;
    return true;
  });
  let next = 0;
  const reader = async () => {
    while (next < todo.length) {
      const fp = todo[next++];
      try {
        const bytes = await Deno.readFile(fp.path);
        if (bytes.length === fp.size) fp.content = bytes;
      } catch { /* no content: the usual reads report it */ }
    }
  };
  await Promise.all(Array.from({ length: Math.min(32, todo.length) }, reader));
}

/** Drops the contents {@linkcode readSmallFiles} kept. */
export function forgetContents(files: readonly FileFingerprint[]): void {
  for (const fp of files) delete fp.content;
}

/** The SHA-256 of bytes as hex. */
function hashBytes(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
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
    // A file bronze read whole by then is hashed from those bytes.
    const hashing = chain.then(() => fp.content ? hashBytes(fp.content) : hashFile(fp.path));
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
    fp.sha256 = fp.hashing
      ? await fp.hashing
      : fp.content
      ? hashBytes(fp.content)
      : await hashFile(fp.path);
  } catch (e) {
    throw new SourceError(`Cannot hash file ${fp.path}: ${(e as Error).message}`, {
      cause: e,
      context: { file: fp.path },
    });
  }
  return fp.sha256;
}
