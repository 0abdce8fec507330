/**
 * A `deno lint` plugin with one rule, `sluice/max-function-lines`: a function
 * (declaration, expression, arrow, method, accessor, constructor) in `cli/`,
 * `stages/` or `streaming/` spans at most {@linkcode MAX_FUNCTION_LINES}
 * lines, from its first line to its closing brace. It runs on Deno's own
 * parser (the lint plugin API), so braces inside strings, template literals,
 * regular expressions and comments never miscount, and it needs no npm
 * package and no permission. `tests/architecture_test.ts` runs it over those
 * folders with `Deno.lint.runPlugin`.
 *
 * @example
 * ```ts ignore
 * import plugin from "./scripts/function_length_lint.ts";
 * const found = Deno.lint.runPlugin(plugin, "stages/x.ts", "function f() {}\n");
 * // found: [] (a one-line function)
 * ```
 *
 * @module
 */

/** The longest a function in `cli/`, `stages/` or `streaming/` may be, in lines. */
export const MAX_FUNCTION_LINES = 120;

/** The folders the rule applies to (paths relative to the project root). */
export const FUNCTION_LENGTH_FOLDERS: readonly string[] = ["cli", "stages", "streaming"];

function applies(filename: string): boolean {
  const path = filename.replaceAll("\\", "/");
  return FUNCTION_LENGTH_FOLDERS.some((f) => path.includes(`/${f}/`) || path.startsWith(`${f}/`));
}

function keyName(key: Deno.lint.Node | null | undefined): string {
  if (!key) return "<anonymous>";
  if (key.type === "Identifier" || key.type === "PrivateIdentifier") return key.name;
  if (key.type === "Literal") return String(key.value);
  return "<computed>";
}

type FunctionNode =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression;

/** The node whose lines count as the function's (a method counts from its name). */
function measured(node: FunctionNode): { at: Deno.lint.Node; name: string } {
  const parent = node.parent;
  if (node.type === "FunctionDeclaration") return { at: node, name: keyName(node.id) };
  if (parent?.type === "MethodDefinition" || parent?.type === "Property") {
    return { at: parent, name: keyName(parent.key) };
  }
  if (parent?.type === "VariableDeclarator") return { at: node, name: keyName(parent.id) };
  if (parent?.type === "PropertyDefinition") return { at: parent, name: keyName(parent.key) };
  if (node.type === "FunctionExpression") return { at: node, name: keyName(node.id) };
  return { at: node, name: "<anonymous>" };
}

const plugin: Deno.lint.Plugin = {
  name: "sluice",
  rules: {
    "max-function-lines": {
      create(context) {
        if (!applies(context.filename)) return {};
        const text = context.sourceCode.text;
        const check = (node: FunctionNode): void => {
          const { at, name } = measured(node);
          const [start, end] = at.range;
          const lines = text.slice(start, end).split("\n").length;
          if (lines <= MAX_FUNCTION_LINES) return;
          context.report({
            node: at,
            message: `function ${name} is ${lines} lines, more than ${MAX_FUNCTION_LINES}`,
            hint: "Split it into named helpers with one job each.",
          });
        };
        return {
          FunctionDeclaration: check,
          FunctionExpression: check,
          ArrowFunctionExpression: check,
        };
      },
    },
  },
};

export default plugin;
