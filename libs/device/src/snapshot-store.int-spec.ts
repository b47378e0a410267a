import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ErrorCode, SnapshotOrigin } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { BtrfsAdapter } from './btrfs.adapter';
import { CommandRunner } from './command-runner';
import { DeviceError } from './device-error';
import { GarbageCollector } from './garbage-collector';
import { SnapshotStore } from './snapshot-store';
import { LoopBtrfs, createLoopBtrfs } from './testing/loop-btrfs';
import { BuiltRelease, ReleaseBuilder } from './testing/release-builder';

const MiB = 1024 * 1024;

/** A clock that moves one minute per reading, so creation order is the order of the calls. */
function steppingClock(start = Date.UTC(2026, 0, 1)): () => Date {
  let t = start;
  return () => new Date((t += 60_000));
}

async function expectDeviceError(promise: Promise<unknown>, code: ErrorCode): Promise<DeviceError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DeviceError);
  expect((error as DeviceError).code).toBe(code);
  return error as DeviceError;
}

async function cutFile(source: string, target: string, bytes: number): Promise<string> {
  const data = await readFile(source);
  await writeFile(target, data.subarray(0, bytes));
  return target;
}

describePrivileged(
  'SnapshotStore on a real btrfs',
  [requireRoot, requireCommand('btrfs'), requireCommand('mkfs.btrfs'), requireLoopDevices],
  () => {
    const runner = new CommandRunner();
    const btrfs = new BtrfsAdapter(runner);
    let tmp: string;
    let device: LoopBtrfs | undefined;
    let buildFs: LoopBtrfs | undefined;
    let tinyFs: LoopBtrfs | undefined;
    let store: SnapshotStore;
    let builder: ReleaseBuilder;
    let r1: BuiltRelease;
    let r2: BuiltRelease;
    let r3: BuiltRelease;
    let r1Full: string;
    let r2FromR1: string;
    let r3FromR2: string;

    /** subvolume paths of the device pool, to prove a failure left nothing behind */
    const subvolumePaths = async () => (await btrfs.listSubvolumes(store.poolPath)).map((s) => s.path).sort();

    beforeAll(async () => {
      tmp = await mkdtemp(join(tmpdir(), 'cowroot-store-test-'));
      device = await createLoopBtrfs({ sizeMiB: 512, label: 'device' });
      buildFs = await createLoopBtrfs({ sizeMiB: 512, label: 'build' });
      store = new SnapshotStore({ poolPath: device.mount, btrfs, now: steppingClock() });
      await store.init();
      builder = new ReleaseBuilder(buildFs.mount, join(tmp, 'streams'), runner);
      r1 = await builder.build('r1', {
        'etc/os-release': 'VERSION=1\n',
        'boot/vmlinuz': 'kernel 1',
        'usr/bin/app': randomBytes(2 * MiB),
      });
      r2 = await builder.build(
        'r2',
        { 'etc/os-release': 'VERSION=2\n', 'usr/share/new': 'new in 2', 'boot/vmlinuz': null },
        r1,
      );
      r3 = await builder.build('r3', { 'etc/os-release': 'VERSION=3\n' }, r2);
      r1Full = await builder.send(r1);
      r2FromR1 = await builder.send(r2, r1);
      r3FromR2 = await builder.send(r3, r2);
    });

    afterAll(async () => {
      await device?.cleanup();
      await buildFs?.cleanup();
      await tinyFs?.cleanup();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    });

    it('receives a full stream into snapshots/<id> with metadata beside it', async () => {
      const info = await store.receive(createReadStream(r1Full), {
        snapshotId: 'rel-1',
        release: { name: 'demo', version: '1.0.0' },
        expectedReceivedUuid: r1.uuid,
      });
      expect(info).toMatchObject({
        id: 'rel-1',
        receivedUuid: r1.uuid,
        readOnly: true,
        origin: SnapshotOrigin.Received,
        release: { name: 'demo', version: '1.0.0' },
      });
      expect(await readFile(join(store.snapshotPath('rel-1'), 'etc/os-release'), 'utf8')).toBe('VERSION=1\n');
      expect(JSON.parse(await readFile(store.metadataPath('rel-1'), 'utf8'))).toMatchObject({
        origin: 'received',
        parent: null,
      });
      // the staged copy is deleted after receive() returned
      await store.settled();
      expect(await readdir(store.stagingDir)).toEqual([]);
    });

    it('receives an incremental stream on top of the snapshot whose received_uuid is its parent', async () => {
      expect((await store.findByReceivedUuid(r1.uuid))?.id).toBe('rel-1');
      const info = await store.receive(createReadStream(r2FromR1), {
        snapshotId: 'rel-2',
        release: { name: 'demo', version: '2.0.0' },
        expectedReceivedUuid: r2.uuid,
      });
      expect(info).toMatchObject({ id: 'rel-2', receivedUuid: r2.uuid, readOnly: true });
      expect((await store.readMetadata('rel-2'))?.parent).toBe('rel-1');
      const root = store.snapshotPath('rel-2');
      expect(await readFile(join(root, 'etc/os-release'), 'utf8')).toBe('VERSION=2\n');
      expect(await readFile(join(root, 'usr/share/new'), 'utf8')).toBe('new in 2');
      expect(existsSync(join(root, 'boot/vmlinuz'))).toBe(false);
      expect((await store.list()).map((s) => s.id)).toEqual(['rel-1', 'rel-2']);
    });

    it('rejects a stream whose received_uuid is not the expected one and keeps nothing', async () => {
      const before = await subvolumePaths();
      const error = await expectDeviceError(
        store.receive(createReadStream(r1Full), {
          snapshotId: 'impostor',
          release: { name: 'demo', version: '9' },
          expectedReceivedUuid: '00000000-0000-0000-0000-000000000000',
        }),
        ErrorCode.ReceiveFailed,
      );
      expect(error.message).toContain('received_uuid');
      expect(await subvolumePaths()).toEqual(before);
      expect(await readdir(store.stagingDir)).toEqual([]);
      expect(existsSync(store.metadataPath('impostor'))).toBe(false);
    });

    it('fails clearly on a truncated stream and deletes the partial subvolume', async () => {
      const size = (await stat(r1Full)).size;
      const cut = await cutFile(r1Full, join(tmp, 'r1-cut.stream'), Math.floor(size / 2));
      const before = await subvolumePaths();
      const error = await expectDeviceError(
        store.receive(createReadStream(cut), {
          snapshotId: 'cut',
          release: { name: 'demo', version: '1.0.0' },
          expectedReceivedUuid: r1.uuid,
        }),
        ErrorCode.ReceiveFailed,
      );
      expect(error.message).toMatch(/short read from stream|unexpected EOF/);
      expect(await subvolumePaths()).toEqual(before);
      expect(await readdir(store.stagingDir)).toEqual([]);
    });

    it('fails on a stream that is not a btrfs stream at all', async () => {
      const junk = join(tmp, 'junk.stream');
      await writeFile(junk, randomBytes(4096));
      await expectDeviceError(
        store.receive(createReadStream(junk), {
          snapshotId: 'junk',
          release: { name: 'd', version: '1' },
          expectedReceivedUuid: r1.uuid,
        }),
        ErrorCode.ReceiveFailed,
      );
      expect(await readdir(store.stagingDir)).toEqual([]);
    });

    it('says PARENT_MISSING when the incremental parent is not on the device', async () => {
      const before = await subvolumePaths();
      await store.delete('rel-2', []);
      await expectDeviceError(
        store.receive(createReadStream(r3FromR2), {
          snapshotId: 'rel-3',
          release: { name: 'demo', version: '3.0.0' },
          expectedReceivedUuid: r3.uuid,
        }),
        ErrorCode.ParentMissing,
      );
      expect(await readdir(store.stagingDir)).toEqual([]);
      expect(await subvolumePaths()).toEqual(before.filter((p) => p !== 'snapshots/rel-2'));
      // with the parent back, the same stream goes in
      await store.receive(createReadStream(r2FromR1), {
        snapshotId: 'rel-2',
        release: { name: 'demo', version: '2.0.0' },
        expectedReceivedUuid: r2.uuid,
      });
      // (a verified file can go to btrfs as its stdin descriptor, without passing through Node)
      await store.receive(
        { file: r3FromR2 },
        { snapshotId: 'rel-3', release: { name: 'demo', version: '3.0.0' }, expectedReceivedUuid: r3.uuid },
      );
      expect((await store.readMetadata('rel-3'))?.parent).toBe('rel-2');
    });

    it('refuses an id that exists and leaves the stream unconsumed', async () => {
      const stream = createReadStream(r1Full);
      await expectDeviceError(
        store.receive(stream, {
          snapshotId: 'rel-1',
          release: { name: 'demo', version: '1.0.0' },
          expectedReceivedUuid: r1.uuid,
        }),
        ErrorCode.ReceiveFailed,
      );
      expect(stream.destroyed).toBe(true);
    });

    it('commits the rw workspace as a read-only snapshot without received_uuid', async () => {
      // the initramfs's part: a throwaway rw workspace from the booted snapshot
      await btrfs.snapshot(store.snapshotPath('rel-1'), store.workspacePath, { readOnly: false });
      await writeFile(join(store.workspacePath, 'etc/local-change'), 'made on the device');
      const info = await store.commitWorkspace('committed-1');
      expect(info).toMatchObject({
        id: 'committed-1',
        origin: SnapshotOrigin.Committed,
        readOnly: true,
        receivedUuid: null,
        release: null,
      });
      expect((await store.readMetadata('committed-1'))?.parent).toBe('rel-1');
      expect(await readFile(join(store.snapshotPath('committed-1'), 'etc/local-change'), 'utf8')).toBe(
        'made on the device',
      );
      await expect(writeFile(join(store.snapshotPath('committed-1'), 'x'), 'y')).rejects.toMatchObject({
        code: 'EROFS',
      });
    });

    it('lists a snapshot without metadata as factory', async () => {
      await btrfs.snapshot(store.snapshotPath('rel-1'), store.snapshotPath('factory'), { readOnly: true });
      const info = await store.get('factory');
      expect(info).toMatchObject({ origin: SnapshotOrigin.Factory, release: null, readOnly: true });
      expect(Number.isNaN(Date.parse(info!.createdAt))).toBe(false);
    });

    it('deletes only snapshots that exist and are not in use', async () => {
      await expectDeviceError(store.delete('nope', []), ErrorCode.SnapshotNotFound);
      await expectDeviceError(store.delete('../meta', []), ErrorCode.SnapshotNotFound);
      await expectDeviceError(store.delete('factory', ['rel-1', 'factory']), ErrorCode.SnapshotInUse);
      await store.delete('factory', ['rel-1']);
      expect(await store.get('factory')).toBeNull();
    });

    it('garbage-collects a partial receive, staging leftovers and orphan metadata at start', async () => {
      // an agent that died in the middle of a receive: btrfs leaves a rw subvolume without received_uuid
      const size = (await stat(r1Full)).size;
      const cut = await cutFile(r1Full, join(tmp, 'r1-cut-gc.stream'), Math.floor(size / 2));
      const partialDir = join(store.stagingDir, 'rel-x.dead');
      await writeFile(join(store.stagingDir, 'stray-file'), '');
      await mkdir(partialDir);
      await runner.run('btrfs', ['receive', '-e', '-f', cut, partialDir]).catch(() => undefined);
      const partial = (await btrfs.listSubvolumes(store.poolPath)).find((s) => s.path.startsWith('staging/'));
      expect(partial).toMatchObject({ receivedUuid: null, readOnly: false });
      await writeFile(store.metadataPath('gone'), '{}');

      const gc = new GarbageCollector(store, async () => []);
      const result = await gc.cleanStaging();
      expect(result.subvolumes).toEqual(['staging/rel-x.dead/r1']);
      expect(result.entries.sort()).toEqual(['rel-x.dead', 'stray-file']);
      expect(result.metadata).toEqual(['gone.json']);
      expect(await readdir(store.stagingDir)).toEqual([]);
      expect((await subvolumePaths()).filter((p) => p.startsWith('staging/'))).toEqual([]);
    });

    it('retention keeps the N newest and every referenced snapshot', async () => {
      // by creation: rel-1, rel-2, rel-3, committed-1, then n1..n3
      for (const id of ['n1', 'n2', 'n3']) await store.commitWorkspace(id);
      expect((await store.list()).map((s) => s.id)).toEqual([
        'rel-1',
        'rel-2',
        'rel-3',
        'committed-1',
        'n1',
        'n2',
        'n3',
      ]);
      const referenced = new Set(['rel-1', 'committed-1']); // e.g. previous and booted/current
      const gc = new GarbageCollector(store, async () => referenced);
      expect(await gc.applyRetention(2)).toEqual(['rel-2', 'rel-3', 'n1']);
      expect((await store.list()).map((s) => s.id)).toEqual(['rel-1', 'committed-1', 'n2', 'n3']);
      expect(existsSync(store.metadataPath('rel-2'))).toBe(false);
    });

    it('maps a full pool to DISK_FULL and cleans staging', async () => {
      tinyFs = await createLoopBtrfs({ sizeMiB: 128, label: 'tiny' });
      const tiny = new SnapshotStore({ poolPath: tinyFs.mount, btrfs });
      await tiny.init();
      // bigger than the whole tiny pool; zeros are stored as data (no compression), so they take space
      const big = await builder.build('big', { 'var/big.bin': Buffer.alloc(160 * MiB) });
      const bigStream = await builder.send(big);
      const freeBefore = await tiny.freeBytes();
      const error = await expectDeviceError(
        tiny.receive(createReadStream(bigStream), {
          snapshotId: 'big',
          release: { name: 'big', version: '1' },
          expectedReceivedUuid: big.uuid,
        }),
        ErrorCode.DiskFull,
      );
      expect(error.message).toMatch(/no space/i);
      expect(await readdir(tiny.stagingDir)).toEqual([]);
      expect(await btrfs.listSubvolumes(tiny.poolPath)).toEqual([]);
      // the space of the partial subvolume is back
      expect(await tiny.freeBytes()).toBeGreaterThanOrEqual(freeBefore - 4 * MiB);
    });
  },
);
