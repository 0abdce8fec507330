/**
 * The cost curve of issue 14 as a picture: run time against lake size for a
 * full run, a 1% increment and a no-op run, read from the `incremental`
 * pair's result files, written as one self-contained SVG (log-log axes, no
 * dependencies, no script).
 *
 *   deno run --allow-read --allow-write bench/plot_incremental.ts \
 *     --out docs/incremental_cost.svg bench/results_incremental_100k.json \
 *     bench/results_incremental_1m.json bench/results_incremental_10m.json
 *
 * @module
 */
import { parseArgs } from "node:util";

/**
 * One lake size of the curve, in seconds (medians).
 *
 * @example
 * ```ts ignore
 * const p: CurvePoint = { orders: 1_000_000, full: 3.9, increment: 1.2, noop: 0.27 };
 * ```
 */
export interface CurvePoint {
  /** Orders in the lake. */
  orders: number;
  /** Full run (fresh lake). */
  full: number;
  /** 1% increment on the lake. */
  increment: number;
  /** No-op run. */
  noop: number;
}

/**
 * Reads the curve's points from `deno task bench` result files that hold an
 * `incremental` pair, sorted by lake size.
 *
 * @example
 * ```ts ignore
 * const points = await readCurve(["bench/results_incremental_1m.json"]);
 * ```
 */
export async function readCurve(files: readonly string[]): Promise<CurvePoint[]> {
  const points: CurvePoint[] = [];
  for (const file of files) {
    const inc = JSON.parse(await Deno.readTextFile(file))?.pairs?.incremental;
    if (!inc) throw new Error(`Cannot plot "${file}": it has no incremental pair`);
    points.push({
      orders: Number(inc.scale),
      full: Number(inc.a.median_seconds),
      increment: Number(inc.b.median_seconds),
      noop: Number(inc.noop.median_seconds),
    });
  }
  return points.sort((a, b) => a.orders - b.orders);
}

const SERIES = [
  { key: "full", label: "full run (fresh lake)", color: "#1f77b4" },
  { key: "increment", label: "1% increment", color: "#d62728" },
  { key: "noop", label: "no-op run", color: "#2ca02c" },
] as const;

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** `1000000` → `1M`. */
function short(n: number): string {
  if (n >= 1e6) return `${n / 1e6}M`;
  if (n >= 1e3) return `${n / 1e3}k`;
  return String(n);
}

/**
 * Draws the curve as an SVG document: one line per series on log-log axes,
 * each point labelled with its seconds.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("curve.svg", curveSvg(points, { title: "Sluice, 2026-12-04" }));
 * ```
 */
export function curveSvg(points: readonly CurvePoint[], options: { title?: string } = {}): string {
  if (points.length === 0) throw new Error("Cannot plot: no points");
  const w = 640, h = 400, left = 64, right = 180, top = 40, bottom = 48;
  const xs = points.map((p) => Math.log10(p.orders));
  const values = points.flatMap((p) => SERIES.map((s) => p[s.key])).filter((v) => v > 0);
  const yLo = Math.floor(Math.log10(Math.min(...values)));
  const yHi = Math.ceil(Math.log10(Math.max(...values)));
  const xLo = Math.min(...xs) - 0.15, xHi = Math.max(...xs) + 0.15;
  const X = (v: number) => left + ((Math.log10(v) - xLo) / (xHi - xLo)) * (w - left - right);
  const Y = (v: number) =>
    top + (1 - (Math.log10(v) - yLo) / (yHi - yLo || 1)) * (h - top - bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="#fff"/>`,
    `<text x="${left}" y="22" font-size="14">${
      esc(options.title ?? "Run time against lake size")
    }</text>`,
  ];
  for (let e = yLo; e <= yHi; e++) {
    const y = Y(10 ** e).toFixed(1);
    out.push(
      `<line x1="${left}" x2="${w - right}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)
      } s</text>`,
    );
  }
  for (const p of points) {
    const x = X(p.orders).toFixed(1);
    out.push(
      `<line x1="${x}" x2="${x}" y1="${top}" y2="${h - bottom}" stroke="#eee"/>`,
      `<text x="${x}" y="${h - bottom + 18}" text-anchor="middle">${short(p.orders)}</text>`,
    );
  }
  out.push(
    `<text x="${(left + w - right) / 2}" y="${
      h - 10
    }" text-anchor="middle">orders in the lake</text>`,
  );
  SERIES.forEach((s, i) => {
    const pts = points.filter((p) => p[s.key] > 0);
    out.push(
      `<polyline class="series" data-series="${s.key}" fill="none" stroke="${s.color}" ` +
        `stroke-width="2" points="${
          pts.map((p) => `${X(p.orders).toFixed(1)},${Y(p[s.key]).toFixed(1)}`).join(" ")
        }"/>`,
    );
    for (const p of pts) {
      const x = X(p.orders), y = Y(p[s.key]);
      out.push(
        `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3" fill="${s.color}"/>`,
        `<text x="${(x + 6).toFixed(1)}" y="${(y - 6).toFixed(1)}" fill="${s.color}">${
          p[s.key].toFixed(2)
        }</text>`,
      );
    }
    const ly = top + 10 + i * 20;
    out.push(
      `<line x1="${w - right + 16}" x2="${w - right + 36}" y1="${ly}" y2="${ly}" ` +
        `stroke="${s.color}" stroke-width="2"/>`,
      `<text x="${w - right + 42}" y="${ly}" dominant-baseline="middle">${esc(s.label)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { out: { type: "string" }, title: { type: "string" } },
    allowPositionals: true,
  });
  if (!values.out || positionals.length === 0) {
    throw new Error("usage: plot_incremental.ts --out FILE.svg RESULTS.json...");
  }
  await Deno.writeTextFile(
    values.out,
    curveSvg(await readCurve(positionals), { title: values.title }),
  );
}
