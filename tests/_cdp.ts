/**
 * Headless Debian Chromium driven over the DevTools protocol (a WebSocket on
 * 127.0.0.1): open a page, evaluate JavaScript in it, record the network
 * requests it makes, and take a full-page screenshot.
 *
 * @module
 */

/** Path of Debian's chromium. */
export const CHROMIUM = "/usr/bin/chromium";

interface Pending {
  resolve: (v: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

/** A page open in headless Chromium. */
export interface Page {
  /** Evaluates an expression in the page and returns its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
  /** Every URL the page requested so far. */
  requests(): string[];
  /** A PNG of the whole page at `width` CSS pixels. */
  screenshot(width: number): Promise<Uint8Array>;
}

/**
 * Starts Chromium with a throwaway profile, opens `url` in a 1280 px wide
 * tab, runs `fn` with the page, then closes the browser and removes the
 * profile.
 */
export async function withChromium<T>(url: string, fn: (page: Page) => Promise<T>): Promise<T> {
  const profile = await Deno.makeTempDir({ prefix: "sluice_chromium_" });
  const child = new Deno.Command(CHROMIUM, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
      "--hide-scrollbars",
      `--user-data-dir=${profile}`,
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let ws: WebSocket | undefined;
  try {
    const endpoint = await devtoolsEndpoint(profile);
    ws = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      ws!.onopen = () => resolve();
      ws!.onerror = () => reject(new Error(`cannot connect to ${endpoint}`));
    });
    const socket = ws;
    let next = 1;
    const pending = new Map<number, Pending>();
    const requested: string[] = [];
    socket.onmessage = (m) => {
      const msg = JSON.parse(String(m.data));
      if (msg.id !== undefined) {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`${msg.error.message} (${msg.error.code})`));
        else p?.resolve(msg.result ?? {});
      } else if (msg.method === "Network.requestWillBeSent") {
        requested.push(msg.params.request.url);
      }
    };
    const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
      });
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true }) as {
      sessionId: string;
    };
    await send("Network.enable", {}, sessionId);
    await send("Page.enable", {}, sessionId);
    await send("Emulation.setDeviceMetricsOverride", {
      width: 1280,
      height: 900,
      deviceScaleFactor: 1,
      mobile: false,
    }, sessionId);
    await send("Page.navigate", { url }, sessionId);
    const page: Page = {
      async evaluate<T>(expression: string): Promise<T> {
        const r = await send("Runtime.evaluate", {
          expression,
          returnByValue: true,
          awaitPromise: true,
        }, sessionId) as { result: { value: T }; exceptionDetails?: { text: string } };
        if (r.exceptionDetails) {
          throw new Error(`page error: ${JSON.stringify(r.exceptionDetails)}`);
        }
        return r.result.value;
      },
      requests: () => [...requested],
      async screenshot(width: number): Promise<Uint8Array> {
        const height = await page.evaluate<number>(
          "Math.ceil(document.documentElement.scrollHeight)",
        );
        await send("Emulation.setDeviceMetricsOverride", {
          width,
          height,
          deviceScaleFactor: 1,
          mobile: false,
        }, sessionId);
        const shot = await send("Page.captureScreenshot", {
          format: "png",
          captureBeyondViewport: true,
          clip: { x: 0, y: 0, width, height, scale: 1 },
        }, sessionId) as { data: string };
        return Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0));
      },
    };
    const result = await fn(page);
    await send("Browser.close").catch(() => {});
    return result;
  } finally {
    ws?.close();
    const done = await Promise.race([
      child.status.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
    ]);
    if (!done) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    }
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** Waits for Chromium to write `DevToolsActivePort` and returns the browser's WebSocket URL. */
async function devtoolsEndpoint(profile: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    try {
      const [port, path] = (await Deno.readTextFile(`${profile}/DevToolsActivePort`)).split("\n");
      if (port && path) return `ws://127.0.0.1:${port.trim()}${path.trim()}`;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("Chromium did not open its DevTools port within 20 s");
}
