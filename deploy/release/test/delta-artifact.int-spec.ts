import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ErrorCode } from '@cowroot/protocol';
import {
  COMMAND_HEADER_BYTES,
  DELTA_MAGIC,
  DELTA_MAGIC_V1,
  DELTA_MAGIC_V2,
  DeltaCommand,
  STREAM_HEADER_BYTES,
  SnapshotStore,
  frameCommand,
} from '@cowroot/device';
import { LoopBtrfs, createLoopBtrfs, repeatableBytes } from '@cowroot/device/testing';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { CommandRunner } from '@cowroot/device';
import { DeltaWriter, WrittenDelta } from '../src/delta/delta-writer.service';

const sh = (command: string, args: string[]) => execFileSync(command, args, { encoding: 'utf8' });
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const uuidOf = (path: string) => /^\s*UUID:\s*(\S+)/m.exec(sh('btrfs', ['subvolume', 'show', path]))![1];

/** Each command of an uncompressed delta as [offset, type, length]. */
function commandsOf(delta: Buffer): Array<{ at: number; type: number; length: number }> {
  const list = [];
  for (let at = DELTA_MAGIC.length + STREAM_HEADER_BYTES; at < delta.length;) {
    const length = delta.readUInt32LE(at);
    list.push({ at, type: delta.readUInt16LE(at + 4), length });
    at += COMMAND_HEADER_BYTES + length;
  }
  return list;
}

describePrivileged(
  'delta artifacts on a real btrfs (build host → device)',
  [requireRoot, requireCommand('btrfs'), requireCommand('mkfs.btrfs'), requireCommand('zstd'), requireLoopDevices],
  () => {
    let host: LoopBtrfs | undefined;
    let device: LoopBtrfs | undefined;
    let store: SnapshotStore;
    let out: string;
    let delta: WrittenDelta;
    let plainStream: string;
    let r2Uuid: string;

    beforeAll(async () => {
      host = await createLoopBtrfs({ sizeMiB: 512, label: 'delta-host' });
      device = await createLoopBtrfs({ sizeMiB: 512, label: 'delta-dev' });
      out = join(host.mount, 'out');
      await mkdir(out);
      const v1 = join(host.mount, 'v1');
      sh('btrfs', ['subvolume', 'create', v1]);
      await mkdir(join(v1, 'usr/bin'), { recursive: true });
      await mkdir(join(v1, 'usr/lib'), { recursive: true });
      await writeFile(join(v1, 'usr/bin/tool'), repeatableBytes(3 * 1024 * 1024, 1));
      await writeFile(join(v1, 'usr/lib/libfoo.so.1.2.3'), repeatableBytes(700 * 1024, 2));
      await writeFile(join(v1, 'usr/lib/unchanged'), repeatableBytes(100 * 1024, 3));
      await writeFile(join(v1, 'gone.txt'), 'bye\n');
      await writeFile(join(v1, 'etc.conf'), 'a=1\n');
      await writeFile(join(v1, 'usr/lib/rewritten'), repeatableBytes(40_000, 4));
      sh('btrfs', ['subvolume', 'snapshot', '-r', v1, join(host.mount, 'r1')]);
      // release 2: the tool rewritten in place in a few places and grown, the library upgraded under a new
      // versioned name (a copy, so a new inode), a new file, a deleted one, a mode change
      const v2 = join(host.mount, 'v2');
      sh('btrfs', ['subvolume', 'snapshot', join(host.mount, 'r1'), v2]);
      const tool = await open(join(v2, 'usr/bin/tool'), 'r+');
      for (const offset of [4096, 1_000_000, 2_500_000])
        await tool.write(repeatableBytes(20_000, offset), 0, 20_000, offset);
      await tool.write(repeatableBytes(50_000, 9), 0, 50_000, 3 * 1024 * 1024);
      await tool.close();
      const lib = await readFile(join(v2, 'usr/lib/libfoo.so.1.2.3'));
      repeatableBytes(3000, 5).copy(lib, 350_000);
      await rm(join(v2, 'usr/lib/libfoo.so.1.2.3'));
      await writeFile(join(v2, 'usr/lib/libfoo.so.1.2.4'), lib);
      await writeFile(join(v2, 'new.bin'), randomBytes(5000));
      // what dpkg does to an unchanged file of an upgraded package: same bytes, new inode
      await rm(join(v2, 'usr/lib/rewritten'));
      await writeFile(join(v2, 'usr/lib/rewritten'), repeatableBytes(40_000, 4));
      await rm(join(v2, 'gone.txt'));
      await writeFile(join(v2, 'etc.conf'), 'a=2\n');
      await chmod(join(v2, 'etc.conf'), 0o600);
      sh('btrfs', ['filesystem', 'sync', v2]);
      sh('btrfs', ['subvolume', 'snapshot', '-r', v2, join(host.mount, 'r2')]);
      r2Uuid = uuidOf(join(host.mount, 'r2'));
      // an unrelated release with the same paths: the wrong parent
      const v0 = join(host.mount, 'v0');
      sh('btrfs', ['subvolume', 'create', v0]);
      await mkdir(join(v0, 'usr/bin'), { recursive: true });
      await mkdir(join(v0, 'usr/lib'), { recursive: true });
      await writeFile(join(v0, 'usr/bin/tool'), repeatableBytes(3 * 1024 * 1024, 77));
      await writeFile(join(v0, 'usr/lib/libfoo.so.1.2.3'), repeatableBytes(700 * 1024, 78));
      sh('btrfs', ['subvolume', 'snapshot', '-r', v0, join(host.mount, 'r0')]);

      for (const [name, args] of [
        ['r1.full', [join(host.mount, 'r1')]],
        ['r0.full', [join(host.mount, 'r0')]],
        ['r2.plain', ['-p', join(host.mount, 'r1'), join(host.mount, 'r2')]],
      ] as const) {
        sh('btrfs', ['send', '-q', '-f', join(out, name), ...args]);
      }
      plainStream = join(out, 'r2.plain');
      delta = await new DeltaWriter(new CommandRunner()).write({
        send: { command: 'btrfs', args: ['send', '-q', '-p', join(host.mount, 'r1'), join(host.mount, 'r2')] },
        parentRoot: join(host.mount, 'r1'),
        newRoot: join(host.mount, 'r2'),
        path: join(out, 'r2.delta.zst'),
      });

      store = new SnapshotStore({ poolPath: device.mount });
      await store.init();
      const r1 = await open(join(out, 'r1.full'), 'r');
      await store.receive(
        { fd: r1.fd },
        {
          snapshotId: 'r1',
          release: { name: 'r', version: '1' },
          expectedReceivedUuid: uuidOf(join(host.mount, 'r1')),
        },
      );
      await r1.close();
      const r0 = await open(join(out, 'r0.full'), 'r');
      await store.receive(
        { fd: r0.fd },
        {
          snapshotId: 'r0',
          release: { name: 'r', version: '0' },
          expectedReceivedUuid: uuidOf(join(host.mount, 'r0')),
        },
      );
      await r0.close();
    }, 120_000);

    afterAll(async () => {
      await device?.cleanup();
      await host?.cleanup();
    });

    /** What the device holds, to prove a failure left it untouched. */
    async function deviceState(): Promise<string> {
      await store.settled();
      const subvolumes = (await store.btrfs.listSubvolumes(device!.mount)).map((s) => `${s.path} ${s.receivedUuid}`);
      return JSON.stringify({
        subvolumes,
        staging: await store.stagingEntries(),
        snapshots: (await store.list()).map((s) => s.id),
      });
    }

    async function receiveDelta(file: string, id: string, parentId = 'r1', compression: 'zstd' | 'none' = 'zstd') {
      const handle = await open(file, 'r');
      try {
        return await store.receiveDelta(
          { fd: handle.fd, compression },
          { parentId, reconstructs: delta.plain },
          { snapshotId: id, release: { name: 'r', version: '2' }, expectedReceivedUuid: r2Uuid },
        );
      } finally {
        await handle.close();
      }
    }

    /** The uncompressed delta, for the corruption cases. */
    const rawDelta = () => Buffer.from(execFileSync('zstd', ['-d', '-c', '-q', delta.path]));

    it('patches the changed files and is much smaller than the plain incremental', async () => {
      const plain = await readFile(plainStream);
      expect(delta.plain).toEqual({ size: plain.length, sha256: sha256(plain) });
      expect(rawDelta().subarray(0, DELTA_MAGIC.length)).toEqual(DELTA_MAGIC);
      // the tool (3 MiB, same path) in its own section; libfoo (versioned rename), the file rewritten
      // unchanged and etc.conf, all small, in one batch
      expect(delta.patchedFiles).toBe(4);
      expect(delta.batches).toBe(1);
      expect(delta.identicalFiles).toBe(0);
      // the tool's few rewritten stretches of random bytes: a copy list costs less than a zstd frame
      expect(delta.copyLists).toBe(1);
      const types = commandsOf(rawDelta()).map((c) => c.type);
      expect(types.filter((t) => t === DeltaCommand.PatchBegin)).toHaveLength(1);
      expect(types.filter((t) => t === DeltaCommand.BatchSource)).toHaveLength(3);
      // format 3: the tool's WRITEs (its four rewritten stretches, 21 WRITEs) as one run per stretch
      expect(types.filter((t) => t === DeltaCommand.WriteRun)).toHaveLength(4);
      expect(types.filter((t) => t === DeltaCommand.WriteStub)).toHaveLength(0);
      const plainZst = execFileSync('zstd', ['-q', '-9', '-c', plainStream]).length;
      expect(delta.size * 5).toBeLessThan(plainZst);
    });

    it('still installs deltas of format 1 (no batches) and 2 (a stub per write), identical to the plain incremental’s', async () => {
      for (const format of [1, 2] as const) {
        const older = await new DeltaWriter(new CommandRunner(), { format }).write({
          send: { command: 'btrfs', args: ['send', '-q', '-p', join(host!.mount, 'r1'), join(host!.mount, 'r2')] },
          parentRoot: join(host!.mount, 'r1'),
          newRoot: join(host!.mount, 'r2'),
          path: join(out, `r2.v${format}.delta.zst`),
        });
        expect(older.plain).toEqual(delta.plain);
        const raw = execFileSync('zstd', ['-d', '-c', '-q', older.path]);
        expect(raw.subarray(0, DELTA_MAGIC.length)).toEqual(format === 1 ? DELTA_MAGIC_V1 : DELTA_MAGIC_V2);
        const types = commandsOf(raw).map((c) => c.type);
        expect(types.filter((t) => t === DeltaCommand.WriteRun)).toHaveLength(0);
        // a stub per WRITE where format 3 has a run per stretch of the tool (4)
        expect(types.filter((t) => t === DeltaCommand.WriteStub).length).toBeGreaterThan(4);
        expect(older).toMatchObject(
          format === 1 ? { patchedFiles: 2, identicalFiles: 1, batches: 0 } : { patchedFiles: 4, batches: 1 },
        );
        // format 3's runs are smaller than the stubs they replace
        expect(older.size).toBeGreaterThan(delta.size);
        const received = await receiveDelta(older.path, `r2-v${format}`);
        expect(received.receivedUuid).toBe(r2Uuid);
        sh('diff', ['-r', '--no-dereference', join(host!.mount, 'r2'), store.snapshotPath(`r2-v${format}`)]);
        await store.delete(`r2-v${format}`, []);
      }
    });

    it('refuses a damaged or cut write run and leaves the device untouched', async () => {
      const raw = rawDelta();
      const run = commandsOf(raw).find((c) => c.type === DeltaCommand.WriteRun)!;
      const before = await deviceState();
      // one crc of the list changed (the run's own crc no longer matches it)
      const damaged = Buffer.from(raw);
      damaged[run.at + COMMAND_HEADER_BYTES + run.length - 2] ^= 1;
      await writeFile(join(out, 'run-damaged.delta'), damaged);
      await expect(receiveDelta(join(out, 'run-damaged.delta'), 'r2-rd', 'r1', 'none')).rejects.toMatchObject({
        code: ErrorCode.DeltaCorrupt,
        message: expect.stringMatching(/patch section for usr\/bin\/tool: bad write run 0/),
      });
      expect(await deviceState()).toBe(before);
      // the delta cut inside the run
      await writeFile(join(out, 'run-cut.delta'), raw.subarray(0, run.at + Math.floor(run.length / 2)));
      await expect(receiveDelta(join(out, 'run-cut.delta'), 'r2-rc', 'r1', 'none')).rejects.toMatchObject({
        code: ErrorCode.DeltaCorrupt,
        message: expect.stringMatching(/truncated/),
      });
      expect(await deviceState()).toBe(before);
    });

    it('round-trips to a subvolume identical to the plain incremental’s', async () => {
      const plainFile = await open(plainStream, 'r');
      const viaPlain = await store.receive(
        { fd: plainFile.fd },
        { snapshotId: 'r2-plain', release: { name: 'r', version: '2' }, expectedReceivedUuid: r2Uuid },
      );
      await plainFile.close();
      const viaDelta = await receiveDelta(delta.path, 'r2-delta');
      expect(viaDelta.receivedUuid).toBe(r2Uuid);
      expect(viaDelta.receivedUuid).toBe(viaPlain.receivedUuid);
      expect(viaDelta.readOnly).toBe(true);
      sh('diff', ['-r', '--no-dereference', store.snapshotPath('r2-plain'), store.snapshotPath('r2-delta')]);
      sh('diff', ['-r', '--no-dereference', join(host!.mount, 'r2'), store.snapshotPath('r2-delta')]);
      await store.delete('r2-plain', []);
      await store.delete('r2-delta', []);
    });

    it('refuses a delta against the wrong parent and leaves the device untouched', async () => {
      const before = await deviceState();
      await expect(receiveDelta(delta.path, 'r2-wrong', 'r0')).rejects.toMatchObject({
        code: ErrorCode.DeltaBaseMismatch,
        // the first section in stream order names its predecessor
        message: expect.stringMatching(/predecessor (usr\/\S+|etc\.conf) in the parent snapshot .*another parent/),
      });
      expect(await deviceState()).toBe(before);
    });

    it('refuses a parent whose large predecessor has the right size but other bytes (hashed only once the rebuild fails)', async () => {
      // r1 with the 3 MiB tool overwritten in place: same size, so only its content can tell
      const v1x = join(host!.mount, 'v1x');
      sh('btrfs', ['subvolume', 'snapshot', join(host!.mount, 'r1'), v1x]);
      await writeFile(join(v1x, 'usr/bin/tool'), repeatableBytes(3 * 1024 * 1024, 55));
      sh('btrfs', ['subvolume', 'snapshot', '-r', v1x, join(host!.mount, 'r1x')]);
      sh('btrfs', ['send', '-q', '-f', join(out, 'r1x.full'), join(host!.mount, 'r1x')]);
      const full = await open(join(out, 'r1x.full'), 'r');
      await store.receive(
        { fd: full.fd },
        {
          snapshotId: 'r1x',
          release: { name: 'r', version: '1x' },
          expectedReceivedUuid: uuidOf(join(host!.mount, 'r1x')),
        },
      );
      await full.close();
      const before = await deviceState();
      await expect(receiveDelta(delta.path, 'r2-x', 'r1x')).rejects.toMatchObject({
        code: ErrorCode.DeltaBaseMismatch,
        message: expect.stringMatching(/predecessor usr\/bin\/tool in the parent snapshot has other content/),
      });
      expect(await deviceState()).toBe(before);
      await store.delete('r1x', []);
    });

    it('refuses a corrupted patch, a zstd frame or a copy list (valid crc, bad bytes), and leaves the device untouched', async () => {
      // the tool's section: a copy list in format 3, a zstd frame in format 2
      const v2 = await new DeltaWriter(new CommandRunner(), { format: 2 }).write({
        send: { command: 'btrfs', args: ['send', '-q', '-p', join(host!.mount, 'r1'), join(host!.mount, 'r2')] },
        parentRoot: join(host!.mount, 'r1'),
        newRoot: join(host!.mount, 'r2'),
        path: join(out, 'r2.corrupt-v2.delta.zst'),
      });
      const cases = [
        { raw: rawDelta(), what: 'copy list', flippedError: /bad patch data in its copy list/ },
        {
          raw: Buffer.from(execFileSync('zstd', ['-d', '-c', '-q', v2.path])),
          what: 'zstd',
          flippedError: /does not decode/,
        },
      ];
      const before = await deviceState();
      for (const { raw, what, flippedError } of cases) {
        const patchData = commandsOf(raw).find((c) => c.type === DeltaCommand.PatchData)!;
        const payload = Buffer.from(
          raw.subarray(patchData.at + COMMAND_HEADER_BYTES, patchData.at + COMMAND_HEADER_BYTES + patchData.length),
        );
        for (let i = 100; i < payload.length; i += 97) payload[i] ^= 0x5a;
        // re-framed with a correct crc: only the patch decoder (zstd), or the check of the rebuilt bytes (a
        // copy list: btrfs receive's crc of the WRITE, the stream's sha256) can notice
        const reframed = Buffer.concat(frameCommand(DeltaCommand.PatchData, [payload]));
        const corrupted = Buffer.concat([
          raw.subarray(0, patchData.at),
          reframed,
          raw.subarray(patchData.at + reframed.length),
        ]);
        await writeFile(join(out, 'corrupt.delta'), corrupted);
        await expect(receiveDelta(join(out, 'corrupt.delta'), 'r2-corrupt', 'r1', 'none')).rejects.toMatchObject({
          code: expect.stringMatching(/^DELTA_(CORRUPT|MISMATCH)$/),
        });
        expect({ what, state: await deviceState() }).toEqual({ what, state: before });

        // a flipped bit without the crc fixed: a zstd patch's PATCH_DATA crcs are not checked (docs/release-tool.md
        // "Delta artifacts"), the zstd frame's checksum catches it; a copy list's crcs are checked
        const flipped = Buffer.from(raw);
        flipped[patchData.at + COMMAND_HEADER_BYTES + 10] ^= 1;
        await writeFile(join(out, 'flipped.delta'), flipped);
        await expect(receiveDelta(join(out, 'flipped.delta'), 'r2-flipped', 'r1', 'none')).rejects.toMatchObject({
          code: ErrorCode.DeltaCorrupt,
          message: expect.stringMatching(flippedError),
        });
        expect({ what, state: await deviceState() }).toEqual({ what, state: before });
      }
    });

    it('refuses a copy list whose literal bytes are not the original’s (DELTA_MISMATCH: btrfs receive’s crc or the stream’s sha256), device untouched', async () => {
      const raw = rawDelta();
      const commands = commandsOf(raw);
      const begin = commands.findIndex((c) => c.type === DeltaCommand.PatchBegin);
      let last = begin;
      while (commands[last + 1].type === DeltaCommand.WriteRun || commands[last + 1].type === DeltaCommand.PatchData)
        last++;
      const data = commands[last];
      expect(data.type).toBe(DeltaCommand.PatchData);
      // the copy list ends with literal bytes: one changed and re-framed with a valid crc, so every check
      // of the list passes and only the rebuilt WRITE's crc32c (btrfs receive) or the stream's sha256 can tell
      const start = data.at + COMMAND_HEADER_BYTES;
      const payload = Buffer.from(raw.subarray(start, start + data.length));
      payload[payload.length - 1] ^= 1;
      const changed = Buffer.concat([
        raw.subarray(0, data.at),
        ...frameCommand(DeltaCommand.PatchData, [payload]),
        raw.subarray(start + data.length),
      ]);
      await writeFile(join(out, 'literal.delta'), changed);
      const before = await deviceState();
      await expect(receiveDelta(join(out, 'literal.delta'), 'r2-lit', 'r1', 'none')).rejects.toMatchObject({
        code: ErrorCode.DeltaMismatch,
        // which check sees it first is a race (the changed byte is in the last WRITE, just before END)
        message: expect.stringMatching(/btrfs receive found a command whose crc32c does not match|the manifest says/),
      });
      expect(await deviceState()).toBe(before);
    });

    it('refuses a batch whose patch is corrupted or cut, device untouched; a source named with another sha256 over the right bytes still rebuilds exactly', async () => {
      const raw = rawDelta();
      const commands = commandsOf(raw);
      const batchAt = commands.findIndex((c) => c.type === DeltaCommand.BatchBegin);
      const patchData = commands.slice(batchAt).find((c) => c.type === DeltaCommand.PatchData)!;
      const source = commands.slice(batchAt).find((c) => c.type === DeltaCommand.BatchSource)!;
      /** `raw` with the payload of `command` changed by `edit` and re-framed with a valid crc */
      const reframed = (command: { at: number; type: number; length: number }, edit: (payload: Buffer) => void) => {
        const start = command.at + COMMAND_HEADER_BYTES;
        const payload = Buffer.from(raw.subarray(start, start + command.length));
        edit(payload);
        return Buffer.concat([
          raw.subarray(0, command.at),
          ...frameCommand(command.type, [payload]),
          raw.subarray(start + command.length),
        ]);
      };
      const before = await deviceState();
      await writeFile(
        join(out, 'batch-corrupt.delta'),
        reframed(patchData, (payload) => {
          for (let i = 50; i < payload.length; i += 31) payload[i] ^= 0x5a;
        }),
      );
      await expect(receiveDelta(join(out, 'batch-corrupt.delta'), 'r2-bc', 'r1', 'none')).rejects.toMatchObject({
        code: expect.stringMatching(/^DELTA_(CORRUPT|MISMATCH)$/),
      });
      expect(await deviceState()).toBe(before);
      // the last byte of the source's sha256 (its last attribute) changed, the parent's file the one the
      // patch was made against: a batch's sources are hashed only when the batch or the stream fails
      // (docs/release-tool.md "Delta artifacts"), and here neither does, so the device rebuilds exactly
      // the stream the signed manifest names (its sha256 checked before END) and receives it
      await writeFile(
        join(out, 'batch-source.delta'),
        reframed(source, (payload) => {
          payload[payload.length - 1] ^= 1;
        }),
      );
      await receiveDelta(join(out, 'batch-source.delta'), 'r2-bs', 'r1', 'none');
      sh('diff', ['-r', '--no-dereference', join(host!.mount, 'r2'), store.snapshotPath('r2-bs')]);
      await store.delete('r2-bs', []);
      await store.btrfs.waitForDeletions(device!.mount);
      expect(await deviceState()).toBe(before);
      // cut inside the batch, between its sources and its patch
      await writeFile(join(out, 'batch-cut.delta'), raw.subarray(0, patchData.at - 3));
      await expect(receiveDelta(join(out, 'batch-cut.delta'), 'r2-bt', 'r1', 'none')).rejects.toMatchObject({
        code: ErrorCode.DeltaCorrupt,
        message: expect.stringMatching(/truncated/),
      });
      expect(await deviceState()).toBe(before);
    });

    it('refuses a truncated delta (compressed or not) and leaves the device untouched', async () => {
      const before = await deviceState();
      const raw = rawDelta();
      for (const cut of [Math.floor(raw.length / 2), raw.length - 5]) {
        await writeFile(join(out, 'cut.delta'), raw.subarray(0, cut));
        await expect(receiveDelta(join(out, 'cut.delta'), 'r2-cut', 'r1', 'none')).rejects.toMatchObject({
          code: ErrorCode.DeltaCorrupt,
          message: expect.stringMatching(/truncated/),
        });
        expect(await deviceState()).toBe(before);
      }
      const zst = await readFile(delta.path);
      await writeFile(join(out, 'cut.delta.zst'), zst.subarray(0, zst.length - 100));
      await expect(receiveDelta(join(out, 'cut.delta.zst'), 'r2-cutz')).rejects.toMatchObject({
        code: ErrorCode.DeltaCorrupt,
      });
      expect(await deviceState()).toBe(before);
    });

    it('refuses a reconstruction whose sha256 is not the manifest’s', async () => {
      const before = await deviceState();
      const handle = await open(delta.path, 'r');
      await expect(
        store.receiveDelta(
          { fd: handle.fd, compression: 'zstd' },
          { parentId: 'r1', reconstructs: { size: delta.plain.size, sha256: 'f'.repeat(64) } },
          { snapshotId: 'r2-sha', release: { name: 'r', version: '2' }, expectedReceivedUuid: r2Uuid },
        ),
      ).rejects.toMatchObject({ code: ErrorCode.DeltaMismatch });
      await handle.close();
      expect(await deviceState()).toBe(before);
    });
  },
);
