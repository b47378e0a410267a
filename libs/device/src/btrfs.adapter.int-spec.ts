import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCode } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { BtrfsAdapter } from './btrfs.adapter';
import { DeviceError } from './device-error';
import { SnapshotStore } from './snapshot-store';
import { LoopBtrfs, createLoopBtrfs } from './testing/loop-btrfs';

describePrivileged(
  'BtrfsAdapter on a real btrfs',
  [requireRoot, requireCommand('btrfs'), requireCommand('mkfs.btrfs'), requireLoopDevices],
  () => {
    const btrfs = new BtrfsAdapter();
    let fs: LoopBtrfs | undefined;

    beforeAll(async () => {
      fs = await createLoopBtrfs({ sizeMiB: 256, label: 'adapter' });
    });

    afterAll(async () => {
      await fs?.cleanup();
    });

    it('creates, snapshots, lists, marks read-only and deletes subvolumes', async () => {
      const mount = fs!.mount;
      await btrfs.createSubvolume(join(mount, 'a'));
      await writeFile(join(mount, 'a', 'file'), 'x');
      await btrfs.snapshot(join(mount, 'a'), join(mount, 'a-ro'), { readOnly: true });
      await btrfs.snapshot(join(mount, 'a'), join(mount, 'a-rw'), { readOnly: false });
      let list = await btrfs.listSubvolumes(mount);
      const a = list.find((s) => s.path === 'a')!;
      expect(list.map((s) => [s.path, s.readOnly])).toEqual([
        ['a', false],
        ['a-ro', true],
        ['a-rw', false],
      ]);
      expect(list.find((s) => s.path === 'a-ro')!.parentUuid).toBe(a.uuid);

      await btrfs.setReadOnly(join(mount, 'a-rw'));
      expect((await btrfs.show(join(mount, 'a-rw'))).readOnly).toBe(true);

      await btrfs.deleteSubvolume(join(mount, 'a-rw'));
      list = await btrfs.listSubvolumes(mount);
      expect(list.map((s) => s.path)).toEqual(['a', 'a-ro']);
    });

    it('tells the top level from a subvolume, and the store insists on the top level', async () => {
      expect(await btrfs.rootId(fs!.mount)).toBe(5);
      await btrfs.createSubvolume(join(fs!.mount, 'not-top'));
      expect(await btrfs.rootId(join(fs!.mount, 'not-top'))).toBeGreaterThan(255);
      await mkdir(join(fs!.mount, 'plain-dir'));
      await expect(new SnapshotStore({ poolPath: join(fs!.mount, 'not-top'), btrfs }).init()).rejects.toThrow(
        /subvolid=5/,
      );
      await expect(new SnapshotStore({ poolPath: join(fs!.mount, 'plain-dir'), btrfs }).init()).rejects.toThrow(
        /subvolid=5/,
      );
      await new SnapshotStore({ poolPath: fs!.mount, btrfs }).init();
      await btrfs.deleteSubvolume(join(fs!.mount, 'not-top'));
    });

    it('reads the free bytes of the pool', async () => {
      const free = await btrfs.freeBytes(fs!.mount);
      expect(free).toBeGreaterThan(100 * 1024 * 1024);
      expect(free).toBeLessThan(256 * 1024 * 1024);
    });

    it('maps an empty stream to RECEIVE_FAILED with btrfs’s own words', async () => {
      const error = (await btrfs.receive(Readable.from([]), fs!.mount).catch((e: unknown) => e)) as DeviceError;
      expect(error).toBeInstanceOf(DeviceError);
      expect(error.code).toBe(ErrorCode.ReceiveFailed);
      expect(error.message).toContain('btrfs receive -e');
      expect(error.message).toMatch(/empty stream/);
    });

    it('cancels a receive through its AbortSignal', async () => {
      const controller = new AbortController();
      const endless = new Readable({ read() {} }); // never ends, like a stalled download
      setTimeout(() => controller.abort(), 100);
      const error = (await btrfs
        .receive(endless, fs!.mount, { signal: controller.signal })
        .catch((e: unknown) => e)) as DeviceError;
      expect(error.code).toBe(ErrorCode.Canceled);
    });
  },
);
