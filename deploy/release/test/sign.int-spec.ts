import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ArtifactKind, ArtifactManifest, ReleaseIndex } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { CommandRunner, parseSubvolumeShow } from '@cowroot/device';
import { sh } from './image-inspection';
import { LoopBtrfs, createLoopBtrfs } from '@cowroot/device/testing';
import { ATTR, CMD, command, fullStream, u64, uuidBytes } from './send-stream-builder';

interface ToolRun {
  code: number;
  stdout: string;
  stderr: string;
}

const here = __dirname;

function tool(bundle: string, args: string[]): Promise<ToolRun> {
  return new Promise((done) => {
    execFile(process.execPath, [bundle, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
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

describePrivileged(
  'cowroot-release sign: streams from another build system, checked before they are signed',
  [requireRoot, requireLoopDevices, requireCommand('btrfs'), requireCommand('mkfs.btrfs'), requireCommand('zstd')],
  () => {
    const runner = new CommandRunner();
    let work: string;
    let bundle: string;
    let buildHost: LoopBtrfs | undefined;
    let device: LoopBtrfs | undefined;
    let key: string;
    let full: string;
    let delta: string;
    const sign = (out: string, stream: string, extra: string[] = []) =>
      tool(bundle, [
        'sign',
        '--stream',
        stream,
        '--name',
        'yocto',
        '--version',
        '2.0',
        '--key',
        key,
        '--out',
        out,
        ...extra,
      ]);

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'cowroot-sign-'));
      bundle = join(work, 'cowroot-release.js');
      await runner.run(process.execPath, [
        resolve(here, '../../../tools/bundle.mjs'),
        resolve(here, '../src/main.ts'),
        bundle,
        '--executable',
      ]);
      await mkdir(join(work, 'build-host'));
      await mkdir(join(work, 'device'));
      buildHost = await createLoopBtrfs({ runner, label: 'build-host', sizeMiB: 256 });
      device = await createLoopBtrfs({ runner, label: 'device', sizeMiB: 256 });
      expect((await tool(bundle, ['keygen', '--out', join(work, 'release')])).code).toBe(0);
      key = join(work, 'release.key');
      // "their build system": a subvolume with a reflinked file (a clone inside the stream), sent by hand
      const pool = buildHost.mount;
      await sh('btrfs', ['-q', 'subvolume', 'create', join(pool, 'rootfs-1')]);
      await mkdir(join(pool, 'rootfs-1/usr/lib'), { recursive: true });
      await writeFile(join(pool, 'rootfs-1/usr/lib/big.so'), Buffer.alloc(256 * 1024, 7));
      await sh('cp', [
        '--reflink=always',
        join(pool, 'rootfs-1/usr/lib/big.so'),
        join(pool, 'rootfs-1/usr/lib/copy.so'),
      ]);
      await sh('ln', ['-s', '/usr/lib/big.so', join(pool, 'rootfs-1/usr/lib/link.so')]);
      await sh('btrfs', ['property', 'set', '-ts', join(pool, 'rootfs-1'), 'ro', 'true']);
      await sh('btrfs', ['-q', 'subvolume', 'snapshot', join(pool, 'rootfs-1'), join(pool, 'rootfs-2')]);
      await writeFile(join(pool, 'rootfs-2/usr/lib/new.so'), 'v2\n');
      await sh('btrfs', ['property', 'set', '-ts', join(pool, 'rootfs-2'), 'ro', 'true']);
      full = join(work, 'rootfs-1.btrfs');
      delta = join(work, 'rootfs-2.btrfs.zst');
      await runner.run('sh', ['-c', 'btrfs send -q "$1" > "$2"', 'sh', join(pool, 'rootfs-1'), full]);
      await runner.run('sh', [
        '-c',
        'btrfs send -q -p "$1" "$2" | zstd -q -c > "$3"',
        'sh',
        join(pool, 'rootfs-1'),
        join(pool, 'rootfs-2'),
        delta,
      ]);
    }, 120_000);

    afterAll(async () => {
      await device?.cleanup();
      await buildHost?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('signs a plain full stream and a zstd incremental; the manifests verify and name the streams uuids', async () => {
      // the reflinked file is a clone inside the stream: the check must let it through
      expect(await sh('btrfs', ['receive', '--dump', '-f', full])).toMatch(/clone\s+\.\/rootfs-1\/usr\/lib\/copy\.so/);
      const out = join(work, 'out');
      const run = await sign(out, full, ['--delta', `yocto@1.0=${delta}`, '--description', 'from yocto']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(
        /checked .*rootfs-1\.btrfs: full stream of rootfs-1, every path and clone source inside it/,
      );
      const index = JSON.parse(await readFile(join(out, 'release.json'), 'utf8')) as ReleaseIndex;
      const pool = buildHost!.mount;
      const show = async (name: string) =>
        parseSubvolumeShow(await sh('btrfs', ['subvolume', 'show', join(pool, name)]));
      const [one, two] = [await show('rootfs-1'), await show('rootfs-2')];
      expect(index).toMatchObject({ name: 'yocto', version: '2.0', snapshotUuid: one.uuid, description: 'from yocto' });
      expect(index.artifacts.map((a) => [a.kind, a.file])).toEqual([
        [ArtifactKind.Full, 'yocto-2.0-full.btrfs.zst'],
        [ArtifactKind.Incremental, 'yocto-2.0-from-1.0.btrfs.zst'],
      ]);
      for (const artifact of index.artifacts) {
        const verify = await tool(bundle, [
          'verify',
          ...['--manifest', join(out, artifact.manifest), '--signature', join(out, artifact.signature)],
          ...['--public-key', join(work, 'release.pub'), '--artifact', join(out, artifact.file)],
        ]);
        expect(verify.stderr).toBe('');
        expect(verify.code).toBe(0);
      }
      const incremental = JSON.parse(
        await readFile(join(out, 'yocto-2.0-from-1.0.btrfs.zst.manifest.json'), 'utf8'),
      ) as ArtifactManifest;
      expect(incremental).toMatchObject({
        kind: ArtifactKind.Incremental,
        snapshotUuid: two.uuid,
        parent: { release: { name: 'yocto', version: '1.0' }, snapshotUuid: one.uuid },
      });
      // the full artifact, received as a device does: received_uuid = the manifest's snapshotUuid
      await runner.run('btrfs', ['receive', '-e', device!.mount], {
        stdin: { producer: { command: 'zstd', args: ['-q', '-d', '-c', join(out, 'yocto-2.0-full.btrfs.zst')] } },
      });
      const received = parseSubvolumeShow(await sh('btrfs', ['subvolume', 'show', join(device!.mount, 'rootfs-1')]));
      expect(received.receivedUuid).toBe(index.snapshotUuid);
      expect(await readFile(join(device!.mount, 'rootfs-1/usr/lib/copy.so'))).toEqual(Buffer.alloc(256 * 1024, 7));
    });

    describe('refuses, in one line, with nothing written', () => {
      const OWN = '8e44ef7b-25e8-3f40-9b2f-6205404740b1';
      const expectEmpty = async (out: string) => expect(await readdir(out).catch(() => [] as string[])).toEqual([]);

      it('a stream that clones from a subvolume outside it (btrfs receive --dump does not show that)', async () => {
        const hostile = join(work, 'hostile-clone.btrfs');
        await writeFile(
          hostile,
          fullStream('rootfs', OWN, [
            command(CMD.mkfile, [
              [ATTR.path, 'etc-copy'],
              [ATTR.ino, u64(257)],
            ]),
            command(CMD.clone, [
              [ATTR.path, 'etc-copy'],
              [ATTR.fileOffset, u64(0)],
              [ATTR.cloneLen, u64(4096)],
              [ATTR.cloneUuid, uuidBytes('11111111-2222-3333-4444-555555555555')],
              [ATTR.cloneCtransid, u64(1)],
              [ATTR.clonePath, 'etc/shadow'],
              [ATTR.cloneOffset, u64(0)],
            ]),
          ]),
        );
        // the dump itself is clean: the path looks like one inside the stream
        expect(await sh('btrfs', ['receive', '--dump', '-f', hostile])).toMatch(
          /clone\s+\.\/rootfs\/etc-copy .*from=\.\/rootfs\/etc\/shadow/,
        );
        const out = join(work, 'out-clone');
        expectOneLineFailure(
          await sign(out, hostile),
          /is refused: it clones data from subvolume 11111111-2222-3333-4444-555555555555, which is neither the snapshot it creates/,
        );
        await expectEmpty(out);
      });

      it('a stream whose paths climb out of its subvolume', async () => {
        const hostile = join(work, 'hostile-path.btrfs');
        await writeFile(
          hostile,
          fullStream('rootfs', OWN, [
            command(CMD.mkfile, [
              [ATTR.path, '../../etc/cron.d/x'],
              [ATTR.ino, u64(257)],
            ]),
          ]),
        );
        const out = join(work, 'out-path');
        expectOneLineFailure(
          await sign(out, hostile),
          /mkfile \.\/rootfs\/\.\.\/\.\.\/etc\/cron\.d\/x climbs out with \.\./,
        );
        await expectEmpty(out);
      });

      it('an incremental stream given as the full one, a file that is no stream, and a key that is not ed25519', async () => {
        const out = join(work, 'out-misc');
        expectOneLineFailure(await sign(out, delta), /it is incremental; pass it as --delta/);
        await writeFile(join(work, 'notes.txt'), 'hello');
        expectOneLineFailure(
          await sign(out, join(work, 'notes.txt')),
          /neither a btrfs send stream nor a zstd-compressed one/,
        );
        const rsa = join(work, 'rsa.key');
        await writeFile(
          rsa,
          generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
        );
        expectOneLineFailure(
          await tool(bundle, ['sign', '--stream', full, '--name', 'y', '--version', '1', '--key', rsa, '--out', out]),
          /is rsa, manifests are signed with ed25519/,
        );
        await expectEmpty(out);
      });
    });
  },
);
