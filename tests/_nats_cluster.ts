/**
 * A real 3-node NATS JetStream cluster on 127.0.0.1 for the JetStream tests:
 * distinct client and cluster ports, a temp store folder per node, config
 * files with `cluster { routes [...] }`. Waits until JetStream answers (a
 * meta leader is elected), creates streams with 3 replicas, can kill -9 and
 * restart a node, and stops every node by its pid.
 *
 * Without `nats-server` (Debian package `nats-server`, binary
 * `/usr/sbin/nats-server`) the tests skip loudly naming it; under `CI=true`
 * they fail instead.
 *
 * @module
 */
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";

/** Where Debian installs the server. */
export const NATS_SERVER = "/usr/sbin/nats-server";

/** True when the nats-server binary is installed. */
export function natsServerInstalled(): boolean {
  try {
    return Deno.statSync(NATS_SERVER).isFile;
  } catch {
    return false;
  }
}

/**
 * `ignore` for `Deno.test`: true (and a loud message) when nats-server is
 * missing; under `CI=true` a missing server throws, so the suite fails.
 */
export function skipWithoutNats(): boolean {
  if (natsServerInstalled()) return false;
  const msg = `nats-server is not installed (${NATS_SERVER}; apt-get install nats-server): ` +
    "the JetStream tests are SKIPPED";
  if (Deno.env.get("CI") === "true") throw new Error(`${msg} — and CI=true requires them`);
  console.error(`\n!!! ${msg}\n`);
  return true;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; closed again at once). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

interface Node {
  name: string;
  port: number;
  clusterPort: number;
  conf: string;
  store: string;
  log: string;
  child?: Deno.ChildProcess;
}

/** A running cluster. */
export class NatsCluster {
  readonly dir: string;
  readonly nodes: Node[];

  private constructor(dir: string, nodes: Node[]) {
    this.dir = dir;
    this.nodes = nodes;
  }

  /** Client URLs of all nodes. */
  get servers(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  }

  /** Writes the configs, starts every node and waits until JetStream answers. */
  static async start(options: { nodes?: number; dir?: string } = {}): Promise<NatsCluster> {
    const count = options.nodes ?? 3;
    const dir = options.dir ?? await Deno.makeTempDir({ prefix: "sluice_nats_" });
    await Deno.mkdir(dir, { recursive: true });
    const nodes: Node[] = [];
    for (let i = 1; i <= count; i++) {
      nodes.push({
        name: `n${i}`,
        port: freePort(),
        clusterPort: freePort(),
        conf: join(dir, `n${i}.conf`),
        store: join(dir, `n${i}-store`),
        log: join(dir, `n${i}.log`),
      });
    }
    for (const n of nodes) {
      const routes = nodes.map((o) => `    nats-route://127.0.0.1:${o.clusterPort}`).join("\n");
      await Deno.writeTextFile(
        n.conf,
        [
          `server_name: ${n.name}`,
          `listen: 127.0.0.1:${n.port}`,
          `log_file: "${n.log}"`,
          `jetstream {`,
          `  store_dir: "${n.store}"`,
          `  max_memory_store: 64MB`,
          `  max_file_store: 2GB`,
          `}`,
          `cluster {`,
          `  name: sluice_test`,
          `  listen: 127.0.0.1:${n.clusterPort}`,
          `  routes: [`,
          routes,
          `  ]`,
          `}`,
          "",
        ].join("\n"),
      );
    }
    const cluster = new NatsCluster(dir, nodes);
    try {
      for (let i = 0; i < nodes.length; i++) cluster.spawn(i);
      await cluster.waitReady();
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  private spawn(i: number): void {
    const n = this.nodes[i];
    n.child = new Deno.Command(NATS_SERVER, {
      args: ["-c", n.conf],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  }

  /** Waits until JetStream answers account info through every running node. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (const n of this.nodes) {
      if (!n.child) continue;
      while (true) {
        try {
          const nc = await connect({
            servers: `nats://127.0.0.1:${n.port}`,
            timeout: 2000,
            reconnect: false,
          });
          try {
            const jsm = await jetstreamManager(nc, { timeout: 2000 });
            await jsm.getAccountInfo();
          } finally {
            await nc.close();
          }
          break;
        } catch (e) {
          last = e;
          if (Date.now() > deadline) {
            throw new Error(
              `NATS cluster not ready after ${timeoutMs} ms (node ${n.name}): ${String(last)}; ` +
                `logs in ${this.dir}`,
            );
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }
  }

  /** A client connection to the cluster (all nodes as seeds). */
  async connect(): Promise<NatsConnection> {
    return await connect({
      servers: this.servers,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
  }

  /** Creates a file-backed stream with `replicas` replicas (limits retention). */
  async createStream(
    name: string,
    subjects: string[],
    options: { replicas?: number } = {},
  ): Promise<void> {
    const nc = await this.connect();
    try {
      const jsm = await jetstreamManager(nc, { timeout: 10_000 });
      const deadline = Date.now() + 60_000;
      while (true) {
        try {
          await jsm.streams.add({
            name,
            subjects,
            num_replicas: options.replicas ?? Math.min(3, this.nodes.length),
            storage: StorageType.File,
            retention: RetentionPolicy.Limits,
            duplicate_window: 120_000_000_000,
          });
          return;
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    } finally {
      await nc.close();
    }
  }

  /** The pid of node `i` (0-based). */
  pid(i: number): number | undefined {
    return this.nodes[i].child?.pid;
  }

  /** kill -9 node `i` and waits for it to exit. */
  async kill(i: number): Promise<void> {
    const child = this.nodes[i].child;
    if (!child) return;
    this.nodes[i].child = undefined;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
  }

  /** Starts node `i` again (same ports, same store) and waits until it answers. */
  async restart(i: number): Promise<void> {
    if (this.nodes[i].child) return;
    this.spawn(i);
    await this.waitReady();
  }

  /** Stops every node (SIGTERM, then SIGKILL) by its pid. Keeps the folder. */
  async stop(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) {
      const child = this.nodes[i].child;
      if (!child) continue;
      this.nodes[i].child = undefined;
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(timer);
    }
  }
}
