/**
 * The value of one claims key: who holds each stream sequence of a block of
 * {@linkcode CLAIM_BLOCK} sequences, as sorted runs of consecutive sequences
 * held by one worker. A key only ever grows (a claim is never taken back or
 * moved), and it is written with compare-and-set on its revision, so exactly
 * one worker holds each sequence. A batch of first deliveries touches one or
 * two keys, which costs one read and one write each instead of one write per
 * message.
 *
 * @module
 */
import { SourceError } from "../../core/errors.ts";

/** Stream sequences per claims key (`<stream>.b<seq / CLAIM_BLOCK>`). */
export const CLAIM_BLOCK = 4096;

/**
 * One claims key's value: `w` the workers, `r` the runs `[first, last,
 * worker index]`, sorted by `first`, never overlapping.
 */
export interface ClaimBlock {
  /** Format version. */
  v: 1;
  /** Worker ids, referred to by index in `r`. */
  w: string[];
  /** Runs of consecutive sequences held by one worker: `[first, last, worker index]`. */
  r: [number, number, number][];
}

/** The key (below the bucket) of the block that holds `seq`. */
export function claimKey(stream: string, seq: number): string {
  return `${stream}.b${Math.floor(seq / CLAIM_BLOCK)}`;
}

/** An empty block. */
export function emptyClaimBlock(): ClaimBlock {
  return { v: 1, w: [], r: [] };
}

/** Reads a block written by {@linkcode withClaims}; `where` names the key in errors. */
export function parseClaimBlock(text: string, where: string): ClaimBlock {
  let b: ClaimBlock;
  try {
    b = JSON.parse(text);
  } catch {
    throw new SourceError(`Cannot read claims key "${where}": it is not JSON`);
  }
  const ok = b !== null && typeof b === "object" && b.v === 1 && Array.isArray(b.w) &&
    Array.isArray(b.r) &&
    b.r.every((x, i) =>
      Array.isArray(x) && x.length === 3 && Number.isSafeInteger(x[0]) && x[0] <= x[1] &&
      typeof b.w[x[2]] === "string" && (i === 0 || b.r[i - 1][1] < x[0])
    );
  if (!ok) {
    throw new SourceError(
      `Cannot read claims key "${where}": expected {"v":1,"w":[workers],"r":[[first,last,` +
        "worker],...]} with sorted runs (written by another Sluice version?)",
    );
  }
  return b;
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
 * `worker`; adjacent runs of one worker are merged.
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
  return { v: 1, w, r: merged };
}
