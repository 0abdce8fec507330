import assert from "node:assert/strict";
import { join } from "node:path";
import { steppingClock } from "../core/clock.ts";
import { openEngine } from "../core/engine.ts";
import { renderAssetsModule } from "../observability/_build_assets.ts";
import { CHROMIUM, withChromium } from "./_cdp.ts";
import {
  assertBinary,
  cleanup,
  cli,
  makeDemoProject,
  requireBinary,
  rewriteConfig,
  runInProcess,
} from "./_obs_helpers.ts";

/**
 * Re-sends 4 customers without an email, as a later export: the email null
 * share grows from about 2% to about 4%, under the example's 5% error check.
 */
async function blankEmails(dir: string): Promise<void> {
  const lines = (await Deno.readTextFile(join(dir, "landing/customers/customers.csv")))
    .split("\n").slice(0, 5);
  const header = lines[0].split(",");
  const email = header.indexOf("email");
  const updated = header.indexOf("updated_at");
  const rows = lines.slice(1).map((l) => {
    const f = l.split(",");
    f[email] = "";
    f[updated] = "2026-05-01T23:00:00";
    return f.join(",");
  });
  await Deno.writeTextFile(
    join(dir, "landing/customers/customers_2.csv"),
    [lines[0], ...rows].join("\n") + "\n",
  );
}

function num(n: number): string {
  return n.toLocaleString("en-US");
}

Deno.test("the report file is self-contained and shows a failed run's error", async () => {
  const p = await makeDemoProject();
  try {
    const ok = await runInProcess(p);
    assert.equal(ok.error, undefined, String(ok.error));
    await Deno.copyFile(
      join(p.dir, "landing/orders/orders_0001.csv"),
      join(p.dir, "landing/orders/orders_0005.csv"),
    );
    await rewriteConfig(p, (y) => y.replace("sum(o.quantity) as units", "sum(o.qty) as units"));
    const bad = await runInProcess(p, { runId: "nightly-failed" });
    assert.ok(bad.error);
    const out = join(p.dir, "latest.html");
    const r = await cli(["report", "-c", p.configFile, "-o", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `wrote ${out}`);
    const html = await Deno.readTextFile(out);
    assert.match(html, /<title>ecommerce run nightly-failed · failed<\/title>/);
    assert.match(
      html,
      /<div class="error-box"><strong>Error:<\/strong> Cannot build gold model &quot;top_products&quot;/,
    );
    assert.doesNotMatch(
      html,
      /\b(src|href)=["']?(https?:)?\/\//,
      "nothing is loaded from elsewhere",
    );
    assert.doesNotMatch(html, /<link\b/);
    assert.ok(html.includes(`<section id="quality"><h2>Data quality</h2>`));

    const older = await cli([
      "report",
      "-c",
      p.configFile,
      "--run",
      ok.runId.slice(0, 12),
      "-o",
      out,
    ]);
    assert.equal(older.code, 0, older.stderr);
    const okHtml = await Deno.readTextFile(out);
    assert.match(okHtml, new RegExp(`run <span class="mono" id="run-id">${ok.runId}</span>`));
    assert.match(okHtml, /Run history \(last 1 runs\)/, "an old run's history ends at that run");

    const none = await cli(["report", "-c", p.configFile]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /give -o FILE\.html/);
  } finally {
    await cleanup(p.dir);
  }
});

Deno.test({
  name: "the report renders in headless Chromium with the run's figures, charts and checks",
  ...requireBinary(CHROMIUM, "chromium"),
  async fn() {
    assertBinary(CHROMIUM, "chromium");
    const p = await makeDemoProject(`observability:
  report: { history: 10, failing_samples: 3 }
`);
    try {
      const day = (d: number) => steppingClock(new Date(`2026-05-0${d}T02:00:00Z`), { stepMs: 7 });
      const first = await runInProcess(p, { clock: day(1), trigger: "cron" });
      assert.equal(first.error, undefined, String(first.error));
      await blankEmails(p.dir);
      await Deno.copyFile(
        join(p.dir, "landing/orders/orders_0002.csv"),
        join(p.dir, "landing/orders/orders_0005.csv"),
      );
      const second = await runInProcess(p, { clock: day(2), trigger: "cron" });
      assert.equal(second.error, undefined, String(second.error));

      // The figures the report must show, from the database.
      const db = await openEngine(join(p.dir, "lake/sluice.duckdb"), {
        allowedDirectories: [p.dir],
      });
      let figures;
      try {
        const tables = await db.all<
          {
            layer: string;
            table_name: string;
            passed: number;
            quarantined: number;
            duplicates: number;
          }
        >(
          `SELECT layer, table_name, passed, quarantined, duplicates FROM _sluice.stage_tables
           WHERE run_id = $r AND layer IN ('bronze', 'silver')`,
          { r: second.runId },
        );
        const checks = await db.all<{
          layer: string;
          table_name: string;
          check_name: string;
          column_name: string;
          severity: string;
          status: string;
          failing_rows: number;
        }>(
          `SELECT layer, table_name, check_name, column_name, severity, status, failing_rows
           FROM _sluice.check_results WHERE run_id = $r ORDER BY check_name`,
          { r: second.runId },
        );
        const sample = await db.one<{ row_key: string }>(
          `SELECT row_key FROM _sluice.check_failures WHERE run_id = $r ORDER BY row_key LIMIT 1`,
          { r: second.runId },
        );
        const emailNulls = await db.all<{ run_id: string; null_ratio: number }>(
          `SELECT run_id, null_ratio FROM _sluice.profiles WHERE layer = 'silver'
           AND table_name = 'customers' AND column_name = 'email' ORDER BY profiled_at`,
        );
        figures = { tables, checks, sample, emailNulls };
      } finally {
        db.close();
      }
      const failing = figures.checks.find((c) =>
        c.status === "fail" && c.table_name === "customers" && c.column_name === "email"
      );
      assert.ok(
        failing,
        `a warn check fails on the blank emails: ${JSON.stringify(figures.checks)}`,
      );
      assert.ok(figures.sample, "the gate kept failing samples");
      assert.equal(figures.emailNulls.length, 2);
      assert.ok(figures.emailNulls[1].null_ratio > figures.emailNulls[0].null_ratio, "nullier");

      const out = join(p.dir, "report.html");
      const r = await cli(["report", "-c", p.configFile, "--run", second.runId, "-o", out]);
      assert.equal(r.code, 0, r.stderr);

      await withChromium(`file://${out}`, async (page) => {
        // Wait (at most 20 s) until the page's script has drawn the charts.
        const probe = `(() => {
          const root = document.documentElement;
          if (!root || document.readyState !== "complete" || !location.href.startsWith("file:")) return "";
          if (root.dataset.chartsError) return "error: " + root.dataset.chartsError;
          return root.dataset.chartsReady || "";
        })()`;
        let state = "";
        for (let i = 0; i < 200 && state === ""; i++) {
          state = await page.evaluate<string>(probe).catch(() => "");
          if (state === "") await new Promise((res) => setTimeout(res, 100));
        }
        assert.equal(state, "3", "three charts drawn (stages, duration, rows)");
        const painted = await page.evaluate<number[]>(
          `[...document.querySelectorAll(".uplot canvas")]
          .map((c) => { const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })`,
        );
        assert.equal(painted.length, 3);
        for (const n of painted) assert.ok(n > 2000, `a chart canvas has ${n} painted pixels`);

        const text = await page.evaluate<string>("document.body.innerText");
        assert.ok(text.includes(second.runId), "the run id");
        for (const t of figures.tables) {
          const row = new RegExp(
            `${t.layer}\\s+${t.table_name}\\s+[\\d,]+\\s+${num(t.passed)}\\s+${
              num(t.quarantined)
            }\\s+${num(t.duplicates)}`,
          );
          assert.match(text, row, `row flow of ${t.layer}.${t.table_name}`);
        }
        const silverOrders = figures.tables.find((t) =>
          t.layer === "silver" && t.table_name === "orders"
        )!;
        const quarantined = figures.tables.filter((t) => t.layer === "silver")
          .reduce((s, t) => s + t.quarantined, 0);
        assert.match(text, new RegExp(`${num(quarantined)}\\s+rows quarantined`));
        assert.ok(silverOrders.passed > 0);
        for (const c of figures.checks) assert.ok(text.includes(c.check_name), c.check_name);
        assert.match(
          text,
          new RegExp(
            `fail\\s+${failing.severity}\\s+${failing.layer}\\.${failing.table_name}\\s+${failing.check_name}\\s+${failing.column_name}\\s+${
              num(failing.failing_rows)
            }`,
          ),
        );
        assert.ok(text.includes(`key ${figures.sample!.row_key}`), "a failing sample is shown");
        for (const n of figures.emailNulls) {
          assert.ok(
            text.includes(`${(n.null_ratio * 100).toFixed(1)}%`),
            `email null % ${n.null_ratio}`,
          );
        }
        assert.match(text, /Run history \(last 2 runs\)/);
        assert.ok(text.includes(first.runId), "the earlier run is in the history");

        const external = page.requests().filter((u) => !/^(file|data|about):/.test(u));
        assert.deepEqual(external, [], "the report loads nothing over the network");

        const png = await page.screenshot(1280);
        assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
        assert.ok(png.length > 50_000, `screenshot of ${png.length} bytes`);
        await Deno.writeFile(`${p.dir}/report.png`, png);
      });
    } finally {
      await cleanup(p.dir);
    }
  },
});

Deno.test("the inlined uPlot assets match the npm package (rerun scripts/build_uplot_assets.ts when stale)", async () => {
  const committed = await Deno.readTextFile(
    new URL("../observability/_uplot_assets.ts", import.meta.url),
  );
  assert.ok(
    committed === await renderAssetsModule(),
    "observability/_uplot_assets.ts is stale: run deno run --allow-read --allow-write scripts/build_uplot_assets.ts",
  );
  const pkg = JSON.parse(
    await Deno.readTextFile(new URL("../node_modules/uplot/package.json", import.meta.url)),
  );
  assert.ok(committed.includes(`UPLOT_VERSION: string = "${pkg.version}"`));
});

/** Waits (at most 20 s) until the report's script has drawn its charts; returns their count. */
async function chartsDrawn(page: { evaluate<T>(js: string): Promise<T> }): Promise<string> {
  const probe = `(() => {
    const root = document.documentElement;
    if (!root || document.readyState !== "complete" || !location.href.startsWith("file:")) return "";
    if (root.dataset.chartsError) return "error: " + root.dataset.chartsError;
    return root.dataset.chartsReady || "";
  })()`;
  let state = "";
  for (let i = 0; i < 200 && state === ""; i++) {
    state = await page.evaluate<string>(probe).catch(() => "");
    if (state === "") await new Promise((res) => setTimeout(res, 100));
  }
  return state;
}

Deno.test({
  name:
    "the report shows quarantine by reason with samples, why runs failed, check runs apart and rows on a log scale",
  ...requireBinary(CHROMIUM, "chromium"),
  async fn() {
    assertBinary(CHROMIUM, "chromium");
    const p = await makeDemoProject(`observability:
  report: { history: 10, failing_samples: 3 }
`);
    try {
      // Runs a few days back, so the `sluice check` subprocess (system clock) falls
      // between the third and the last run.
      const base = Date.now() - 4 * 86_400_000;
      const day = (d: number) => steppingClock(new Date(base + d * 86_400_000), { stepMs: 7 });
      const good = await Deno.readTextFile(p.configFile);
      const first = await runInProcess(p, { clock: day(0), trigger: "cron" });
      assert.equal(first.error, undefined, String(first.error));

      // 2. A broken gold model, with new orders to build: the run fails with an error.
      const land = (from: string, to: string) =>
        Deno.copyFile(join(p.dir, "landing/orders", from), join(p.dir, "landing/orders", to));
      await land("orders_0001.csv", "orders_0005.csv");
      await rewriteConfig(p, (y) => y.replace("sum(o.quantity) as units", "sum(o.qty) as units"));
      const broken = await runInProcess(p, { clock: day(1), runId: "nightly-broken-model" });
      assert.ok(broken.error, "the broken model fails the run");
      // 3. An error-level check that cannot pass: the gate fails, nothing is published.
      await land("orders_0002.csv", "orders_0006.csv");
      await Deno.writeTextFile(
        p.configFile,
        good.replace("name: orders_present, min: 1 }", "name: orders_present, min: 1000000 }"),
      );
      const gated = await runInProcess(p, { clock: day(2), runId: "nightly-gate-failed" });
      assert.ok(gated.error, "the failing check stops the run");
      await Deno.writeTextFile(p.configFile, good);

      // 4. `sluice check` alone, then a good run with a new file of orders.
      const check = await cli(["check", "-c", p.configFile]);
      assert.ok([0, 3].includes(check.code), check.stderr);
      await land("orders_0003.csv", "orders_0007.csv");
      // A file with a line of too many fields: the reader rejects it into bronze.orders__rejects.
      const orders = (await Deno.readTextFile(join(p.dir, "landing/orders/orders_0001.csv")))
        .split("\n");
      await Deno.writeTextFile(
        join(p.dir, "landing/orders/orders_0008.csv"),
        [orders[0], orders[1].replace(/^\d+/, "990001"), `${orders[2]},surplus,fields`, ""]
          .join("\n"),
      );
      const last = await runInProcess(p, {
        clock: steppingClock(new Date(Date.now() + 60_000), { stepMs: 7 }),
        runId: "nightly-good",
      });
      assert.equal(last.error, undefined, String(last.error));

      const db = await openEngine(join(p.dir, "lake/sluice.duckdb"), {
        allowedDirectories: [p.dir],
      });
      let facts;
      try {
        const reasons = await db.all<{ code: string; subject: string; n: number }>(
          `SELECT _reason_code AS code,
             regexp_extract(_reason, '^(column "[^"]*"|rule "[^"]*")', 1) AS subject,
             count(*) AS n
           FROM silver.orders__quarantine WHERE _run_id = 'nightly-good'
           GROUP BY ALL ORDER BY n DESC, code, subject`,
        );
        const checkRun = await db.one<{ run_id: string; status: string }>(
          `SELECT run_id, status FROM _sluice.runs WHERE command = 'check'`,
        );
        const gateChecks = await db.all<{ check_name: string }>(
          `SELECT check_name FROM _sluice.check_results
           WHERE run_id = 'nightly-gate-failed' AND status = 'fail' AND severity = 'error'`,
        );
        const brokenError = await db.one<{ error: string }>(
          `SELECT error FROM _sluice.runs WHERE run_id = 'nightly-broken-model'`,
        );
        const flow = await db.one<{ rows_in: number; quarantined: number }>(
          `SELECT rows_in, quarantined FROM _sluice.stage_tables
           WHERE run_id = 'nightly-good' AND layer = 'silver' AND table_name = 'orders'`,
        );
        const rejects = await db.all<{ reason: string; line: number }>(
          `SELECT reason, line FROM bronze.orders__rejects WHERE _run_id = 'nightly-good'`,
        );
        facts = { reasons, checkRun, gateChecks, brokenError, flow, rejects };
      } finally {
        db.close();
      }
      assert.ok(facts.reasons.length >= 2, JSON.stringify(facts.reasons));
      assert.ok(facts.checkRun, "the check run is in the ledger");
      assert.deepEqual(facts.gateChecks.map((c) => c.check_name), ["orders_present"]);

      const out = join(p.dir, "report.html");
      const r = await cli(["report", "-c", p.configFile, "--run", "nightly-good", "-o", out]);
      assert.equal(r.code, 0, r.stderr);

      await withChromium(`file://${out}`, async (page) => {
        assert.equal(await chartsDrawn(page), "3", "three charts drawn (stages, duration, rows)");
        const text = (selector: string) =>
          page.evaluate<string>(
            `(document.querySelector(${JSON.stringify(selector)}) || { innerText: "" }).innerText`,
          );

        // Quarantine by reason: every (reason, column/rule) of the run with its count,
        // and sample rows with file and line.
        const quarantineRows = await page.evaluate<string[]>(
          `[...document.querySelectorAll("#quarantine tbody tr")].map((tr) => tr.innerText)`,
        );
        for (const q of facts.reasons) {
          const row = quarantineRows.find((t) =>
            t.startsWith("silver.orders") && t.includes(q.code) && t.includes(q.subject)
          );
          assert.ok(row, `a row for ${q.code} ${q.subject}: ${quarantineRows.join(" | ")}`);
          assert.match(row, new RegExp(`\\s${num(q.n)}\\s`), `${q.code} ${q.subject} count`);
        }
        const samples = await page.evaluate<string[]>(
          `[...document.querySelectorAll("#quarantine .qsample")].map((s) => s.textContent)`,
        );
        assert.ok(samples.length >= facts.reasons.length, `${samples.length} samples`);
        assert.ok(
          samples.every((s) => /orders_\d{4}\.csv:\d+/.test(s)),
          `each sample names its file and line: ${
            samples.find((s) => !/orders_\d{4}\.csv:\d+/.test(s))
          }`,
        );
        assert.ok(samples.some((s) => s.includes("cannot cast")), "a cast failure is shown");
        // The line the CSV reader rejected, under bronze.
        assert.equal(facts.rejects.length, 1, JSON.stringify(facts.rejects));
        assert.ok(
          quarantineRows.some((t) => t.startsWith("bronze.orders") && t.includes("rejected")),
          quarantineRows.join(" | "),
        );
        assert.ok(
          samples.some((s) => s.includes(`orders_0008.csv:${facts.rejects[0].line}`)),
          "the rejected line's sample names its file and line",
        );

        // The row flow shows the table's quarantine rate and budget (default 10%).
        const rate = `${((facts.flow!.quarantined / facts.flow!.rows_in) * 100).toFixed(1)}%`;
        assert.match(
          await text("#flow"),
          new RegExp(
            `silver\\s+orders\\s.*${rate.replace(".", "\\.")}\\s+within max 10%`,
          ),
        );

        // Why each failed run failed: the error line, or the failed checks.
        const failures = await page.evaluate<Record<string, string>>(
          `Object.fromEntries([...document.querySelectorAll("#failures .failure")]
            .map((f) => [f.dataset.run, f.innerText]))`,
        );
        assert.ok(failures["nightly-broken-model"], Object.keys(failures).join(", "));
        assert.ok(
          failures["nightly-broken-model"].includes(facts.brokenError!.error.split("\n")[0]),
          failures["nightly-broken-model"],
        );
        assert.match(failures["nightly-gate-failed"], /quality_failed/);
        assert.match(
          failures["nightly-gate-failed"],
          /failed checks: silver\.orders\.orders_present \(fail\)/,
        );
        assert.ok(!failures["nightly-good"], "the good run is not a failure");

        // Check runs apart: in their own section, not in the run history.
        assert.ok((await text("#check-runs")).includes(facts.checkRun!.run_id));
        const history = await text("#history");
        assert.ok(!history.includes(facts.checkRun!.run_id), "no check run in the run history");
        assert.match(history, /Run history \(last 4 runs\)/);
        assert.match(history, /nightly-gate-failed\s+quality_failed[^\n]*failed checks:/);

        // Rows per run on a log scale.
        const scale = await page.evaluate<{ distr: number; log: number }>(
          `({ distr: sluiceCharts.rows.scales.y.distr, log: sluiceCharts.rows.scales.y.log })`,
        );
        assert.deepEqual(scale, { distr: 3, log: 10 });

        // What bronze holds, per source.
        const bronze = await text("#bronze");
        for (const source of ["customers", "orders", "products"]) {
          assert.match(bronze, new RegExp(`${source}\\s`), source);
        }
        assert.match(bronze, /VARCHAR/);

        const external = page.requests().filter((u) => !/^(file|data|about):/.test(u));
        assert.deepEqual(external, [], "the report loads nothing over the network");

        const png = await page.screenshot(1280);
        assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
        assert.ok(png.length > 50_000, `screenshot of ${png.length} bytes`);
        // The screenshot goes beside the test's project; SLUICE_UPDATE_SCREENSHOT=1
        // refreshes the one the README shows (docs/report.png).
        await Deno.writeFile(`${p.dir}/report.png`, png);
        if (Deno.env.get("SLUICE_UPDATE_SCREENSHOT") === "1") {
          await Deno.writeFile(new URL("../docs/report.png", import.meta.url), png);
        }
      });
    } finally {
      await cleanup(p.dir);
    }
  },
});
