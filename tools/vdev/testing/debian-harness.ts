import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLoopBtrfs, type LoopBtrfs } from '@cowroot/device/testing';
import { pollUntil } from '@cowroot/testing';
import { startTestServer, type TestServer } from '../../../apps/server/test/start-test-server';
import { DebianDevice, GUEST_SERVER_ADDRESS } from '../debian-device';
import { run } from './run-command';
import { debianRootfsTar, installCowroot, type DebianArch } from '../debian-rootfs';
import { VirtualDevice } from '../virtual-device';
import type { VdevArtifacts, VdevBoard } from '../vdev-artifacts';

const vdevDir = resolve(__dirname, '..');
const repo = resolve(vdevDir, '../..');
const GUEST_MQTT_PORT = 1883;
const GUEST_HTTP_PORT = 8080;

/**
 * What differs per board in the Debian device story. arm64: the board profile's kernel is unpacked by
 * bootm to 0x40400000 (its description says why there), as in factory-image-boot.int-spec.ts; `slowdown`
 * scales every wait, as a TCG arm64 guest boots about three times slower than the x86 one.
 */
export const DEBIAN_BOARDS: Record<
  VdevBoard,
  { debianArch: DebianArch; profile: string; buildArgs: string[]; slowdown: number }
> = {
  x86: { debianArch: 'amd64', profile: 'qemu-x86-vdev.json', buildArgs: ['--arch', 'x86'], slowdown: 1 },
  arm64: {
    debianArch: 'arm64',
    profile: 'qemu-arm64-virt.json',
    buildArgs: ['--arch', 'arm64', '--load-address', '0x40400000'],
    slowdown: 3,
  },
};

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

interface ReleaseIndex {
  artifacts: { kind: string; file: string; manifest: string; signature: string; size: number }[];
}

export type DeviceView = {
  online?: boolean;
  bootedSnapshot?: string | null;
  trialBoot?: boolean;
  lastTrialResult?: unknown;
  health?: unknown;
  snapshots?: { id: string; origin?: string }[];
};

/**
 * The Debian device story's fixture for one board (issue 10, "The real agent in a booted device"): a
 * Debian bookworm rootfs (build-debian-rootfs.sh, cached) with the bundled agent under its systemd unit and
 * an initramfs-tools initrd with the project's hook, released as v1 (full) + v2 + v3 (incremental) with
 * `cowroot-release build`, a fleet server in this process, the factory image of v1 from `cowroot-release
 * image` flashed with bmaptool, and the DebianDevice that boots it (not started). `figures` collects what
 * was measured, printed by tearDown.
 */
export class DebianHarness {
  readonly deviceId = 'debian-vdev-1';
  readonly figures: string[] = [];
  private readonly started = Date.now();
  private work = '';
  private buildHost: LoopBtrfs | undefined;
  private serverHandle: TestServer | undefined;
  private deviceHandle: DebianDevice | undefined;
  private vdevHandle: VirtualDevice | undefined;

  constructor(readonly board: VdevBoard) {}

  get server(): TestServer {
    if (!this.serverHandle) throw new Error('the harness is not set up');
    return this.serverHandle;
  }
  get device(): DebianDevice {
    if (!this.deviceHandle) throw new Error('the harness is not set up');
    return this.deviceHandle;
  }
  /** the disk as a VirtualDevice: its env and pool, read as u-boot reads them */
  get vdev(): VirtualDevice {
    if (!this.vdevHandle) throw new Error('the harness is not set up');
    return this.vdevHandle;
  }
  /** `ms` scaled by the board's slowdown */
  wait(ms: number): number {
    return ms * DEBIAN_BOARDS[this.board].slowdown;
  }

  async api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.server.httpUrl}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.server.adminToken}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status >= 300) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** Polls `probe` until it returns a value; on time-out the error carries the console's tail. */
  until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
    return pollUntil(what, probe, {
      timeoutMs,
      intervalMs: 500,
      context: () => `console tail:\n${this.deviceHandle?.log.slice(-4000)}`,
    });
  }

  deviceView(): Promise<DeviceView> {
    return this.api<DeviceView>('GET', `/devices/${this.deviceId}`);
  }

  /** The device online, reporting `snapshot` booted (trial or not); records the u-boot banner → online time. */
  async bootedInto(snapshot: string, trial: boolean, timeoutMs = this.wait(300_000)): Promise<DeviceView> {
    const view = await this.until(
      `${this.deviceId} online in ${snapshot} (trial ${trial})`,
      async () => {
        const value = await this.deviceView();
        return value.online && value.bootedSnapshot === snapshot && value.trialBoot === trial ? value : null;
      },
      timeoutMs,
    );
    this.figures.push(
      `boot into ${snapshot}${trial ? ' (trial)' : ''}: u-boot banner → reported online ${seconds(this.device.msSinceLastBoot())}`,
    );
    return view;
  }

  async events(): Promise<Record<string, unknown>[]> {
    return (await this.api<{ items: Record<string, unknown>[] }>('GET', `/devices/${this.deviceId}/events?limit=200`))
      .items;
  }

  async rollOut(version: string): Promise<string> {
    const body = {
      name: `debian vdev ${version}`,
      release: { name: 'vdev', version },
      selector: { deviceIds: [this.deviceId] },
      waves: [{ count: 1, successPercent: 100, timeoutSeconds: this.wait(900) }],
    };
    return (await this.api<{ id: string }>('POST', '/rollouts', body)).id;
  }

  private async upload(out: string, version: string, kind: string): Promise<void> {
    const index = JSON.parse(await readFile(join(out, 'release.json'), 'utf8')) as ReleaseIndex;
    const artifact = index.artifacts.find((a) => a.kind === kind);
    if (!artifact) throw new Error(`${out}/release.json has no ${kind} artifact`);
    const response = await fetch(`${this.server.httpUrl}/api/v1/releases/vdev/${version}/artifacts/${artifact.file}`, {
      method: 'PUT',
      headers: {
        Authorization: `Bearer ${this.server.adminToken}`,
        'Content-Type': 'application/octet-stream',
        'X-Cowroot-Manifest': (await readFile(join(out, artifact.manifest))).toString('base64'),
        'X-Cowroot-Signature': (await readFile(join(out, artifact.signature), 'utf8')).trim(),
      },
      body: await readFile(join(out, artifact.file)),
    });
    if (response.status !== 201)
      throw new Error(`upload ${artifact.file}: HTTP ${response.status} ${await response.text()}`);
    this.figures.push(`vdev ${version} ${kind} stream: ${artifact.size} bytes`);
  }

  /** Everything up to a powered-off device holding the factory image of v1 (see the class comment). */
  async setUp(): Promise<void> {
    const board = DEBIAN_BOARDS[this.board];
    this.work = await mkdtemp(join(tmpdir(), `cowroot-vdev-debian-${this.board}-`));
    const work = this.work;
    let mark = Date.now();
    const built = await run('bash', [join(vdevDir, 'build-artifacts.sh'), this.board]);
    const value = (key: string) => new RegExp(`^${key}=(.+)$`, 'm').exec(built)?.[1] ?? '';
    const artifacts = { uBootRom: value('u_boot_rom'), uBootInitialEnv: value('u_boot_env') };
    const tar = await debianRootfsTar(board.debianArch);
    this.figures.push(`u-boot + Debian rootfs (cached after the first run): ${seconds(Date.now() - mark)}`);

    mark = Date.now();
    const bundle = (entry: string, out: string) =>
      run(process.execPath, [join(repo, 'tools/bundle.mjs'), join(repo, entry), join(work, out), '--executable']);
    await bundle('apps/agent/src/main.ts', 'cowroot-agent.js');
    await bundle('deploy/release/src/main.ts', 'cowroot-release.js');
    const tool = (args: string[]) => run(process.execPath, [join(work, 'cowroot-release.js'), ...args]);

    const rootfs = join(work, 'rootfs');
    await mkdir(rootfs);
    await run('tar', ['-xf', tar, '-C', rootfs, '--numeric-owner']);
    await installCowroot(rootfs, {
      board: this.board,
      agentBundle: join(work, 'cowroot-agent.js'),
      bootLabel: 'COWBOOT',
      bootMount: '/uboot',
      agentOutput: 'journal+console',
      virtualHardwareOnly: true,
    });
    await prepareStoryFiles(rootfs);
    this.figures.push(
      `rootfs prepared (extract, agent, units, update-initramfs in chroot): ${seconds(Date.now() - mark)}`,
    );

    mark = Date.now();
    this.buildHost = await createLoopBtrfs({ sizeMiB: 4096, label: 'vdev-debian-build' });
    await tool(['keygen', '--out', join(work, 'release')]);
    const build = (version: string, extra: string[]) =>
      tool([
        ...['build', '--rootfs', rootfs, '--pool', this.buildHost!.mount, '--name', 'vdev', '--version', version],
        ...[...board.buildArgs, '--key', join(work, 'release.key'), '--out', join(work, `out-${version}`)],
        // zstd 3 instead of 9: the full streams are built on every run, and only the incrementals travel
        ...['--zstd-level', '3', ...extra],
      ]);
    await build('1.0.0', []);
    await writeFile(join(rootfs, 'etc/cowroot-vdev-version'), '2\n');
    await build('2.0.0', ['--base', 'vdev@1.0.0', '--delta-from', 'vdev@1.0.0']);
    await writeFile(join(rootfs, 'etc/cowroot-vdev-version'), '3\n');
    // v3's own required check fails: the release is broken as its maker defined it
    await writeFile(
      join(rootfs, 'etc/cowroot/required.d/20-vdev-selftest'),
      '#!/bin/sh\necho "vdev self-test: release 3 is broken on purpose"\nexit 3\n',
    );
    await run('chmod', ['755', join(rootfs, 'etc/cowroot/required.d/20-vdev-selftest')]);
    await build('3.0.0', ['--base', 'vdev@2.0.0', '--delta-from', 'vdev@2.0.0']);
    this.figures.push(`cowroot-release build v1 (full) + v2 + v3 (incremental): ${seconds(Date.now() - mark)}`);

    await this.startServer(work);
    const deviceDir = join(work, 'device');
    await mkdir(deviceDir);
    await this.flashFactoryImage(tool, artifacts.uBootInitialEnv, join(deviceDir, 'disk.img'));
    this.vdevHandle = await VirtualDevice.open(deviceDir, { board: this.board, ...artifacts } as VdevArtifacts);
    this.deviceHandle = new DebianDevice({
      board: this.board,
      uBootRom: artifacts.uBootRom,
      disk: this.vdev.disk,
      forwards: [
        { guestPort: GUEST_MQTT_PORT, hostPort: this.server.mqttPort },
        { guestPort: GUEST_HTTP_PORT, hostPort: Number(new URL(this.server.httpUrl).port) },
      ],
      logFile: join(deviceDir, 'serial.log'),
    });
    this.figures.push(`board ${this.board}, accelerator: ${this.device.accel}`);
  }

  /** The server, the device enrolled with a credential, the release key and releases v1–v3 uploaded. */
  private async startServer(work: string): Promise<void> {
    this.serverHandle = await startTestServer({
      env: { PUBLIC_URL: `http://${GUEST_SERVER_ADDRESS}:${GUEST_HTTP_PORT}` },
    });
    const { credential } = await this.api<{ credential: string }>('POST', '/devices', {
      id: this.deviceId,
      tags: ['debian'],
    });
    await writeFile(join(work, 'credential'), `${credential}\n`, { mode: 0o600 });
    await this.api('POST', '/signing-keys', {
      name: 'debian-vdev',
      publicKeyPem: await readFile(join(work, 'release.pub'), 'utf8'),
    });
    // v1 is on the device already (the factory image); the server takes an incremental only on a parent
    // release it holds a full stream of (PARENT_RELEASE_MISSING otherwise)
    for (const version of ['1.0.0', '2.0.0', '3.0.0']) await this.api('POST', '/releases', { name: 'vdev', version });
    await this.upload(join(work, 'out-1.0.0'), '1.0.0', 'full');
    for (const version of ['2.0.0', '3.0.0']) await this.upload(join(work, `out-${version}`), version, 'incremental');
  }

  /** `cowroot-release image` of v1 on the board's profile (with room for a Debian pool), bmaptool'd to `disk`. */
  private async flashFactoryImage(
    tool: (args: string[]) => Promise<string>,
    uBootInitialEnv: string,
    disk: string,
  ): Promise<void> {
    const work = this.work;
    const profile = JSON.parse(
      await readFile(join(repo, 'deploy/release/boards', DEBIAN_BOARDS[this.board].profile), 'utf8'),
    ) as Record<string, unknown> & { disk: Record<string, unknown> };
    profile.name = `${String(profile.name)}-debian`;
    profile.disk.sizeMiB = 3072;
    profile.bootScript = join(repo, 'uboot/boot.cmd');
    await writeFile(join(work, 'board.json'), JSON.stringify(profile, null, 2));
    const mark = Date.now();
    await tool([
      ...['image', '--release', join(work, 'out-1.0.0'), '--board', join(work, 'board.json')],
      ...['--board-env', uBootInitialEnv, '--image', join(work, 'factory.img')],
      ...['--release-key', join(work, 'release.pub'), '--device-id', this.deviceId],
      ...['--credential-file', join(work, 'credential')],
      ...['--mqtt-url', `mqtt://${GUEST_SERVER_ADDRESS}:${GUEST_MQTT_PORT}`],
      ...['--http-url', `http://${GUEST_SERVER_ADDRESS}:${GUEST_HTTP_PORT}`],
    ]);
    const imageMiB = Number((await run('du', ['-m', '--apparent-size', join(work, 'factory.img')])).split('\t')[0]);
    const mapped = /<MappedBlocksCount>\s*(\d+)/.exec(await readFile(join(work, 'factory.img.bmap'), 'utf8'))?.[1];
    this.figures.push(
      `factory image: ${seconds(Date.now() - mark)}, ${imageMiB} MiB, bmap maps ${((Number(mapped) * 4096) / 2 ** 20).toFixed(0)} MiB`,
    );
    await run('bmaptool', ['-q', 'copy', join(work, 'factory.img'), disk]);
    await rm(join(work, 'factory.img'));
  }

  async tearDown(): Promise<void> {
    await this.deviceHandle?.stop();
    this.figures.push(`whole suite: ${seconds(Date.now() - this.started)}`);
    console.log(`debian device figures [${this.board}]:\n  ${this.figures.join('\n  ')}`);
    await this.serverHandle?.close();
    await this.buildHost?.cleanup();
    if (this.work && process.env.COWROOT_KEEP_WORK !== '1') await rm(this.work, { recursive: true, force: true });
  }
}

/**
 * What the test reads back besides the agent: the release's version, a per-boot stamp a commit must carry
 * along, and the agent's memory, reported by a wanted check of every trial boot (its output is in the state).
 */
async function prepareStoryFiles(rootfs: string): Promise<void> {
  await writeFile(join(rootfs, 'etc/cowroot-vdev-version'), '1\n');
  await writeFile(
    join(rootfs, 'etc/systemd/system/cowroot-vdev-stamp.service'),
    '[Unit]\nDescription=cowroot vdev: boot stamp\n\n[Service]\nType=oneshot\n' +
      'ExecStart=/bin/sh -c "cat /proc/sys/kernel/random/boot_id > /etc/cowroot-vdev-boot-id"\n\n' +
      '[Install]\nWantedBy=multi-user.target\n',
  );
  await run('systemctl', [`--root=${rootfs}`, 'enable', 'cowroot-vdev-stamp.service']);
  await writeFile(
    join(rootfs, 'etc/cowroot/wanted.d/50-agent-rss'),
    '#!/bin/sh\nfor pid in $(pidof node); do grep -E "VmRSS|VmHWM" /proc/$pid/status; done\n',
  );
  await run('chmod', ['755', join(rootfs, 'etc/cowroot/wanted.d/50-agent-rss')]);
}
