/**
 * Claims of committed stream sequences, grouped by block of
 * {@linkcode CLAIM_BLOCK} sequences. A block's claims are an append-only log
 * of entries, keys `<stream>.b<block>.<n>` for n = 0, 1, 2..., each written
 * once (a create: expected last subject sequence 0) and never changed. A
 * worker reads the entries it has not seen yet, then creates the next one
 * with the sequences nobody holds; a create that loses the race reads again.
 * Entry n is therefore disjoint from entries 0..n-1, and exactly one worker
 * holds each sequence. (Creates are used, not updates with a revision:
 * nats-server 2.9 checks an expected non-zero revision only before the RAFT
 * proposal, so two concurrent updates can both succeed, nats-io/nats-server
 * #4320; a create is checked again when the entry is applied.) A batch of
 * first deliveries touches one or two blocks, which costs one read and one
 * create each instead of one create per message.
 *
 * @module
 */
import { SourceError } from "../../core/errors.ts";

/** Stream sequences per block of claims (`<stream>.b<seq / CLAIM_BLOCK>.<n>`). */
export const CLAIM_BLOCK = 4096;

/**
 * The claims of one block as read so far: `w` the workers, `r` the runs
 * `[first, last, worker index]`, sorted by `first`, never overlapping.
 */
export interface ClaimBlock {
  /** Worker ids, referred to by index in `r`. */
  w: string[];
  /** Runs of consecutive sequences held by one worker: `[first, last, worker index]`. */
  r: [number, number, number][];
}

/** One entry of a block's log: the sequences one worker claimed, as runs. */
export interface ClaimEntry {
  /** Format version. */
  v: 1;
  /** The worker. */
  w: string;
  /** Runs of consecutive sequences, `[first, last]`, sorted. */
  r: [number, number][];
}

/** The block (below the bucket and stream) that holds `seq`: `<stream>.b<block>`. */
export function claimKey(stream: string, seq: number): string {
  return `${stream}.b${Math.floor(seq / CLAIM_BLOCK)}`;
}

/** An empty block. */
export function emptyClaimBlock(): ClaimBlock {
  return { w: [], r: [] };
}

/** The entry that claims `seqs` for `worker`. */
export function claimEntry(seqs: number[], worker: string): ClaimEntry {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const r: [number, number][] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    r.push([sorted[i], sorted[j]]);
    i = j + 1;
  }
  return { v: 1, w: worker, r };
}

/** The sequences of an entry. */
export function entrySeqs(e: ClaimEntry): number[] {
  const out: number[] = [];
  for (const [first, last] of e.r) for (let s = first; s <= last; s++) out.push(s);
  return out;
}

/** Reads an entry written by {@linkcode claimEntry}; `where` names the key in errors. */
export function parseClaimEntry(text: string, where: string): ClaimEntry {
  let e: ClaimEntry;
  try {
    e = JSON.parse(text);
  } catch {
    throw new SourceError(`Cannot read claims key "${where}": it is not JSON`);
  }
  const ok = e !== null && typeof e === "object" && e.v === 1 && typeof e.w === "string" &&
    Array.isArray(e.r) &&
    e.r.every((x, i) =>
      Array.isArray(x) && x.length === 2 && Number.isSafeInteger(x[0]) &&
      Number.isSafeInteger(x[1]) && x[0] <= x[1] && (i === 0 || e.r[i - 1][1] < x[0])
    );
  if (!ok) {
    throw new SourceError(
      `Cannot read claims key "${where}": expected {"v":1,"w":"<worker>","r":[[first,last],...]} ` +
        "with sorted runs (written by another Sluice version?)",
    );
  }
  return e;
}

/** The worker holding `seq` in `block`, or undefined when nobody claimed it. */
export function holderOf(block: ClaimBlock, seq: number): string | undefined {
  let lo = 0;
  let hi = block.r.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [first, last, w] = block.r[mid];
    if (seq < first) hi = mid - 1;
    else if (seq > last) lo = mid + 1;
    else return block.w[w];
  }
  return undefined;
}

/**
 * A new block: `block` plus `seqs` (none of them held yet) claimed by
 * `worker`; adjacent runs of one worker are merged. A sequence held already
 * is an error (entries of one block never overlap).
 */
export function withClaims(block: ClaimBlock, seqs: number[], worker: string): ClaimBlock {
  const w = [...block.w];
  let wi = w.indexOf(worker);
  if (wi < 0) wi = w.push(worker) - 1;
  const runs: [number, number, number][] = block.r.map((x) => [x[0], x[1], x[2]]);
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    runs.push([sorted[i], sorted[j], wi]);
    i = j + 1;
  }
  runs.sort((a, b) => a[0] - b[0]);
  const merged: [number, number, number][] = [];
  for (const run of runs) {
    const prev = merged.at(-1);
    if (prev && prev[1] >= run[0]) {
      throw new SourceError(`Cannot claim sequence ${run[0]}: it is held already`);
    }
    if (prev && prev[2] === run[2] && prev[1] + 1 === run[0]) prev[1] = run[1];
    else merged.push(run);
  }
  return { w, r: merged };
}
