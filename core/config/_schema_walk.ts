/**
 * Questions about the zod schema at a key path (which keys an object takes,
 * whether a field is a name), asked while turning issues into messages.
 *
 * @module
 */
import { PipelineSchema } from "./schema.ts";
import { IDENTIFIER_PATTERN } from "../quote.ts";
import { isRecord } from "./_yaml_positions.ts";

interface ZodSchemaNode {
  def?: {
    type?: string;
    shape?: Record<string, ZodSchemaNode>;
    valueType?: ZodSchemaNode;
    element?: ZodSchemaNode;
    innerType?: ZodSchemaNode;
    in?: ZodSchemaNode;
    getter?: () => ZodSchemaNode;
  };
}

const WRAPPERS = new Set(["optional", "nullable", "default", "prefault", "readonly", "catch"]);

function unwrapSchema(schema: ZodSchemaNode | undefined): ZodSchemaNode | undefined {
  let s = schema;
  for (let i = 0; i < 32 && s?.def; i++) {
    const def = s.def;
    if (WRAPPERS.has(def.type ?? "") || def.type === "nonoptional") s = def.innerType;
    else if (def.type === "pipe") s = def.in;
    else if (def.type === "lazy" && def.getter) s = def.getter();
    else break;
  }
  return s;
}

/** The zod schema of the value at `path`, walking objects, records and arrays. */
function schemaAt(path: readonly PropertyKey[]): ZodSchemaNode | undefined {
  let s: ZodSchemaNode | undefined = PipelineSchema as unknown as ZodSchemaNode;
  for (const segment of path) {
    s = unwrapSchema(s);
    const def = s?.def;
    if (def?.type === "object") s = def.shape?.[String(segment)];
    else if (def?.type === "record") s = def.valueType;
    else if (def?.type === "array") s = def.element;
    else return undefined;
  }
  return unwrapSchema(s);
}

/** The declared schema of the field at `path`, before unwrapping. */
function fieldSchema(path: readonly PropertyKey[]): ZodSchemaNode | undefined {
  if (path.length === 0) return undefined;
  const def = schemaAt(path.slice(0, -1))?.def;
  const last = path[path.length - 1];
  if (def?.type === "object") return def.shape?.[String(last)];
  if (def?.type === "record") return def.valueType;
  if (def?.type === "array") return def.element;
  return undefined;
}

/** True when the schema at `path` is an identifier (a name, not a value). */
export function isNameField(path: readonly PropertyKey[]): boolean {
  let node = fieldSchema(path) as { def?: Record<string, unknown> } | undefined;
  for (let i = 0; i < 5 && node?.def?.innerType !== undefined; i++) {
    node = node.def.innerType as { def?: Record<string, unknown> };
  }
  const checks = (node?.def?.checks ?? []) as { _zod?: { def?: { pattern?: RegExp } } }[];
  return node?.def?.type === "string" &&
    checks.some((c) => c._zod?.def?.pattern?.source === IDENTIFIER_PATTERN.source);
}

/** Keys an object at `path` accepts, in schema order; empty when not an object. */
export function validKeys(path: readonly PropertyKey[]): string[] {
  const def = schemaAt(path)?.def;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

/**
 * Removes `key:` entries left empty (e.g. every line under `engine:` commented
 * out) where the key is optional or has a default, so they read as absent.
 */
export function dropEmptyOptionals(value: unknown, path: PropertyKey[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => dropEmptyOptionals(item, [...path, i]));
  } else if (isRecord(value)) {
    for (const [key, item] of Object.entries(value)) {
      const keyPath = [...path, key];
      if (item === null) {
        const type = fieldSchema(keyPath)?.def?.type;
        if (type === "optional" || type === "default" || type === "prefault") delete value[key];
      } else {
        dropEmptyOptionals(item, keyPath);
      }
    }
  }
}
