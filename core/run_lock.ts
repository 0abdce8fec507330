/**
 * The run lock: at most one writing run of a pipeline at a time, without a
 * daemon. The lock is `<database>.lock`, beside the database file, held
 * with an exclusive `flock(2)` (`Deno.FsFile.tryLock`), so it is taken
 * atomically, works while DuckDB holds (or is busy in) the database, and
 * is freed by the kernel when its holder dies, even by `kill -9`.
 *
 * The holder writes who it is into the file (pid, host, boot id, process
 * start, start time, run id, command) and empties it when it releases. A
 * non-empty file found by the next holder therefore names a run that was
 * killed: its lock is taken over and the caller logs a warning. The file
 * itself is never deleted (deleting a locked file lets two processes lock
 * two different files of the same name).
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { errorMessage, OverlapError, SluiceError } from "./errors.ts";

/** Who holds (or held) a run lock: the JSON inside the lock file. */
export interface LockHolder {
  /** Process id. */
  pid: number;
  /** Host name (`unknown` without `--allow-sys=hostname`). */
  host: string;
  /** `/proc/sys/kernel/random/boot_id` of the host, or null where there is none. */
  boot_id: string | null;
  /** Start of the process in clock ticks since boot (`/proc/<pid>/stat`), or null. */
  proc_start: string | null;
  /** When the run took the lock, ISO 8601 UTC. */
  started_at: string;
  /** The run's id. */
  run_id: string;
  /** The command (`run`, `stream`...). */
  command: string;
}

/** What to do when another run holds the lock. */
export type OverlapPolicy = "fail" | "skip" | "wait";

/** Options of {@linkcode acquireRunLock}. */
export interface RunLockOptions {
  /** `fail` (throw {@linkcode OverlapError}), `skip` (return unacquired) or `wait`. */
  policy: "fail" | "skip" | "wait";
  /** With `wait`: how long to wait before throwing {@linkcode OverlapError}. */
  waitTimeoutMs?: number;
  /** The run taking the lock. */
  runId: string;
  /** Its command. */
  command: string;
  /** Time source for `started_at`. */
  clock: Clock;
  /** Waits between two looks while waiting; default a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Milliseconds between two looks while waiting. Default 250. */
  pollMs?: number;
  /** Called once when the lock is busy and the run starts waiting. */
  onWait?: (holder: LockHolder | undefined) => void;
  /** Stops waiting when aborted: throws the signal's reason. */
  signal?: AbortSignal;
}

/** A lock this process holds. */
export interface RunLock {
  /** The lock file. */
  readonly path: string;
  /** What this process wrote into it. */
  readonly holder: LockHolder;
  /** Empties the file and releases the lock (idempotent). */
  release(): void;
}

/** A killed run's lock that was taken over. */
export interface StaleLock {
  /** What the killed holder had written. */
  holder: LockHolder;
  /** Why it is known to be dead, e.g. `pid 4242 is gone`. */
  reason: string;
}

/** What {@linkcode acquireRunLock} returns. */
export type RunLockResult =
  | { acquired: true; lock: RunLock; stale?: StaleLock }
  | { acquired: false; holder: LockHolder | undefined };

/**
 * The lock file of a database: `<database>.lock`.
 *
 * @example
 * ```ts
 * import { lockPathFor } from "./run_lock.ts";
 * lockPathFor("/data/lake/sluice.duckdb"); // "/data/lake/sluice.duckdb.lock"
 * ```
 */
export function lockPathFor(database: string): string {
  return `${database}.lock`;
}

function readText(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return null;
  }
}

/**
 * This host's boot: `/proc/sys/kernel/random/boot_id` where it can be read
 * (Deno reads `/proc` only with every permission), else the boot time from
 * `Deno.osUptime()` (`--allow-sys=osUptime`) as `boot@<epoch seconds>`, else null.
 */
export function bootId(): string | null {
  const id = readText("/proc/sys/kernel/random/boot_id");
  if (id !== null) return id;
  try {
    return `boot@${Math.round(Date.now() / 1000 - Deno.osUptime())}`;
  } catch {
    return null;
  }
}

/** True when two boot ids name different boots (boot times may differ by a few seconds). */
function otherBoot(a: string, b: string): boolean {
  const ta = /^boot@(\d+)$/.exec(a)?.[1];
  const tb = /^boot@(\d+)$/.exec(b)?.[1];
  if (ta !== undefined && tb !== undefined) return Math.abs(Number(ta) - Number(tb)) > 60;
  return a !== b;
}

/** Start time of a process in clock ticks since boot, or null when it is gone. */
function procStart(pid: number | "self"): string | null {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // Field 22 (starttime); the command name (field 2) may hold spaces, so count from its ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? null;
}

function hostName(): string {
  try {
    return Deno.hostname();
  } catch {
    return readText("/etc/hostname") ?? "unknown";
  }
}

function parseHolder(text: string): LockHolder | undefined {
  if (text.trim() === "") return undefined;
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid !== "number") return undefined;
    return {
      pid: h.pid,
      host: String(h.host ?? "unknown"),
      boot_id: h.boot_id ?? null,
      proc_start: h.proc_start ?? null,
      started_at: String(h.started_at ?? ""),
      run_id: String(h.run_id ?? ""),
      command: String(h.command ?? ""),
    };
  } catch {
    return undefined;
  }
}

/**
 * Reads who holds a lock file, or undefined when it is empty (free, or its
 * holder is between taking the lock and writing its name).
 *
 * @example
 * ```ts ignore
 * const holder = await readLockHolder("/data/lake/sluice.duckdb.lock");
 * ```
 */
export async function readLockHolder(
  path: string,
  options: { sleep?: (ms: number) => Promise<void> } = {},
): Promise<LockHolder | undefined> {
  const sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  // A holder writes its name right after it takes the lock: look a few times.
  for (let i = 0; i < 10; i++) {
    const holder = parseHolder(readText(path) ?? "");
    if (holder) return holder;
    await sleep(20);
  }
  return undefined;
}

/**
 * Says whether the run named in a lock file is gone, and why. Only a run of
 * this host can be judged: a holder on another host (a shared folder) is
 * never taken for dead.
 *
 * @example
 * ```ts ignore
 * staleReason(holder); // "pid 4242 is gone" | undefined
 * ```
 */
export function staleReason(holder: LockHolder): string | undefined {
  const boot = bootId();
  if (holder.host !== hostName()) return undefined;
  if (holder.boot_id !== null && boot !== null && otherBoot(holder.boot_id, boot)) {
    return `it was taken before the last reboot (boot ${holder.boot_id})`;
  }
  // The kernel freed the flock: the holder ended without releasing it.
  const start = procStart(holder.pid);
  if (start !== null && holder.proc_start !== null && start === holder.proc_start) {
    return `pid ${holder.pid} no longer holds it`;
  }
  return `pid ${holder.pid} ended without releasing it`;
}

/**
 * Describes a holder for an error line: `pid 4242 on host db1 (run 0190…,
 * command run) since 2026-01-01T03:00:00.000Z`.
 *
 * @example
 * ```ts ignore
 * describeHolder(holder);
 * ```
 */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return "another process (it has not written its name yet)";
  return `pid ${holder.pid} on host ${holder.host} (run ${holder.run_id}, command ${holder.command}) since ${holder.started_at}`;
}

class HeldLock implements RunLock {
  #file: Deno.FsFile | undefined;
  readonly path: string;
  readonly holder: LockHolder;
  constructor(path: string, file: Deno.FsFile, holder: LockHolder) {
    this.path = path;
    this.#file = file;
    this.holder = holder;
  }
  release(): void {
    const file = this.#file;
    if (!file) return;
    this.#file = undefined;
    try {
      file.truncateSync(0);
    } catch { /* the lock is still released below */ }
    try {
      file.unlockSync();
    } finally {
      file.close();
    }
  }
}

/**
 * Takes the run lock of a database, as the overlap policy says when another
 * run holds it: `fail` throws {@linkcode OverlapError} naming the holder's
 * pid, host and start; `skip` returns `{ acquired: false, holder }`; `wait`
 * looks again every `pollMs` for up to `waitTimeoutMs`, then throws
 * {@linkcode OverlapError}. A lock left by a killed run is taken over and
 * returned as `stale`, for the caller to log.
 *
 * @example
 * ```ts ignore
 * const r = await acquireRunLock("/data/lake/sluice.duckdb.lock", {
 *   policy: "fail", runId: "0190…", command: "run", clock: systemClock,
 * });
 * if (r.acquired) try { ... } finally { r.lock.release(); }
 * ```
 */
export async function acquireRunLock(
  path: string,
  options: RunLockOptions,
): Promise<RunLockResult> {
  const sleep = options.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)));
  const dir = path.slice(0, path.lastIndexOf("/"));
  let file: Deno.FsFile;
  try {
    if (dir) await Deno.mkdir(dir, { recursive: true });
    file = await Deno.open(path, { read: true, write: true, create: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e;
    const readOnly = /read-only file system|os error 30/i.test(errorMessage(e));
    throw new SluiceError(
      `Cannot take the run lock ${path}: ${
        readOnly ? `the folder ${dir} is read-only` : errorMessage(e)
      }`,
      { cause: e, context: { lock: path } },
    );
  }
  try {
    const waitMs = options.waitTimeoutMs ?? 0;
    const t0 = performance.now();
    let waited = false;
    while (!(await file.tryLock(true))) {
      const holder = await readLockHolder(path, { sleep });
      if (options.policy === "skip") {
        file.close();
        return { acquired: false, holder };
      }
      const elapsed = performance.now() - t0;
      if (options.policy === "fail" || elapsed >= waitMs) {
        const waitedFor = options.policy === "wait" ? ` (waited ${Math.round(elapsed)} ms)` : "";
        throw new OverlapError(
          `Cannot start ${options.command}: the pipeline's lock ${path} is held by ${
            describeHolder(holder)
          }${waitedFor}`,
          { context: { lock: path, holder } },
        );
      }
      if (!waited) options.onWait?.(holder);
      waited = true;
      await sleep(Math.max(1, Math.min(options.pollMs ?? 250, waitMs - elapsed)));
      if (options.signal?.aborted) throw options.signal.reason;
    }
  } catch (e) {
    try {
      file.close();
    } catch { /* closed above */ }
    throw e;
  }
  // The lock is ours. A name left in the file is a run that was killed.
  let previous: LockHolder | undefined;
  try {
    previous = parseHolder(await Deno.readTextFile(path));
  } catch { /* unreadable: nothing to report */ }
  const holder: LockHolder = {
    pid: Deno.pid,
    host: hostName(),
    boot_id: bootId(),
    proc_start: procStart("self"),
    started_at: options.clock.now().toISOString(),
    run_id: options.runId,
    command: options.command,
  };
  const data = new TextEncoder().encode(JSON.stringify(holder) + "\n");
  try {
    await file.truncate(0);
    await file.seek(0, Deno.SeekMode.Start);
    let written = 0;
    while (written < data.length) written += await file.write(data.subarray(written));
  } catch (e) {
    file.unlockSync();
    file.close();
    throw e;
  }
  const lock = new HeldLock(path, file, holder);
  if (!previous) return { acquired: true, lock };
  return {
    acquired: true,
    lock,
    stale: { holder: previous, reason: staleReason(previous) ?? "its holder stopped" },
  };
}
