import { createHash, generateKeyPairSync, KeyObject, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, MqttClient } from 'mqtt';
import {
  ArtifactKind,
  MANIFEST_FORMAT,
  PROTOCOL_VERSION,
  RebootMode,
  parseDeviceState,
  parseJobEvent,
  signManifest,
} from '@cowroot/protocol';
import {
  BtrfsAdapter,
  CommandRunner,
  SnapshotStore,
  UbootEnv,
  bootloaderDecision,
  createFileBackedEnv,
  readSwitchEnv,
} from '@cowroot/device';
import { BuiltRelease, LoopBtrfs, ReleaseBuilder, createLoopBtrfs } from '@cowroot/device/testing';

export type { BuiltRelease };
import { Agent } from '../agent';
import { validateAgentConfig } from '../config/agent-config';
import { AgentLogger } from '../logger';
import { ArtifactHttpServer } from './artifact-http-server';

export const DEVICE_ID = 'dev-agent-1';
export const CREDENTIAL = 'device-credential-0123456789';

export interface Artifact {
  file: string;
  manifest: Buffer;
  signature: string;
  sha256: string;
  size: number;
  release: BuiltRelease;
}

export type ReceivedMessage = { topic: string; payload: Record<string, unknown> };

/** The broker side for tests: a real aedes in process with the device credential check. */
export interface TestBroker {
  port: number;
  close(): Promise<void>;
}

export async function startTestBroker(): Promise<TestBroker> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => {
      const ok =
        (username === DEVICE_ID && password?.toString() === CREDENTIAL) ||
        (username === 'observer' && password?.toString() === 'observer');
      if (ok) done(null, true);
      else done(Object.assign(new Error('bad credential'), { returnCode: 4 }) as never, false);
    },
  });
  const server: Server = createServer((socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Everything an agent integration test needs, all real: a build host btrfs with releases, a device pool
 * on its own loop btrfs, a file-backed redundant u-boot env, an aedes broker, an HTTP artifact server,
 * an observer MQTT client, and "reboots" played by restarting the agent with the kernel command line
 * and env that u-boot (bootloaderDecision) and the initramfs would produce.
 */
export class AgentRig {
  dir = '';
  build!: LoopBtrfs;
  device!: LoopBtrfs;
  builder!: ReleaseBuilder;
  store!: SnapshotStore;
  env!: UbootEnv;
  btrfs = new BtrfsAdapter();
  runner = new CommandRunner();
  broker!: TestBroker;
  http!: ArtifactHttpServer;
  observer!: MqttClient;
  messages: ReceivedMessage[] = [];
  logs: string[] = [];
  releaseKey = generateKeyPairSync('ed25519');
  otherKey = generateKeyPairSync('ed25519');
  agent: Agent | null = null;
  deviceId = DEVICE_ID;
  credential = CREDENTIAL;
  /** the broker the agent connects to: the in-process aedes, or a real fleet server's */
  mqttUrl = '';
  /** the server origin the agent pins artifact downloads to */
  httpUrl = '';
  configOverrides: Record<string, unknown> = {};
  private cleanups: Array<() => Promise<unknown>> = [];

  get pool(): string {
    return this.device.mount;
  }
  get cmdlineFile(): string {
    return join(this.dir, 'cmdline');
  }
  get rebootLog(): string {
    return join(this.dir, 'reboots.log');
  }
  get requiredDir(): string {
    return join(this.dir, 'required.d');
  }
  get wantedDir(): string {
    return join(this.dir, 'wanted.d');
  }

  /**
   * `server`: use a real fleet server (its broker, the device id and credential it provisioned) instead
   * of the in-process aedes and observer; events are then read through the server's API.
   */
  async setUp(
    options: {
      deviceMiB?: number;
      server?: { mqttUrl: string; httpUrl: string; deviceId: string; credential: string };
    } = {},
  ): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'cowroot-agent-it-'));
    this.cleanups.push(() => rm(this.dir, { recursive: true, force: true }));
    this.build = await createLoopBtrfs({ sizeMiB: 1024, label: 'build' });
    this.cleanups.push(() => this.build.cleanup());
    this.device = await createLoopBtrfs({ sizeMiB: options.deviceMiB ?? 512, label: 'device' });
    this.cleanups.push(() => this.device.cleanup());
    this.builder = new ReleaseBuilder(this.build.mount, join(this.dir, 'streams'));
    this.store = new SnapshotStore({ poolPath: this.pool });
    await this.store.init();
    for (const sub of ['required.d', 'wanted.d', 'artifacts']) await mkdir(join(this.dir, sub));
    await writeFile(
      join(this.dir, 'release.pub.pem'),
      this.releaseKey.publicKey.export({ type: 'spki', format: 'pem' }),
    );
    const recorder = join(this.dir, 'record-reboot.sh');
    await writeFile(recorder, `#!/bin/sh\necho "reboot $*" >> '${this.rebootLog}'\n`);
    await chmod(recorder, 0o755);

    if (options.server) {
      this.mqttUrl = options.server.mqttUrl;
      this.httpUrl = options.server.httpUrl;
      this.deviceId = options.server.deviceId;
      this.credential = options.server.credential;
      return;
    }
    this.broker = await startTestBroker();
    this.cleanups.push(() => this.broker.close());
    this.mqttUrl = `mqtt://127.0.0.1:${this.broker.port}`;
    this.http = new ArtifactHttpServer(DEVICE_ID, CREDENTIAL);
    await this.http.listen();
    this.httpUrl = this.http.origin;
    this.cleanups.push(() => this.http.close());
    this.observer = connect(this.mqttUrl, {
      username: 'observer',
      password: 'observer',
      clientId: `observer-${randomUUID()}`,
    });
    this.cleanups.push(() => new Promise<void>((resolve) => this.observer.end(true, {}, () => resolve())));
    await new Promise<void>((resolve, reject) => {
      this.observer.once('connect', () => resolve());
      this.observer.once('error', reject);
    });
    await new Promise<void>((resolve, reject) =>
      this.observer.subscribe(`cowroot/v1/devices/${DEVICE_ID}/#`, { qos: 1 }, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    this.observer.on('message', (topic, payload) => {
      if (topic.endsWith('/commands')) return;
      try {
        this.messages.push({ topic, payload: JSON.parse(payload.toString('utf8')) as Record<string, unknown> });
      } catch {
        this.messages.push({ topic, payload: { unparsable: payload.toString('utf8') } });
      }
    });
  }

  /** Provision the device as the factory would: `release` received as the current snapshot. */
  async provision(release: BuiltRelease, id: string): Promise<void> {
    const stream = await this.builder.send(release);
    const { createReadStream } = await import('node:fs');
    await this.store.receive(createReadStream(stream), {
      snapshotId: id,
      release: { name: 'base', version: id },
      expectedReceivedUuid: release.uuid,
    });
    const envDir = join(this.dir, 'env');
    const fileEnv = await createFileBackedEnv(envDir, { initial: { cowroot_current: id, bootdelay: '0' } });
    this.env = new UbootEnv(fileEnv.configPath);
    await this.makeWorkspace(id);
    await writeFile(this.cmdlineFile, `console=ttyS0 root=LABEL=device cowroot.snapshot=${id} cowroot.trial=0\n`);
  }

  /** The initramfs's part of a boot: a fresh rw workspace from the booted snapshot. */
  async makeWorkspace(id: string): Promise<void> {
    const workspace = join(this.pool, 'workspace');
    if (existsSync(workspace)) await this.btrfs.deleteSubvolume(workspace);
    await this.btrfs.snapshot(join(this.pool, 'snapshots', id), workspace, { readOnly: false });
  }

  /** Compressed (zstd) or plain send stream, its manifest signed with the release key. */
  async artifact(
    release: BuiltRelease,
    options: {
      parent?: BuiltRelease;
      compression?: 'zstd' | 'none';
      version?: string;
      mutate?: (m: Record<string, unknown>) => void;
    } = {},
  ): Promise<Artifact> {
    const stream = await this.builder.send(release, options.parent);
    const compression = options.compression ?? 'zstd';
    let file = stream;
    if (compression === 'zstd') {
      file = `${stream}.zst`;
      await this.runner.run('zstd', ['-q', '-f', '-3', stream, '-o', file]);
    }
    const data = await readFile(file);
    const sha256 = createHash('sha256').update(data).digest('hex');
    const manifestObject: Record<string, unknown> = {
      format: MANIFEST_FORMAT,
      release: { name: 'base', version: options.version ?? release.name },
      kind: options.parent ? ArtifactKind.Incremental : ArtifactKind.Full,
      file: file.split('/').pop(),
      size: data.length,
      sha256,
      compression,
      snapshotUuid: release.uuid,
      parent: options.parent
        ? { release: { name: 'base', version: options.parent.name }, snapshotUuid: options.parent.uuid }
        : null,
      createdAt: new Date().toISOString(),
    };
    options.mutate?.(manifestObject);
    const manifest = Buffer.from(JSON.stringify(manifestObject));
    return {
      file,
      manifest,
      signature: signManifest(manifest, this.releaseKey.privateKey),
      sha256,
      size: data.length,
      release,
    };
  }

  installCommand(
    artifact: { manifest: Buffer; signature: string },
    url: string,
    options: { commandId?: string; mode?: RebootMode; snapshotId?: string; signWith?: KeyObject } = {},
  ): Record<string, unknown> {
    return {
      v: PROTOCOL_VERSION,
      commandId: options.commandId ?? randomUUID(),
      type: 'install',
      issuedAt: new Date().toISOString(),
      artifact: {
        url,
        manifest: artifact.manifest.toString('base64'),
        signature: options.signWith ? signManifest(artifact.manifest, options.signWith) : artifact.signature,
      },
      ...(options.snapshotId ? { snapshotId: options.snapshotId } : {}),
      reboot: { mode: options.mode ?? RebootMode.Never },
    };
  }

  command(type: string, fields: Record<string, unknown> = {}, commandId = randomUUID()): Record<string, unknown> {
    return { v: PROTOCOL_VERSION, commandId, type, issuedAt: new Date().toISOString(), ...fields };
  }

  async send(command: Record<string, unknown> | string | Buffer): Promise<void> {
    const payload = typeof command === 'string' || Buffer.isBuffer(command) ? command : JSON.stringify(command);
    await new Promise<void>((resolve, reject) =>
      this.observer.publish(`cowroot/v1/devices/${DEVICE_ID}/commands`, payload, { qos: 1 }, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  }

  configFor(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      deviceId: this.deviceId,
      credential: this.credential,
      server: { mqttUrl: this.mqttUrl, httpUrl: this.httpUrl },
      poolPath: this.pool,
      fwEnvConfig: this.env.configPath,
      releasePublicKeyFile: join(this.dir, 'release.pub.pem'),
      stateDir: join(this.pool, 'state', 'agent'),
      health: {
        requiredDir: this.requiredDir,
        wantedDir: this.wantedDir,
        checkTimeoutMs: 5000,
        mqttConfirmTimeoutMs: 10_000,
        rootfsPath: join(this.pool, 'workspace'),
      },
      download: { retries: 2, initialBackoffMs: 50, maxBackoffMs: 200, idleTimeoutMs: 3000 },
      retention: 10,
      kernelCmdlinePath: this.cmdlineFile,
      rebootCommand: [join(this.dir, 'record-reboot.sh')],
      requiredBootFiles: ['boot/uImage'],
      ...this.configOverrides,
      ...overrides,
    };
  }

  async startAgent(overrides: Record<string, unknown> = {}): Promise<Agent> {
    const config = validateAgentConfig(this.configFor(overrides));
    const agent = new Agent(config, new AgentLogger(this.deviceId, (line) => this.logs.push(line)));
    this.agent = agent;
    await agent.start();
    return agent;
  }

  async stopAgent(): Promise<void> {
    const agent = this.agent;
    this.agent = null;
    await agent?.stop(false);
  }

  /**
   * A reboot: the agent dies, u-boot applies its part of the switch protocol (bootloaderDecision, written
   * to the env with fw_setenv), the initramfs makes the workspace, the kernel gets the command line.
   * `startAgent: false` plays a boot that hangs before the agent runs.
   */
  async reboot(
    options: { startAgent?: boolean; config?: Record<string, unknown>; kernelLoads?: (id: string) => boolean } = {},
  ): Promise<{ boot: string; trial: boolean }> {
    await this.stopAgent();
    const env = readSwitchEnv(await this.env.readAll());
    const loads =
      options.kernelLoads ?? ((id: string) => existsSync(join(this.pool, 'snapshots', id, 'boot', 'uImage')));
    const decision = bootloaderDecision(env, loads);
    if (decision.write) await this.env.write(decision.write);
    await this.makeWorkspace(decision.boot);
    await writeFile(
      this.cmdlineFile,
      `console=ttyS0 root=LABEL=device cowroot.snapshot=${decision.boot} cowroot.trial=${decision.trial ? 1 : 0}\n`,
    );
    if (options.startAgent !== false) await this.startAgent(options.config);
    return { boot: decision.boot, trial: decision.trial };
  }

  async rebootCount(): Promise<number> {
    const text = await readFile(this.rebootLog, 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).length;
  }

  events(commandId?: string): Array<Record<string, unknown>> {
    return this.messages
      .filter((m) => m.topic.endsWith('/events'))
      .map((m) => m.payload)
      .filter((e) => commandId === undefined || e.commandId === commandId);
  }

  states(): Array<Record<string, unknown>> {
    return this.messages.filter((m) => m.topic.endsWith('/state')).map((m) => m.payload);
  }

  async waitFor<T>(
    what: string,
    probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
    timeoutMs = 30_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${what}; last events: ${JSON.stringify(this.events().slice(-3))}\nlast logs: ${this.logs.slice(-6).join('\n')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  waitForEvent(commandId: string, type: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return this.waitFor(
      `${type} for ${commandId}`,
      () => this.events(commandId).find((e) => e.type === type),
      timeoutMs,
    );
  }

  /** Every event and state the agent sent is valid under the protocol (the server would take it). */
  assertMessagesValid(): void {
    for (const message of this.messages) {
      if (message.topic.endsWith('/events')) {
        const parsed = parseJobEvent(JSON.stringify(message.payload));
        if (!parsed.ok) throw new Error(`invalid event ${JSON.stringify(message.payload)}: ${parsed.message}`);
      }
      if (message.topic.endsWith('/state')) {
        const parsed = parseDeviceState(JSON.stringify(message.payload));
        if (!parsed.ok) throw new Error(`invalid state: ${parsed.message}`);
      }
    }
  }

  /** staging/ once the running agent's deferred cleanup of its last receive is done */
  async stagingEntries(): Promise<string[]> {
    await this.agent?.settled();
    return readdir(join(this.pool, 'staging'));
  }

  async tearDown(): Promise<void> {
    await this.stopAgent().catch(() => undefined);
    for (const cleanup of this.cleanups.reverse())
      await cleanup().catch((error: Error) => console.warn(`cleanup: ${error.message}`));
  }
}
