import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactKind, ErrorCode, MANIFEST_FORMAT, RebootMode, signManifest } from '@cowroot/protocol';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { CommandRunner } from '@cowroot/device';
import { DeltaWriter, WrittenDelta } from '../../../../deploy/release/src/delta/delta-writer.service';
import { AgentRig, BuiltRelease } from '../testing/agent-rig';

const requirements = [
  requireRoot,
  requireLoopDevices,
  requireCommand('btrfs'),
  requireCommand('fw_setenv'),
  requireCommand('mkenvimage'),
  requireCommand('zstd'),
];

// The agent's install path with a delta artifact (docs/agent.md §4.3): download, verify, rebuild against the
// held parent into btrfs receive; a rebuild that does not match the signed manifest fails and leaves nothing.
describePrivileged('Agent installs a delta artifact on a real btrfs pool', requirements, () => {
  const rig = new AgentRig();
  let r1: BuiltRelease;
  let r2: BuiltRelease;
  let delta: WrittenDelta;
  const library = randomBytes(2 * 1024 * 1024);

  /** A signed delta manifest for `delta` (mutate to break it). */
  async function deltaArtifact(mutate: (m: Record<string, unknown>) => void = () => undefined) {
    const data = await readFile(delta.path);
    const manifest: Record<string, unknown> = {
      format: MANIFEST_FORMAT,
      release: { name: 'base', version: 'r2' },
      kind: ArtifactKind.Delta,
      file: 'r2-from-r1.delta.zst',
      size: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      compression: 'zstd',
      snapshotUuid: r2.uuid,
      parent: { release: { name: 'base', version: 'r1' }, snapshotUuid: r1.uuid },
      createdAt: new Date().toISOString(),
      reconstructs: delta.plain,
    };
    mutate(manifest);
    const bytes = Buffer.from(JSON.stringify(manifest));
    return { manifest: bytes, signature: signManifest(bytes, rig.releaseKey.privateKey) };
  }

  beforeAll(async () => {
    await rig.setUp();
    r1 = await rig.builder.build('r1', {
      'boot/uImage': 'kernel\n',
      'etc/os-release': 'VERSION=1\n',
      'usr/lib/libx.so.1.0': library,
    });
    const upgraded = Buffer.from(library);
    upgraded.write('upgraded code'.repeat(100), 700_000);
    r2 = await rig.builder.build(
      'r2',
      { 'etc/os-release': 'VERSION=2\n', 'usr/lib/libx.so.1.0': null, 'usr/lib/libx.so.1.1': upgraded },
      r1,
    );
    await rig.provision(r1, 'r1');
    delta = await new DeltaWriter(new CommandRunner()).write({
      send: { command: 'btrfs', args: ['send', '-q', '-p', r1.path, r2.path] },
      parentRoot: r1.path,
      newRoot: r2.path,
      path: join(rig.dir, 'r2-from-r1.delta.zst'),
    });
    await rig.startAgent();
  }, 120_000);

  afterAll(async () => {
    await rig.tearDown();
  });

  it('refuses a delta whose rebuild does not match the manifest (DELTA_MISMATCH) and keeps the pool as it was', async () => {
    const before = (await rig.store.list()).map((s) => s.id);
    const artifact = await deltaArtifact((m) => {
      m.reconstructs = { size: delta.plain.size, sha256: 'e'.repeat(64) };
    });
    const url = rig.http.serve('bad.delta.zst', delta.path);
    const command = rig.installCommand(artifact, url, { mode: RebootMode.Never, snapshotId: 'r2-bad' });
    await rig.send(command);
    const failed = await rig.waitForEvent(command.commandId as string, 'failed');
    expect(failed).toMatchObject({ error: { code: ErrorCode.DeltaMismatch } });
    expect((await rig.store.list()).map((s) => s.id)).toEqual(before);
    expect(await rig.store.stagingEntries()).toEqual([]);
  });

  it('installs it: the library came as a patch against its old versioned name, the snapshot is release 2', async () => {
    // the library in its own section, os-release (small) in a batch of one
    expect(delta).toMatchObject({ patchedFiles: 2, batches: 1 });
    const artifact = await deltaArtifact();
    const url = rig.http.serve('r2-from-r1.delta.zst', delta.path);
    const command = rig.installCommand(artifact, url, { mode: RebootMode.Never, snapshotId: 'r2' });
    await rig.send(command);
    const staged = await rig.waitForEvent(command.commandId as string, 'staged');
    expect(staged).toMatchObject({ snapshot: 'r2', bytesDownloaded: delta.size });
    expect(await rig.store.get('r2')).toMatchObject({ receivedUuid: r2.uuid, origin: 'received' });
    execFileSync('diff', ['-r', '--no-dereference', r2.path, join(rig.pool, 'snapshots', 'r2')]);
    rig.assertMessagesValid();
  });
});
