/**
 * The metrics server of a long-running stream process (landing folder or
 * JetStream): up while the run is open, closed before it returns.
 *
 * @module
 */
import { errorMessage, SluiceError } from "../core/errors.ts";
import type { RunContext } from "../core/run_context.ts";
import { type MetricsServer, serveMetrics } from "../observability/metrics_server.ts";

/** What a stream runner calls with the open run; returns its cleanup. */
export type OnOpen = (ctx: RunContext) => Promise<(() => Promise<void>) | void>;

/** Starts `/metrics` for the run when the config asks for it. */
function startServer(ctx: RunContext): MetricsServer | undefined {
  const conf = ctx.config.observability?.metrics.server;
  if (!conf) return undefined;
  try {
    return serveMetrics(ctx.metrics, {
      port: conf.port,
      hostname: conf.host,
      logFields: { run_id: ctx.runId, pipeline: ctx.config.pipeline },
    });
  } catch (e) {
    const hint = e instanceof Deno.errors.NotCapable
      ? ` (allow it with --allow-net=${conf.host}:${conf.port})`
      : "";
    throw new SluiceError(
      `Cannot serve metrics on ${conf.host}:${conf.port}: ${errorMessage(e)}${hint}`,
      { cause: e },
    );
  }
}

/**
 * Wraps a runner's `onOpen` so the metrics server starts after it and is
 * closed before its cleanup runs.
 */
export function withMetricsServer(onOpen: OnOpen | undefined): OnOpen {
  return async (ctx) => {
    const inner = await onOpen?.(ctx);
    const server = startServer(ctx);
    return async () => {
      await server?.close();
      if (inner) await inner();
    };
  };
}
