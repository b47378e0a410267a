import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ArtifactKind, ReleaseIndex, parseManifest } from '@cowroot/protocol';
import { CommandRunner, SnapshotStore } from '@cowroot/device';
import { LoopBtrfs, LoopBtrfs as DeviceLoop, createLoopBtrfs } from '@cowroot/device/testing';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { writeFakeRootfs } from './fake-rootfs';

const runner = new CommandRunner();

function tool(bundle: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [bundle, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describePrivileged(
  'cowroot-release build --binary-delta / --delta-from-fleet on a real btrfs pool',
  [
    requireRoot,
    requireCommand('btrfs'),
    requireCommand('mkfs.btrfs'),
    requireCommand('mkimage'),
    requireCommand('zstd'),
    requireCommand('rsync'),
    requireLoopDevices,
  ],
  () => {
    let work: string;
    let bundle: string;
    let buildHost: LoopBtrfs | undefined;
    let device: DeviceLoop | undefined;
    let rootfs: string;
    const out = (version: string) => join(work, 'out', version);
    const build = (version: string, extra: string[]) =>
      tool(bundle, [
        'build',
        ...['--rootfs', rootfs, '--pool', buildHost!.mount, '--name', 'demo', '--version', version],
        ...['--key', join(work, 'release.key'), '--out', out(version), '--arch', 'x86', ...extra],
      ]);

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'cowroot-release-delta-'));
      bundle = join(work, 'cowroot-release.js');
      await runner.run(process.execPath, [
        resolve(__dirname, '../../../tools/bundle.mjs'),
        resolve(__dirname, '../src/main.ts'),
        bundle,
        '--executable',
      ]);
      await mkdir(join(work, 'build-host'));
      buildHost = await createLoopBtrfs({ runner, label: 'build-host', sizeMiB: 256 });
      device = await createLoopBtrfs({ sizeMiB: 256, label: 'release-delta' });
      rootfs = join(work, 'rootfs');
      await writeFakeRootfs(rootfs);
      expect((await tool(bundle, ['keygen', '--out', join(work, 'release')])).code).toBe(0);
    }, 120_000);

    afterAll(async () => {
      await device?.cleanup();
      await buildHost?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('writes a signed delta artifact for each fleet base it can, which a device rebuilds and receives', async () => {
      expect((await build('1.0', [])).code).toBe(0);
      // 1.1: a library upgraded in place (a few KiB of 3 MiB changed)
      const lib = await readFile(join(rootfs, 'usr/lib/libbig.so'));
      lib.write('patched!'.repeat(512), 1_000_000);
      await writeFile(join(rootfs, 'usr/lib/libbig.so'), lib);
      const fleet = join(work, 'bases.json');
      // what `cowroot releases bases demo --json` prints: 0.9 is on devices but no longer in the pool
      await writeFile(
        fleet,
        JSON.stringify({
          name: 'demo',
          bases: [
            { version: '1.0', devices: 3 },
            { version: '0.9', devices: 1 },
          ],
        }),
      );
      const run = await build('1.1', ['--base', 'demo@1.0', '--delta-from-fleet', fleet, '--binary-delta']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/delta from demo@1.0: held by the fleet/);
      expect(run.stdout).toMatch(/skipping fleet base demo@0.9: not in the pool/);

      const index = JSON.parse(await readFile(join(out('1.1'), 'release.json'), 'utf8')) as ReleaseIndex;
      expect(index.artifacts.map((a) => [a.kind, a.file])).toEqual([
        [ArtifactKind.Full, 'demo-1.1-full.btrfs.zst'],
        [ArtifactKind.Incremental, 'demo-1.1-from-1.0.btrfs.zst'],
        [ArtifactKind.Delta, 'demo-1.1-from-1.0.delta.zst'],
      ]);
      const [, incremental, delta] = index.artifacts;
      expect(delta.size * 5).toBeLessThan(incremental.size);
      const manifestPath = join(out('1.1'), delta.manifest);
      const verify = await tool(bundle, [
        'verify',
        ...['--manifest', manifestPath, '--signature', join(out('1.1'), delta.signature)],
        ...['--public-key', join(work, 'release.pub'), '--artifact', join(out('1.1'), delta.file)],
      ]);
      expect(verify.stdout).toMatch(/signature ok: demo@1.1 delta demo-1.1-from-1.0.delta.zst/);
      const manifest = parseManifest(await readFile(manifestPath));
      if (!manifest.ok) throw new Error(manifest.message);
      // the plain stream it names is the incremental artifact's content
      const plain = execFileSync('zstd', ['-d', '-c', '-q', join(out('1.1'), incremental.file)]);
      expect(manifest.value.reconstructs?.size).toBe(plain.length);
      // the default format, named so the server offers it only to devices that read it
      expect(manifest.value.deltaFormat).toBe(3);

      const store = new SnapshotStore({ poolPath: device!.mount });
      await store.init();
      const full = await open(join(out('1.0'), 'demo-1.0-full.btrfs.zst'), 'r');
      const base = parseManifest(await readFile(join(out('1.0'), 'demo-1.0-full.btrfs.zst.manifest.json')));
      if (!base.ok) throw new Error(base.message);
      await store.receive(
        { fd: full.fd, through: { command: 'zstd', args: ['-d', '-c', '-q'] } },
        {
          snapshotId: 'demo-1.0',
          release: { name: 'demo', version: '1.0' },
          expectedReceivedUuid: base.value.snapshotUuid,
        },
      );
      await full.close();
      const file = await open(join(out('1.1'), delta.file), 'r');
      const received = await store.receiveDelta(
        { fd: file.fd, compression: 'zstd' },
        { parentId: 'demo-1.0', reconstructs: manifest.value.reconstructs! },
        {
          snapshotId: 'demo-1.1',
          release: { name: 'demo', version: '1.1' },
          expectedReceivedUuid: manifest.value.snapshotUuid,
        },
      );
      await file.close();
      expect(received.receivedUuid).toBe(index.snapshotUuid);
      execFileSync('diff', [
        '-r',
        '--no-dereference',
        join(buildHost!.mount, 'releases/demo-1.1'),
        store.snapshotPath('demo-1.1'),
      ]);
    });

    it('refuses a --delta-from-fleet file for another name, and a bad window, in one line', async () => {
      const other = join(work, 'other.json');
      await writeFile(other, JSON.stringify({ name: 'other', bases: [] }));
      const wrong = await build('1.2', ['--base', 'demo@1.1', '--delta-from-fleet', other]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(
        /^cowroot-release: --delta-from-fleet .* lists the bases of "other", not of demo\n$/,
      );
      const window = await build('1.2', ['--delta-window-log', '40']);
      expect(window.stderr).toMatch(/^cowroot-release: --delta-window-log must be 10-31, got 40\n$/);
    });
  },
);
