/**
 * `clean_source`: after the commit that finished a file, move it to the
 * archive folder (keeping its path below the landing folder) or delete it,
 * together with its marker file. Files finished but not yet cleaned (a
 * crash between the commit and the move) are cleaned by the next run; the
 * steps are idempotent.
 *
 * @module
 */
import { dirname, join, relative } from "node:path";
import type { StreamingConfig } from "../core/config_streaming.ts";
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
