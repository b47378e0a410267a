import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BtrfsAdapter, CommandRunner } from '@cowroot/device';
import { LoopBtrfs, createLoopBtrfs } from '@cowroot/device/testing';
import { ArtifactKind, parseManifest } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { ReleaseIndex } from '@cowroot/protocol';
import { writeFakeRootfs } from './fake-rootfs';

interface ToolRun {
  code: number;
  stdout: string;
  stderr: string;
}

const here = __dirname;
const runner = new CommandRunner();
const btrfs = new BtrfsAdapter(runner);

/** Runs the built bundle with plain node, as an operator on the build host would. */
function tool(bundle: string, args: string[]): Promise<ToolRun> {
  return new Promise((done) => {
    execFile(process.execPath, [bundle, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

function expectOneLineFailure(run: ToolRun, pattern: RegExp): void {
  expect(run.code).toBe(1);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^cowroot-release: /);
  expect(lines[0]).toMatch(pattern);
}

async function readIndex(dir: string): Promise<ReleaseIndex> {
  return JSON.parse(await readFile(join(dir, 'release.json'), 'utf8')) as ReleaseIndex;
}

/** `zstd -d < artifact | btrfs receive` as a device applies an artifact (the device core's own receive). */
async function receive(artifact: string, into: string): Promise<void> {
  await btrfs.receive({ file: artifact, through: { command: 'zstd', args: ['-q', '-d', '-c'] } }, into);
}

async function sameTree(left: string, right: string, exclude: string[] = []): Promise<void> {
  // diff exits 1 on a difference, which the runner turns into an error that lists it
  await runner.run('diff', ['-r', '--no-dereference', ...exclude.flatMap((name) => ['-x', name]), left, right]);
}

describePrivileged(
  'cowroot-release on a real btrfs pool',
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
    let device: LoopBtrfs | undefined;
    let rootfs: string;
    let key: string;
    let publicKey: string;
    let pool: string;
    const out = (release: string) => join(work, 'out', release);
    const build = (release: string, extra: string[] = []) => {
      const [name, version] = release.split('@');
      return tool(bundle, [
        'build',
        '--rootfs',
        rootfs,
        '--pool',
        pool,
        '--name',
        name,
        '--version',
        version,
        '--key',
        key,
        '--out',
        out(release),
        '--arch',
        'x86',
        ...extra,
      ]);
    };

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'cowroot-release-'));
      bundle = join(work, 'cowroot-release.js');
      await runner.run(process.execPath, [
        resolve(here, '../../../tools/bundle.mjs'),
        resolve(here, '../src/main.ts'),
        bundle,
        '--executable',
      ]);
      buildHost = await createLoopBtrfs({ sizeMiB: 256, label: 'release-build-host' });
      device = await createLoopBtrfs({ sizeMiB: 256, label: 'release-device' });
      pool = buildHost.mount;
      rootfs = join(work, 'rootfs');
      await writeFakeRootfs(rootfs);
      const keygen = await tool(bundle, ['keygen', '--out', join(work, 'release')]);
      expect(keygen.code).toBe(0);
      key = join(work, 'release.key');
      publicKey = join(work, 'release.pub');
    });

    afterAll(async () => {
      await device?.cleanup();
      await buildHost?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('builds a full release: u-boot images in /boot, read-only snapshot, signed manifest', async () => {
      const run = await build('demo@1.0', ['--description', 'first release']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);

      const index = await readIndex(out('demo@1.0'));
      expect(index).toMatchObject({
        format: 'cowroot-release/1',
        name: 'demo',
        version: '1.0',
        description: 'first release',
      });
      expect(index.artifacts).toEqual([
        expect.objectContaining({
          kind: ArtifactKind.Full,
          file: 'demo-1.0-full.btrfs.zst',
          manifest: 'demo-1.0-full.btrfs.zst.manifest.json',
          signature: 'demo-1.0-full.btrfs.zst.manifest.sig',
          parent: null,
        }),
      ]);

      const snapshot = await btrfs.show(join(pool, 'releases', 'demo-1.0'));
      expect(snapshot.readOnly).toBe(true);
      expect(index.snapshotUuid).toBe(snapshot.uuid);

      const { stdout: kernelImage } = await runner.run('mkimage', ['-l', join(pool, 'releases/demo-1.0/boot/uImage')]);
      expect(kernelImage).toMatch(/Intel x86 Linux Kernel Image \(no loading done\) \(uncompressed\)/);
      expect(kernelImage).toMatch(/Load Address: 00000000/);
      const { stdout: initrdImage } = await runner.run('mkimage', ['-l', join(pool, 'releases/demo-1.0/boot/uInitrd')]);
      expect(initrdImage).toMatch(/Intel x86 Linux RAMDisk Image \(uncompressed\)/);
      // the rootfs itself is left as it was
      await expect(readdir(join(rootfs, 'boot'))).resolves.not.toContain('uImage');
    });

    it('builds 1.1 on top of 1.0 with an incremental stream much smaller than the full one', async () => {
      await writeFile(join(rootfs, 'etc', 'hostname'), 'device-1-1\n');
      await writeFile(join(rootfs, 'etc', 'os-release'), 'ID=cowroot-test\nVERSION_ID=1.1\n');
      await unlink(join(rootfs, 'var/lib/obsolete'));
      await writeFile(join(rootfs, 'usr/bin', 'new-tool'), 'echo new\n', { mode: 0o755 });

      const run = await build('demo@1.1', ['--base', 'demo@1.0', '--delta-from', 'demo@1.0']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/uImage from .* \(unchanged\)/);

      const base = await btrfs.show(join(pool, 'releases', 'demo-1.0'));
      const release = await btrfs.show(join(pool, 'releases', 'demo-1.1'));
      expect(release.readOnly).toBe(true);
      expect(release.parentUuid).toBe(base.uuid);

      const index = await readIndex(out('demo@1.1'));
      const [full, incremental] = index.artifacts;
      expect(full.kind).toBe(ArtifactKind.Full);
      expect(incremental).toMatchObject({
        kind: ArtifactKind.Incremental,
        file: 'demo-1.1-from-1.0.btrfs.zst',
        parent: { name: 'demo', version: '1.0' },
      });
      const manifest = parseManifest(await readFile(join(out('demo@1.1'), incremental.manifest)));
      if (!manifest.ok) throw new Error(manifest.message);
      expect(manifest.value.snapshotUuid).toBe(release.uuid);
      expect(manifest.value.parent).toEqual({ release: { name: 'demo', version: '1.0' }, snapshotUuid: base.uuid });
      console.log(
        `full ${full.size} bytes, incremental ${incremental.size} bytes (${((incremental.size / full.size) * 100).toFixed(2)} %)`,
      );
      expect(incremental.size * 20).toBeLessThan(full.size);
    });

    it('verifies every manifest, signature and artifact, and rejects tampering', async () => {
      for (const release of ['demo@1.0', 'demo@1.1']) {
        const index = await readIndex(out(release));
        for (const artifact of index.artifacts) {
          const dir = out(release);
          const run = await tool(bundle, [
            'verify',
            '--manifest',
            join(dir, artifact.manifest),
            '--signature',
            join(dir, artifact.signature),
            '--public-key',
            publicKey,
            '--artifact',
            join(dir, artifact.file),
          ]);
          expect(run.stderr).toBe('');
          expect(run.code).toBe(0);
          expect(run.stdout).toMatch(/signature ok[\s\S]*artifact ok/);
        }
      }
      const dir = out('demo@1.0');
      const file = 'demo-1.0-full.btrfs.zst';
      const tampered = join(work, 'tampered.zst');
      await copyFile(join(dir, file), tampered);
      await appendFile(tampered, 'x');
      const badArtifact = await tool(bundle, [
        'verify',
        '--manifest',
        join(dir, `${file}.manifest.json`),
        '--signature',
        join(dir, `${file}.manifest.sig`),
        '--public-key',
        publicKey,
        '--artifact',
        tampered,
      ]);
      expectOneLineFailure(badArtifact, /bytes, the manifest says/);

      const editedManifest = join(work, 'edited.manifest.json');
      await writeFile(
        editedManifest,
        (await readFile(join(dir, `${file}.manifest.json`), 'utf8')).replace('first release', 'first releasE'),
      );
      const badManifest = await tool(bundle, [
        'verify',
        '--manifest',
        editedManifest,
        '--signature',
        join(dir, `${file}.manifest.sig`),
        '--public-key',
        publicKey,
      ]);
      expectOneLineFailure(badManifest, /does not match manifest/);

      await tool(bundle, ['keygen', '--out', join(work, 'other')]);
      const otherKey = await tool(bundle, [
        'verify',
        '--manifest',
        join(dir, `${file}.manifest.json`),
        '--signature',
        join(dir, `${file}.manifest.sig`),
        '--public-key',
        join(work, 'other.pub'),
      ]);
      expectOneLineFailure(otherKey, /does not match manifest/);
    });

    it('streams received on a second btrfs give snapshots whose received_uuid is the manifest snapshotUuid', async () => {
      const snapshots = join(device!.mount, 'snapshots');
      await mkdir(snapshots);
      const full = parseManifest(await readFile(join(out('demo@1.0'), 'demo-1.0-full.btrfs.zst.manifest.json')));
      const incremental = parseManifest(
        await readFile(join(out('demo@1.1'), 'demo-1.1-from-1.0.btrfs.zst.manifest.json')),
      );
      if (!full.ok || !incremental.ok) throw new Error('manifests do not parse');

      await receive(join(out('demo@1.0'), 'demo-1.0-full.btrfs.zst'), snapshots);
      await receive(join(out('demo@1.1'), 'demo-1.1-from-1.0.btrfs.zst'), snapshots);

      const received10 = await btrfs.show(join(snapshots, 'demo-1.0'));
      const received11 = await btrfs.show(join(snapshots, 'demo-1.1'));
      expect(received10.receivedUuid).toBe(full.value.snapshotUuid);
      expect(received11.receivedUuid).toBe(incremental.value.snapshotUuid);
      expect(received11.readOnly).toBe(true);

      // what arrived is the release as built, and that is the rootfs plus the two u-boot images
      await sameTree(join(pool, 'releases', 'demo-1.1'), join(snapshots, 'demo-1.1'));
      await sameTree(rootfs, join(snapshots, 'demo-1.1'), ['uImage', 'uInitrd']);
      await expect(readFile(join(snapshots, 'demo-1.1', 'etc/hostname'), 'utf8')).resolves.toBe('device-1-1\n');
      await expect(readFile(join(snapshots, 'demo-1.0', 'etc/hostname'), 'utf8')).resolves.toBe('device\n');
    });

    it('accepts an older ancestor and refuses a release that is not one', async () => {
      await writeFile(join(rootfs, 'etc', 'hostname'), 'device-1-2\n');
      const grandchild = await build('demo@1.2', [
        '--base',
        'demo@1.1',
        '--delta-from',
        'demo@1.0',
        '--delta-from',
        'demo@1.1',
      ]);
      expect(grandchild.stderr).toBe('');
      expect(grandchild.code).toBe(0);
      expect((await readIndex(out('demo@1.2'))).artifacts.map((a) => a.file)).toEqual([
        'demo-1.2-full.btrfs.zst',
        'demo-1.2-from-1.0.btrfs.zst',
        'demo-1.2-from-1.1.btrfs.zst',
      ]);

      const other = await build('other@1.0');
      expect(other.code).toBe(0);
      const unrelated = await build('demo@1.3', ['--base', 'demo@1.2', '--delta-from', 'other@1.0']);
      expectOneLineFailure(unrelated, /other@1\.0 is not an ancestor of demo@1\.3/);
      const noBase = await build('demo@1.3', ['--delta-from', 'demo@1.0']);
      expectOneLineFailure(noBase, /demo@1\.0 is not an ancestor of demo@1\.3/);
      const sibling = await build('other@1.1', ['--base', 'other@1.0', '--delta-from', 'demo@1.2']);
      expectOneLineFailure(sibling, /demo@1\.2 is not an ancestor of other@1\.1/);
      await expect(readdir(join(pool, 'releases'))).resolves.toEqual(['demo-1.0', 'demo-1.1', 'demo-1.2', 'other-1.0']);
    });

    it('fails with one clear line for a missing kernel, bad keys, a non-btrfs pool and an existing release', async () => {
      const noKernel = join(work, 'rootfs-without-kernel');
      await writeFakeRootfs(noKernel, { kernel: false });
      const withoutKernel = await tool(bundle, [
        'build',
        '--rootfs',
        noKernel,
        '--pool',
        pool,
        '--name',
        'nokernel',
        '--version',
        '1',
        '--key',
        key,
        '--out',
        out('nokernel'),
        '--arch',
        'arm64',
        '--load-address',
        '0x40080000',
      ]);
      expectOneLineFailure(withoutKernel, /has no kernel .*--kernel/);

      expectOneLineFailure(
        await build('demo@9', ['--key', join(work, 'missing.key')]),
        /missing\.key does not exist; create a pair with: cowroot-release keygen/,
      );
      expectOneLineFailure(await build('demo@9', ['--key', work]), /cannot be read \(EISDIR\)/);
      const rsaKey = join(work, 'rsa.key');
      await writeFile(
        rsaKey,
        generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
      );
      expectOneLineFailure(await build('demo@9', ['--key', rsaKey]), /is rsa, manifests are signed with ed25519/);
      expectOneLineFailure(await build('demo@9', ['--key', publicKey]), /is not a PEM private key/);

      const plainDir = join(work, 'not-btrfs');
      await mkdir(plainDir);
      const notBtrfs = await tool(bundle, [
        'build',
        '--rootfs',
        rootfs,
        '--pool',
        plainDir,
        '--name',
        'demo',
        '--version',
        '9',
        '--key',
        key,
        '--out',
        out('x'),
        '--arch',
        'x86',
      ]);
      expectOneLineFailure(notBtrfs, /is not on btrfs/);

      expectOneLineFailure(
        await build('demo@1.0', ['--out', join(work, 'out', 'again')]),
        /release demo@1\.0 already exists/,
      );
      expectOneLineFailure(await build('demo@9', ['--base', 'demo@8']), /release demo@8 not found/);
      await btrfs.createSubvolume(join(pool, 'releases', 'demo-1.9'));
      expectOneLineFailure(
        await build('demo@1.9'),
        /exists at .* but is writable, left by an interrupted build; delete it/,
      );
      expectOneLineFailure(
        await build('demo@2.0', ['--base', 'demo@1.9']),
        /release demo@1\.9 .* is not read-only \(an interrupted build\?\)/,
      );
      await btrfs.deleteSubvolume(join(pool, 'releases', 'demo-1.9'));
    });

    it('removes the half-built subvolume and its outputs when a step fails', async () => {
      const run = await build('demo@1.4', ['--base', 'demo@1.2', '--load-address', 'not-an-address']);
      expectOneLineFailure(run, /mkimage .* failed \(exit code \d+\)/);
      await expect(readdir(join(pool, 'releases'))).resolves.not.toContain('demo-1.4');
      await expect(readdir(out('demo@1.4'))).resolves.toEqual([]);
    });
  },
);
