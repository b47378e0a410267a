// Starts a real nats-server (by default 2.10 from Debian trixie, see natsServerBinary) with a generated config in operator
// mode: JWT resolver with its own directory, JetStream with its own store_dir, an MQTT listener, optional
// cluster routes. Each instance gets free loopback ports and a temp dir; stop() ends the process.
// Config keys follow docs.nats.io "Configuration" (server_name, jetstream, mqtt, cluster, resolver).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@cowroot/testing/free-port';
import type { NatsTrust } from './nats-trust';

/** Where deploy/scripts/install-nats-server-2.10.sh unpacks Debian trixie's nats-server 2.10. */
export const NATS_210_BINARY = '/opt/cowroot/nats-server-2.10/usr/sbin/nats-server';
/** Debian bookworm's package (2.9.10): the fallback when 2.10 is not unpacked. */
export const NATS_SYSTEM_BINARY = '/usr/sbin/nats-server';

/**
 * NATS_SERVER_BINARY when set, else 2.10 when it is unpacked, else the system's 2.9: the cluster mode's
 * MQTT session costs differ a lot between the two (docs/scale-out.md), so which one ran must be chosen on
 * purpose and shown (natsServerVersion).
 */
export function natsServerBinary(env: NodeJS.ProcessEnv = process.env, exists = existsSync): string {
  if (env.NATS_SERVER_BINARY) return env.NATS_SERVER_BINARY;
  return exists(NATS_210_BINARY) ? NATS_210_BINARY : NATS_SYSTEM_BINARY;
}

export const NATS_SERVER_BINARY = natsServerBinary();

let versionShown: string | null = null;

/** `nats-server --version` of NATS_SERVER_BINARY (e.g. "2.10.27"), logged once per process. */
export function natsServerVersion(): string {
  if (versionShown !== null) return versionShown;
  const out = execFileSync(NATS_SERVER_BINARY, ['--version'], { encoding: 'utf8' }).trim();
  versionShown = out.replace(/^nats-server:\s*v?/, '');
  console.log(`nats-server ${versionShown} (${NATS_SERVER_BINARY})`);
  return versionShown;
}

export interface NatsNodePorts {
  client: number;
  mqtt: number;
  http: number;
  cluster: number;
}

export interface NatsNodeOptions {
  name: string;
  dir: string;
  trust: NatsTrust;
  ports: NatsNodePorts;
  /** cluster route ports of every node (this one included is fine); absent = standalone */
  routes?: number[];
  clusterName?: string;
  /** MQTT session/stream replicas in a cluster (mqtt.stream_replicas) */
  mqttStreamReplicas?: number;
  /** mqtt.consumer_replicas / consumer_memory_storage (nats-server ≥ 2.9): bench:cluster measures both ways */
  mqttConsumers?: MqttConsumerOptions;
}

export interface MqttConsumerOptions {
  replicas?: number;
  memoryStorage?: boolean;
}

export function natsConfig(o: NatsNodeOptions): string {
  const lines = [
    `server_name: ${o.name}`,
    `listen: 127.0.0.1:${o.ports.client}`,
    `http: 127.0.0.1:${o.ports.http}`,
    `operator: ${o.trust.operatorJwt}`,
    `system_account: ${o.trust.systemAccount.getPublicKey()}`,
    // full resolver: account JWTs live in dir, updates pushed with $SYS.REQ.CLAIMS.UPDATE are stored there
    // and gossiped to the other nodes (docs.nats.io "NATS Based Resolver")
    `resolver: { type: full, dir: "${join(o.dir, 'jwt')}", allow_delete: false, interval: "2m", timeout: "2s" }`,
    `resolver_preload: {`,
    `  ${o.trust.systemAccount.getPublicKey()}: ${o.trust.systemAccountJwt}`,
    `  ${o.trust.account.getPublicKey()}: ${o.trust.accountJwt}`,
    `}`,
    `jetstream { store_dir: "${join(o.dir, 'js')}", max_memory_store: 64MB, max_file_store: 1GB }`,
    `mqtt {`,
    `  listen: 127.0.0.1:${o.ports.mqtt}`,
    ...(o.mqttStreamReplicas ? [`  stream_replicas: ${o.mqttStreamReplicas}`] : []),
    ...(o.mqttConsumers?.replicas ? [`  consumer_replicas: ${o.mqttConsumers.replicas}`] : []),
    ...(o.mqttConsumers?.memoryStorage ? [`  consumer_memory_storage: true`] : []),
    `}`,
  ];
  if (o.routes) {
    lines.push(
      `cluster {`,
      `  name: ${o.clusterName ?? 'cowroot'}`,
      `  listen: 127.0.0.1:${o.ports.cluster}`,
      `  routes: [${o.routes.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}]`,
      `}`,
    );
  }
  return lines.join('\n') + '\n';
}

export class NatsServerProcess {
  private child: ChildProcess | null = null;
  private log = '';

  constructor(readonly options: NatsNodeOptions) {}

  static async allocatePorts(): Promise<NatsNodePorts> {
    return { client: await freePort(), mqtt: await freePort(), http: await freePort(), cluster: await freePort() };
  }

  get clientUrl(): string {
    return `nats://127.0.0.1:${this.options.ports.client}`;
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.options.ports.mqtt}`;
  }

  get output(): string {
    return this.log;
  }

  /** Writes the config and starts the process; resolves once /healthz answers ok (JetStream current). */
  async start(timeoutMs = 20000): Promise<void> {
    if (!existsSync(NATS_SERVER_BINARY)) {
      throw new Error(`${NATS_SERVER_BINARY} not found: run deploy/scripts/install-system-deps.sh (nats-server)`);
    }
    natsServerVersion();
    mkdirSync(this.options.dir, { recursive: true });
    const configPath = join(this.options.dir, 'nats.conf');
    writeFileSync(configPath, natsConfig(this.options));
    this.log = '';
    const child = spawn(NATS_SERVER_BINARY, ['-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) =>
        reject(new Error(`nats-server ${this.options.name} exited (${code}):\n${this.log}`)),
      ),
    );
    exited.catch(() => undefined);
    await Promise.race([this.waitHealthy(timeoutMs), exited]);
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`http://127.0.0.1:${this.options.ports.http}/healthz`);
        last = await res.text();
        if (res.ok && this.log.includes('Listening for MQTT clients')) return;
      } catch (e) {
        last = String(e);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`nats-server ${this.options.name} not healthy after ${timeoutMs} ms (${last}):\n${this.log}`);
  }

  /** GET a monitoring endpoint (connz, jsz, accountz) as JSON. */
  async monitor<T>(path: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.options.ports.http}/${path}`);
    return (await res.json()) as T;
  }

  /**
   * SIGSTOP: the node stops reading its sockets but they stay open, so what a client sends now is neither
   * processed nor refused; a later stop('SIGKILL') drops it. How a test holds a client's publishes
   * unacknowledged at the moment of a crash.
   */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  /** SIGCONT after freeze(): the node reads its sockets again (a stopped process would not even take SIGTERM). */
  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  /** SIGKILL (a crash) or SIGTERM; resolves when the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      // a frozen node (freeze()) would hold SIGTERM pending for ever: a test that failed between its
      // freeze and its kill must still be able to clean up
      child.kill('SIGCONT');
      child.kill(signal);
    });
  }
}
