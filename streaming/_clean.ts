/**
 * `clean_source`: after the commit that finished a file, move it to the
 * archive folder (keeping its path below the landing folder) or delete it,
 * together with its marker file. Files finished but not yet cleaned (a
 * crash between the commit and the move) are cleaned by the next run; the
 * steps are idempotent.
 *
 * A file is moved or deleted only after the commit that finished it is
 * CHECKPOINTed into the database file (not just in the WAL), so a damaged or
 * truncated WAL can never lose a commit whose source file is already gone.
 * On start, {@linkcode reconcileArchive} moves back every archived file the
 * checkpoint does not hold as done, so it is read again.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { dirname, join, relative, sep } from "node:path";
import type { StreamingConfig } from "../core/config/mod.ts";
import { pathExists } from "../core/fs.ts";
import type { Engine } from "../core/engine.ts";

async function move(from: string, to: string): Promise<void> {
  await Deno.mkdir(dirname(to), { recursive: true });
  try {
    await Deno.rename(from, to);
  } catch (e) {
    // Another file system: copy, then remove the original.
    if (!(e instanceof Error) || !/cross-device|EXDEV/i.test(e.message)) throw e;
    await Deno.copyFile(from, `${to}.partial`);
    await Deno.rename(`${to}.partial`, to);
    await Deno.remove(from);
  }
}

/**
 * Applies `clean_source` to every finished, not yet cleaned file of the
 * stream, and marks each cleaned. Returns how many files were cleaned.
 *
 * @example
 * ```ts ignore
 * await cleanFinishedFiles(ctx.db, config.streaming, { stream: "events_v1", now: new Date() });
 * ```
 */
export async function cleanFinishedFiles(
  db: Engine,
  s: StreamingConfig,
  options: { stream: string; now: Date },
): Promise<number> {
  if (s.clean_source === "off") return 0;
  const rows = await db.all<{ path: string; last_batch: number } & Record<string, unknown>>(
    `SELECT path, last_batch FROM _sluice.stream_files
     WHERE stream = $stream AND status = 'done' AND cleaned_at IS NULL ORDER BY path`,
    { stream: options.stream },
  );
  const cleaned: string[] = [];
  // The commits that finished these files go into the database file before
  // any file is touched: a lost WAL must not lose rows whose file is gone.
  if (rows.length > 0) await db.checkpoint();
  for (const { path, last_batch } of rows) {
    const marker = s.source.marker_suffix !== undefined ? path + s.source.marker_suffix : undefined;
    if (s.clean_source === "delete") {
      for (const p of [path, marker]) {
        if (p === undefined) continue;
        try {
          await Deno.remove(p);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
    } else {
      const archive = s.archive_path!;
      let dest = join(archive, relative(s.source.path, path));
      if (await pathExists(path)) {
        // Never overwrite an archived file of the same name from an earlier batch.
        if (await pathExists(dest)) dest = `${dest}.batch${last_batch}`;
        await move(path, dest);
      }
      if (marker !== undefined && await pathExists(marker)) {
        await move(marker, dest + s.source.marker_suffix);
      }
    }
    cleaned.push(path);
  }
  for (let i = 0; i < cleaned.length; i += 500) {
    const part = cleaned.slice(i, i + 500);
    await db.run(
      `UPDATE _sluice.stream_files SET cleaned_at = $now::TIMESTAMPTZ
       WHERE stream = $stream AND list_contains(from_json($paths, '["VARCHAR"]'), path)`,
      { stream: options.stream, now: options.now.toISOString(), paths: JSON.stringify(part) },
    );
  }
  return cleaned.length;
}

async function* walkFiles(dir: string): AsyncGenerator<string> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  for (const entry of entries) {
    const full = join(dir, entry.name);
    if (entry.isDirectory) yield* walkFiles(full);
    else if (entry.isFile) yield full;
  }
}

/**
 * Reconciles the archive folder against the checkpoint (`clean_source:
 * archive`): an archived file whose landing path the checkpoint does not
 * hold as `done` (its commit was lost, e.g. with a damaged WAL or a database
 * restored from a backup) is moved back to the landing folder so it is read
 * again, with its marker. Returns the files moved back.
 *
 * @example
 * ```ts ignore
 * await reconcileArchive(ctx.db, config.streaming, { stream: "events_v1" });
 * ```
 */
export async function reconcileArchive(
  db: Engine,
  s: StreamingConfig,
  options: { stream: string; runId?: string; pipeline?: string },
): Promise<string[]> {
  if (s.clean_source !== "archive" || s.archive_path === undefined) return [];
  const archive = s.archive_path;
  const marker = s.source.marker_suffix;
  const done = new Set(
    (await db.all<{ path: string } & Record<string, unknown>>(
      `SELECT path FROM _sluice.stream_files WHERE stream = $stream AND status = 'done'`,
      { stream: options.stream },
    )).map((r) => r.path),
  );
  const restored: string[] = [];
  for await (const file of walkFiles(archive)) {
    if (marker !== undefined && file.endsWith(marker)) continue;
    if (/\.batch\d+$/.test(file) || file.endsWith(".partial")) continue;
    const rel = relative(archive, file);
    if (rel.startsWith(`..${sep}`)) continue;
    const original = join(s.source.path, rel);
    if (done.has(original) || await pathExists(original)) continue;
    await move(file, original);
    if (marker !== undefined && await pathExists(file + marker)) {
      await move(file + marker, original + marker);
    }
    restored.push(original);
  }
  if (restored.length > 0) {
    getLogger(["sluice", "stream"]).warn(
      "archived files the checkpoint does not hold as committed were moved back to be read again",
      {
        run_id: options.runId,
        pipeline: options.pipeline,
        stage: "stream",
        event: "archive_reconciled",
        files: restored.length,
        paths: restored.slice(0, 20),
      },
    );
  }
  return restored;
}
