/**
 * Reads the parsed YAML document of `pipeline.yaml` into a plain value while
 * remembering where each key path came from, so every problem can name its
 * `line:col`.
 *
 * - {@linkcode Positions}: key path → offsets, and offsets → positioned problems.
 * - {@linkcode YamlTreeReader}: the walk from YAML nodes to plain values
 *   (aliases, `!secret`, `${VAR}` via {@linkcode Interpolator}).
 * - {@linkcode yamlProblem}: a YAML parser error as a positioned problem.
 *
 * @module
 */
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type LineCounter,
  Scalar,
  type YAMLError,
} from "yaml";
import type { ConfigProblem } from "../errors.ts";
import { Interpolator, retype, SECRET_TAG } from "./_env_secrets.ts";

/** A key path inside the config: keys and list indexes. */
export type Path = (string | number)[];

/** Offsets of a node in the text: its value and, for map entries, its key. */
export interface Loc {
  value: number;
  key?: number;
}

/** The map key of a path (segments joined by NUL). */
export function pathKey(path: readonly (string | number | PropertyKey)[]): string {
  return path.map(String).join("\u0000");
}

/** A path as shown in problems: `silver.orders.key`. */
export function dotted(path: readonly (string | number | PropertyKey)[]): string {
  return path.map(String).join(".");
}

/** True for a plain object (not null, not a list). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Sets `obj[key]` as an own property, even for `__proto__`. */
export function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Offset where a parsed YAML node starts, if it has a range. */
function startOf(node: unknown): number | undefined {
  return (node as { range?: readonly number[] } | null | undefined)?.range?.[0];
}

/** Where each key path of the file is, and problems positioned from it. */
export class Positions {
  readonly #locs = new Map<string, Loc>();

  constructor(readonly file: string, readonly lineCounter: LineCounter) {}

  /** Records where the value (and key) at `path` starts. */
  set(path: readonly PropertyKey[], loc: Loc): void {
    this.#locs.set(pathKey(path), loc);
  }

  /** The offsets recorded for `path`, if any. */
  get(path: readonly PropertyKey[]): Loc | undefined {
    return this.#locs.get(pathKey(path));
  }

  /** 1-based line and column of the value at a path (or its nearest ancestor). */
  locate(path: readonly PropertyKey[]): { line: number; col: number } {
    return this.lineCounter.linePos(this.offsetOf(path));
  }

  /** Offset of the value at `path`, or of its nearest ancestor that exists. */
  offsetOf(path: readonly PropertyKey[]): number {
    for (let n = path.length; n >= 0; n--) {
      const loc = this.#locs.get(pathKey(path.slice(0, n)));
      if (loc !== undefined) return loc.value;
    }
    return 0;
  }

  /** The path whose key or value starts closest before `offset`. */
  pathNear(offset: number): string {
    let best = "";
    let bestOffset = -1;
    for (const [key, loc] of this.#locs) {
      for (const o of [loc.key, loc.value]) {
        if (o !== undefined && o <= offset && o > bestOffset) {
          best = key;
          bestOffset = o;
        }
      }
    }
    return best.split("\u0000").join(".");
  }

  /** A problem at a text offset. */
  problem(offset: number, path: string, message: string): ConfigProblem {
    const { line, col } = this.lineCounter.linePos(offset);
    return { file: this.file, line, col, path, message };
  }

  /** A problem at the value (or, with `onKey`, the key) of `path`. */
  at(path: readonly PropertyKey[], message: string, onKey = false): ConfigProblem {
    const loc = this.get(path);
    const offset = (onKey ? loc?.key : undefined) ?? loc?.value ?? this.offsetOf(path);
    return this.problem(offset, dotted(path), message);
  }
}

/**
 * Walks the parsed YAML document into a plain value, interpolating scalars
 * and remembering where each path came from.
 */
export class YamlTreeReader {
  readonly problems: ConfigProblem[] = [];
  /** Resolved values of `!secret` scalars. */
  readonly secrets: string[] = [];
  /** Path keys ({@linkcode pathKey}) of the `!secret` scalars. */
  readonly secretPaths = new Set<string>();
  readonly positions: Positions;
  readonly #interpolator: Interpolator;
  readonly #active = new Set<unknown>();

  constructor(
    file: string,
    lineCounter: LineCounter,
    readonly doc: Document.Parsed,
    env: (name: string) => string | undefined,
  ) {
    this.positions = new Positions(file, lineCounter);
    this.#interpolator = new Interpolator(env);
  }

  /** Converts `node` (at `path`) to a plain value. */
  read(node: unknown, path: Path, at: Loc = { value: 0 }): unknown {
    if (node === null || node === undefined) {
      this.positions.set(path, at);
      return null;
    }
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      const here = { ...at, value: node.range?.[0] ?? at.value };
      if (target === undefined) return null; // the parser reports the unknown anchor
      if (this.#active.has(target)) {
        this.#add(here.value, path, `alias *${node.source} refers to a value that contains it`);
        return null;
      }
      this.#active.add(target);
      const value = this.read(target, path, here);
      this.#active.delete(target);
      this.positions.set(path, here);
      return value;
    }
    // An empty value (`key:`) is placed at its key rather than after the colon.
    const empty = isScalar(node) && node.value === null && !node.source;
    const start = empty ? at.value : startOf(node) ?? at.value;
    const loc: Loc = { ...at, value: start };
    this.positions.set(path, loc);
    if (isScalar(node)) return this.#scalar(node, path, loc);
    if (isMap(node)) return this.#map(node.items, path, start);
    if (isSeq(node)) return this.#seq(node.items, path, start);
    return null;
  }

  #map(items: readonly { key: unknown; value: unknown }[], path: Path, start: number): unknown {
    const obj: Record<string, unknown> = {};
    for (const pair of items) {
      const keyNode = pair.key;
      const keyStart = startOf(keyNode) ?? start;
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
        this.#add(keyStart, path, "keys must be plain names");
        continue;
      }
      const key = String(keyNode.value);
      const at = { key: keyStart, value: keyStart };
      setKey(obj, key, this.read(pair.value, [...path, key], at));
    }
    return obj;
  }

  #seq(items: readonly unknown[], path: Path, start: number): unknown {
    return items.map((item, i) => {
      const itemStart = startOf(item) ?? start;
      if (isPair(item)) {
        // `[a: 1]` is a one-entry mapping inside a flow list.
        const key = isScalar(item.key) ? String(item.key.value) : "";
        const obj: Record<string, unknown> = {};
        setKey(obj, key, this.read(item.value, [...path, i, key], { value: itemStart }));
        return obj;
      }
      return this.read(item, [...path, i], { value: itemStart });
    });
  }

  #scalar(node: Scalar, path: Path, loc: Loc): unknown {
    const secret = node.tag === SECRET_TAG.tag;
    if (secret) this.secretPaths.add(pathKey(path));
    if (typeof node.value !== "string") return node.value;
    const text = node.value;
    const value = this.#interpolator.interpolate(
      text,
      (message) => this.#add(loc.value, path, message),
    );
    if (secret) {
      if (value.length > 0 && !this.secrets.includes(value)) this.secrets.push(value);
      return value;
    }
    if (node.type === Scalar.PLAIN && text.includes("${")) return retype(value);
    return value;
  }

  #add(offset: number, path: Path, message: string): void {
    this.problems.push(this.positions.problem(offset, dotted(path), message));
  }
}

/** A problem from the YAML parser, placed at the path nearest before it. */
export function yamlProblem(error: YAMLError, text: string, positions: Positions): ConfigProblem {
  const offset = error.pos[0];
  let message: string;
  const flowIndicator = "{}[],".includes(text[offset] ?? "");
  const afterDollar = text[offset - 1] === "$" || /\$\{[^}\s]*$/.test(text.slice(0, offset));
  if (error.code === "DUPLICATE_KEY") {
    message = "this key appears more than once in the same mapping (keep one)";
  } else if (error.code === "MULTIPLE_DOCS") {
    message = 'the file must hold a single YAML document (remove the extra "---")';
  } else if (error.code === "TAG_RESOLVE_FAILED") {
    message = error.message.includes(SECRET_TAG.tag)
      ? "!secret can only mark a single value, not a mapping or a list"
      : `${error.message.replace(/^Unresolved tag: /, "unknown tag ")} (the only tag is !secret)`;
  } else if (flowIndicator && afterDollar) {
    message = `invalid YAML: ${error.message} (inside { } or [ ], quote a value that ` +
      'uses ${VAR}, e.g. path: "${LANDING}")';
  } else {
    message = `invalid YAML: ${error.message}`;
  }
  return positions.problem(offset, positions.pathNear(offset), message);
}
