import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createLoopBtrfs, type LoopBtrfs } from '@cowroot/device/testing';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { startTestServer, type TestServer } from '../../apps/server/test/start-test-server';
import { DebianDevice, GUEST_SERVER_ADDRESS } from './debian-device';
import { debianRootfsTar, installCowroot } from './debian-rootfs';
import { VirtualDevice } from './virtual-device';
import type { VdevArtifacts } from './vdev-artifacts';

const execFileAsync = promisify(execFile);
const repo = resolve(__dirname, '../..');
const GUEST_MQTT_PORT = 1883;
const GUEST_HTTP_PORT = 8080;

async function run(command: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (error) {
    const failure = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `${command} ${args.join(' ')} failed: ${failure.message}\n${failure.stdout ?? ''}${failure.stderr ?? ''}`,
    );
  }
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

interface ReleaseIndex {
  artifacts: { kind: string; file: string; manifest: string; signature: string; size: number }[];
}

/**
 * Issue 10, "The real agent in a booted device": a Debian bookworm rootfs (build-debian-rootfs.sh,
 * cached) with the bundled agent under its systemd unit and an initrd made by initramfs-tools with the
 * project's hook, released with `cowroot-release build`, flashed with `cowroot-release image`, booted by
 * the real u-boot in QEMU. The fleet server runs in this process; the guest reaches it only through QEMU
 * user networking's guestfwd to 127.0.0.1. One guest lives through the whole story (its own reboots):
 * v2 as an incremental stream → trial → confirmed → accepted; v3 whose required check fails → rejected →
 * fallback → rolled-back with the check's output; then commit of the workspace → trial → booted.
 */
describePrivileged(
  'the real agent in a booted Debian device [x86]',
  [
    requireRoot,
    requireLoopDevices,
    ...['btrfs', 'mkfs.btrfs', 'mkimage', 'mkenvimage', 'zstd', 'rsync', 'sfdisk', 'mmdebstrap', 'chroot'].map(
      requireCommand,
    ),
    ...['mkfs.vfat', 'mcopy', 'fw_printenv', 'bmaptool', 'socat', 'qemu-system-x86_64'].map(requireCommand),
  ],
  () => {
    const started = Date.now();
    const figures: string[] = [];
    let work: string;
    let buildHost: LoopBtrfs | undefined;
    let server: TestServer | undefined;
    let device: DebianDevice | undefined;
    let vdev: VirtualDevice;
    const deviceId = 'debian-vdev-1';

    async function api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
      const response = await fetch(`${server!.httpUrl}/api/v1${path}`, {
        method,
        headers: { Authorization: `Bearer ${server!.adminToken}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      if (response.status >= 300) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
      return (text ? JSON.parse(text) : {}) as T;
    }

    async function until<T>(
      what: string,
      probe: () => Promise<T | null | undefined | false>,
      timeoutMs: number,
    ): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      let lastError = '';
      for (;;) {
        const value = await probe().catch((error: Error) => {
          lastError = error.message;
          return null;
        });
        if (value) return value;
        if (Date.now() > deadline) {
          throw new Error(
            `timed out waiting for ${what}${lastError ? ` (${lastError})` : ''}; console tail:\n${device?.log.slice(-4000)}`,
          );
        }
        await new Promise((done) => setTimeout(done, 500));
      }
    }

    type DeviceView = {
      online?: boolean;
      bootedSnapshot?: string | null;
      trialBoot?: boolean;
      lastTrialResult?: unknown;
      health?: unknown;
      snapshots?: { id: string; origin?: string }[];
    };
    const deviceView = () => api<DeviceView>('GET', `/devices/${deviceId}`);
    /** the device online, reporting `snapshot` booted (trial or not); how long since the last u-boot banner */
    async function bootedInto(snapshot: string, trial: boolean, timeoutMs = 300_000): Promise<DeviceView> {
      const view = await until(
        `${deviceId} online in ${snapshot} (trial ${trial})`,
        async () => {
          const value = await deviceView();
          return value.online && value.bootedSnapshot === snapshot && value.trialBoot === trial ? value : null;
        },
        timeoutMs,
      );
      figures.push(
        `boot into ${snapshot}${trial ? ' (trial)' : ''}: u-boot banner → reported online ${seconds(device!.msSinceLastBoot())}`,
      );
      return view;
    }
    const events = async () =>
      (await api<{ items: Record<string, unknown>[] }>('GET', `/devices/${deviceId}/events?limit=200`)).items;

    async function upload(out: string, version: string, kind: string): Promise<void> {
      const index = JSON.parse(await readFile(join(out, 'release.json'), 'utf8')) as ReleaseIndex;
      const artifact = index.artifacts.find((a) => a.kind === kind);
      if (!artifact) throw new Error(`${out}/release.json has no ${kind} artifact`);
      const response = await fetch(`${server!.httpUrl}/api/v1/releases/vdev/${version}/artifacts/${artifact.file}`, {
        method: 'PUT',
        headers: {
          Authorization: `Bearer ${server!.adminToken}`,
          'Content-Type': 'application/octet-stream',
          'X-Cowroot-Manifest': (await readFile(join(out, artifact.manifest))).toString('base64'),
          'X-Cowroot-Signature': (await readFile(join(out, artifact.signature), 'utf8')).trim(),
        },
        body: await readFile(join(out, artifact.file)),
      });
      if (response.status !== 201)
        throw new Error(`upload ${artifact.file}: HTTP ${response.status} ${await response.text()}`);
      figures.push(`vdev ${version} ${kind} stream: ${artifact.size} bytes`);
    }

    async function rollOut(version: string): Promise<string> {
      return (
        await api<{ id: string }>('POST', '/rollouts', {
          name: `debian vdev ${version}`,
          release: { name: 'vdev', version },
          selector: { deviceIds: [deviceId] },
          waves: [{ count: 1, successPercent: 100, timeoutSeconds: 900 }],
        })
      ).id;
    }

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'cowroot-vdev-debian-'));
      let mark = Date.now();
      const built = await run('bash', [join(__dirname, 'build-artifacts.sh'), 'x86']);
      const value = (key: string) => new RegExp(`^${key}=(.+)$`, 'm').exec(built)?.[1] ?? '';
      const artifacts = { uBootRom: value('u_boot_rom'), uBootInitialEnv: value('u_boot_env') };
      const tar = await debianRootfsTar('amd64');
      figures.push(`u-boot + Debian rootfs (cached after the first run): ${seconds(Date.now() - mark)}`);

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
        agentBundle: join(work, 'cowroot-agent.js'),
        bootLabel: 'COWBOOT',
        bootMount: '/uboot',
        agentOutput: 'journal+console',
        virtualHardwareOnly: true,
      });
      // what the test reads back: the release's version, and a per-boot stamp a commit must carry along
      await writeFile(join(rootfs, 'etc/cowroot-vdev-version'), '1\n');
      await writeFile(
        join(rootfs, 'etc/systemd/system/cowroot-vdev-stamp.service'),
        '[Unit]\nDescription=cowroot vdev: boot stamp\n\n[Service]\nType=oneshot\n' +
          'ExecStart=/bin/sh -c "cat /proc/sys/kernel/random/boot_id > /etc/cowroot-vdev-boot-id"\n\n' +
          '[Install]\nWantedBy=multi-user.target\n',
      );
      await run('systemctl', [`--root=${rootfs}`, 'enable', 'cowroot-vdev-stamp.service']);
      // the agent's memory, reported by a wanted check of every trial boot (its output is in the state)
      await writeFile(
        join(rootfs, 'etc/cowroot/wanted.d/50-agent-rss'),
        '#!/bin/sh\nfor pid in $(pidof node); do grep -E "VmRSS|VmHWM" /proc/$pid/status; done\n',
      );
      await run('chmod', ['755', join(rootfs, 'etc/cowroot/wanted.d/50-agent-rss')]);
      figures.push(
        `rootfs prepared (extract, agent, units, update-initramfs in chroot): ${seconds(Date.now() - mark)}`,
      );

      mark = Date.now();
      buildHost = await createLoopBtrfs({ sizeMiB: 4096, label: 'vdev-debian-build' });
      await tool(['keygen', '--out', join(work, 'release')]);
      const build = (version: string, extra: string[]) =>
        tool([
          ...['build', '--rootfs', rootfs, '--pool', buildHost!.mount, '--name', 'vdev', '--version', version],
          ...['--arch', 'x86', '--key', join(work, 'release.key'), '--out', join(work, `out-${version}`)],
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
      figures.push(`cowroot-release build v1 (full) + v2 + v3 (incremental): ${seconds(Date.now() - mark)}`);

      server = await startTestServer({ env: { PUBLIC_URL: `http://${GUEST_SERVER_ADDRESS}:${GUEST_HTTP_PORT}` } });
      const { credential } = await api<{ credential: string }>('POST', '/devices', { id: deviceId, tags: ['debian'] });
      await writeFile(join(work, 'credential'), `${credential}\n`, { mode: 0o600 });
      await api('POST', '/signing-keys', {
        name: 'debian-vdev',
        publicKeyPem: await readFile(join(work, 'release.pub'), 'utf8'),
      });
      // v1 is on the device already (the factory image); the server takes an incremental only on a parent
      // release it holds a full stream of (PARENT_RELEASE_MISSING otherwise)
      for (const version of ['1.0.0', '2.0.0', '3.0.0']) await api('POST', '/releases', { name: 'vdev', version });
      await upload(join(work, 'out-1.0.0'), '1.0.0', 'full');
      for (const version of ['2.0.0', '3.0.0']) await upload(join(work, `out-${version}`), version, 'incremental');

      // the board profile of the busybox virtual device, with room for a Debian pool
      const profile = JSON.parse(
        await readFile(join(repo, 'deploy/release/boards/qemu-x86-vdev.json'), 'utf8'),
      ) as Record<string, unknown> & { disk: Record<string, unknown> };
      profile.name = 'qemu-x86_64-debian';
      profile.disk.sizeMiB = 3072;
      profile.bootScript = join(repo, 'uboot/boot.cmd');
      await writeFile(join(work, 'board.json'), JSON.stringify(profile, null, 2));
      const deviceDir = join(work, 'device');
      await mkdir(deviceDir);
      mark = Date.now();
      await tool([
        ...['image', '--release', join(work, 'out-1.0.0'), '--board', join(work, 'board.json')],
        ...['--board-env', artifacts.uBootInitialEnv, '--image', join(work, 'factory.img')],
        ...[
          '--release-key',
          join(work, 'release.pub'),
          '--device-id',
          deviceId,
          '--credential-file',
          join(work, 'credential'),
        ],
        ...['--mqtt-url', `mqtt://${GUEST_SERVER_ADDRESS}:${GUEST_MQTT_PORT}`],
        ...['--http-url', `http://${GUEST_SERVER_ADDRESS}:${GUEST_HTTP_PORT}`],
      ]);
      const imageMiB = Number((await run('du', ['-m', '--apparent-size', join(work, 'factory.img')])).split('\t')[0]);
      const mapped = /<MappedBlocksCount>\s*(\d+)/.exec(await readFile(join(work, 'factory.img.bmap'), 'utf8'))?.[1];
      figures.push(
        `factory image: ${seconds(Date.now() - mark)}, ${imageMiB} MiB, bmap maps ${((Number(mapped) * 4096) / 2 ** 20).toFixed(0)} MiB`,
      );
      await run('bmaptool', ['-q', 'copy', join(work, 'factory.img'), join(deviceDir, 'disk.img')]);
      await rm(join(work, 'factory.img'));
      vdev = await VirtualDevice.open(deviceDir, { board: 'x86', ...artifacts } as VdevArtifacts);

      const forwards = [
        { guestPort: GUEST_MQTT_PORT, hostPort: server.mqttPort },
        { guestPort: GUEST_HTTP_PORT, hostPort: Number(new URL(server.httpUrl).port) },
      ];
      device = new DebianDevice({
        uBootRom: artifacts.uBootRom,
        disk: vdev.disk,
        forwards,
        logFile: join(deviceDir, 'serial.log'),
      });
      figures.push(`accelerator: ${device.accel}`);
    }, 1_800_000);

    afterAll(async () => {
      await device?.stop();
      figures.push(`whole suite: ${seconds(Date.now() - started)}`);
      console.log(`debian device figures:\n  ${figures.join('\n  ')}`);
      await server?.close();
      await buildHost?.cleanup();
      if (work && process.env.COWROOT_KEEP_WORK !== '1') await rm(work, { recursive: true, force: true });
    });

    it('boots the factory image: the agent under systemd registers over MQTT through guestfwd', async () => {
      device!.start();
      await device!.waitFor(/cowroot: booting snapshot vdev-1\.0\.0 trial=0/, 0, 120_000);
      await device!.waitFor(/cowroot: workspace created from snapshot vdev-1\.0\.0/, 0, 120_000);
      const view = await bootedInto('vdev-1.0.0', false);
      expect(view.snapshots?.map((s) => s.id)).toContain('vdev-1.0.0');
    }, 600_000);

    it('rolls out v2 as an incremental stream: trial through u-boot, health checks, confirmed, accepted', async () => {
      const rolloutId = await rollOut('2.0.0');
      const from = device!.log.length;
      await device!.waitFor(/cowroot: booting snapshot vdev-2\.0\.0 trial=1/, from, 600_000);
      const trial = await bootedInto('vdev-2.0.0', true);
      const done = await until(
        'the v2 rollout to complete',
        async () => {
          const rollout = await api<{ status: string; counts: Record<string, number> }>(
            'GET',
            `/rollouts/${rolloutId}`,
          );
          return rollout.status === 'completed' ? rollout : null;
        },
        300_000,
      );
      expect(done.counts).toEqual({ confirmed: 1 });
      const execution = (await api<{ items: Record<string, unknown>[] }>('GET', `/rollouts/${rolloutId}/executions`))
        .items[0];
      expect(execution).toMatchObject({
        state: 'confirmed',
        artifact: expect.objectContaining({ kind: 'incremental' }),
      });
      const health = ((await deviceView()).health ?? trial.health) as {
        checks: { name: string; passed: boolean; outputTail?: string }[];
      } | null;
      expect(health?.checks.find((check) => check.name === 'server-reachable')).toMatchObject({ passed: true });
      // /proc/<pid>/status of the agent's node, printed by the wanted check while the agent ran the checks
      const status = health?.checks.find((check) => check.name === '50-agent-rss')?.outputTail ?? '';
      const kib = (field: string) => Number(new RegExp(`${field}:\\s*(\\d+) kB`).exec(status)?.[1]);
      if (kib('VmRSS')) {
        figures.push(
          `agent in the trial boot: RSS ${(kib('VmRSS') / 1024).toFixed(1)} MiB, peak ${(kib('VmHWM') / 1024).toFixed(1)} MiB`,
        );
      }

      // confirmed means "u-boot makes it current at the next boot" (docs/agent.md §5): reboot it from the server
      await api('POST', `/devices/${deviceId}/commands`, { type: 'reboot' });
      const rebootFrom = device!.log.length;
      await device!.waitFor(/cowroot: booting snapshot vdev-2\.0\.0 trial=0/, rebootFrom, 300_000);
      const accepted = await bootedInto('vdev-2.0.0', false);
      expect(accepted.lastTrialResult).toEqual({ snapshot: 'vdev-2.0.0', outcome: 'accepted' });
    }, 1_200_000);

    it('rolls out v3 whose required check fails: rejected, u-boot falls back, rolled-back with the output', async () => {
      const rolloutId = await rollOut('3.0.0');
      const from = device!.log.length;
      await device!.waitFor(/cowroot: booting snapshot vdev-3\.0\.0 trial=1/, from, 600_000);
      await device!.waitFor(/cowroot: booting snapshot vdev-2\.0\.0 trial=0/, from, 600_000);
      await bootedInto('vdev-2.0.0', false);
      const rolledBack = await until(
        'the rolled-back event',
        async () => (await events()).find((event) => event.type === 'rolled-back'),
        300_000,
      );
      expect(rolledBack.payload).toMatchObject({
        snapshot: 'vdev-3.0.0',
        rollback: { by: 'health-check', check: '20-vdev-selftest', restoredSnapshot: 'vdev-2.0.0' },
      });
      expect(JSON.stringify(rolledBack.payload)).toContain('vdev self-test: release 3 is broken on purpose');
      const execution = (await api<{ items: Record<string, unknown>[] }>('GET', `/rollouts/${rolloutId}/executions`))
        .items[0];
      expect(execution.state).toBe('rejected-by-health-check');
      // read while QEMU runs: the agent's env writes are fsynced, and mtools only reads the FAT
      expect((await vdev.readEnv()).cowroot_current).toBe('vdev-2.0.0');
    }, 1_200_000);

    it('commits the running workspace: a new snapshot, tried, confirmed and booted', async () => {
      const command = await api<{ id: string }>('POST', `/devices/${deviceId}/commands`, {
        type: 'commit',
        snapshot: 'vdev-2.0.0-committed',
      });
      const staged = await until(
        'the commit staged',
        async () => (await events()).find((event) => event.type === 'staged' && event.commandId === command.id),
        300_000,
      );
      const snapshot = (staged.payload as { snapshot: string }).snapshot;
      expect(snapshot).toBe('vdev-2.0.0-committed');
      await bootedInto(snapshot, true);
      await until(
        'the commit confirmed',
        async () => (await events()).find((event) => event.type === 'confirmed' && event.commandId === command.id),
        300_000,
      );
      await api('POST', `/devices/${deviceId}/commands`, { type: 'reboot' });
      const view = await bootedInto(snapshot, false);
      expect(view.snapshots?.find((s) => s.id === snapshot)).toMatchObject({ origin: 'committed' });
      await device!.stop();
      // the committed snapshot holds what the workspace had at commit time: v2's files and a boot stamp
      await vdev.withPool(async (pool) => {
        expect(await readFile(join(pool, 'snapshots', snapshot, 'etc/cowroot-vdev-version'), 'utf8')).toBe('2\n');
        expect(await readFile(join(pool, 'snapshots', snapshot, 'etc/cowroot-vdev-boot-id'), 'utf8')).toMatch(
          /^[0-9a-f-]{36}\n$/,
        );
        // the parent it was committed on stays as it was released (vdev-1.0.0, the oldest of four, is gone
        // to the agent's start-up GC: retention 3 besides the booted one, docs/agent.md §2)
        expect(await readFile(join(pool, 'snapshots/vdev-2.0.0/etc/cowroot-vdev-version'), 'utf8')).toBe('2\n');
      });
      expect((await vdev.readEnv()).cowroot_current).toBe(snapshot);
      figures.push(
        `boots: ${device!
          .boots()
          .map((b) => (b.ms === null ? 'last' : seconds(b.ms)))
          .join(', ')}`,
      );
    }, 1_200_000);
  },
);
