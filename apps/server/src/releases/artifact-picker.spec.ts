import { ArtifactKind } from '@cowroot/protocol';
import { ArtifactPicker, DeviceSnapshot, PickableArtifact } from './artifact-picker';

const UUID_V1 = '11111111-1111-1111-1111-111111111111';
const UUID_V2 = '22222222-2222-2222-2222-222222222222';
const UUID_V3 = '33333333-3333-3333-3333-333333333333';
const LOCAL = '99999999-9999-9999-9999-999999999999';

interface TestArtifact extends PickableArtifact {
  file: string;
}

const full: TestArtifact = { file: 'full.zst', kind: ArtifactKind.Full, parentSnapshotUuid: null, size: 1000 };
const fromV1: TestArtifact = {
  file: 'from-v1.zst',
  kind: ArtifactKind.Incremental,
  parentSnapshotUuid: UUID_V1,
  size: 300,
};
const fromV2: TestArtifact = {
  file: 'from-v2.zst',
  kind: ArtifactKind.Incremental,
  parentSnapshotUuid: UUID_V2,
  size: 100,
};
const deltaFromV1: TestArtifact = {
  file: 'from-v1.delta.zst',
  kind: ArtifactKind.Delta,
  parentSnapshotUuid: UUID_V1,
  size: 40,
};
const release = { snapshotUuid: UUID_V3 };

function received(id: string, receivedUuid: string): DeviceSnapshot {
  return { id, receivedUuid, readOnly: true };
}

describe(ArtifactPicker.name, () => {
  const picker = new ArtifactPicker();

  it('picks the incremental whose parent the device received', () => {
    const choice = picker.pick(release, [full, fromV1, fromV2], [received('factory', UUID_V1)]);
    expect(choice).toEqual({ type: 'incremental', artifact: fromV1, parentSnapshotId: 'factory' });
  });

  it('picks the smallest incremental when the device holds several parents', () => {
    const choice = picker.pick(release, [full, fromV1, fromV2], [received('a', UUID_V1), received('b', UUID_V2)]);
    expect(choice).toEqual({ type: 'incremental', artifact: fromV2, parentSnapshotId: 'b' });
  });

  it('prefers the delta artifact when the device holds its parent (issue 14)', () => {
    const choice = picker.pick(release, [full, fromV1, deltaFromV1], [received('factory', UUID_V1)]);
    expect(choice).toEqual({ type: 'delta', artifact: deltaFromV1, parentSnapshotId: 'factory' });
  });

  it('falls back to the plain incremental when the delta’s parent is not held, then to the full stream', () => {
    const artifacts = [full, fromV2, deltaFromV1];
    expect(picker.pick(release, artifacts, [received('b', UUID_V2)])).toEqual({
      type: 'incremental',
      artifact: fromV2,
      parentSnapshotId: 'b',
    });
    expect(picker.pick(release, artifacts, [received('x', LOCAL)])).toEqual({ type: 'full', artifact: full });
  });

  it('falls back to the full stream when the device holds no parent', () => {
    const choice = picker.pick(release, [fromV1, full], [received('other', LOCAL)]);
    expect(choice).toEqual({ type: 'full', artifact: full });
  });

  it('never uses a committed snapshot (no received_uuid) as a parent, even if its own uuid matches', () => {
    const committed: DeviceSnapshot = { id: 'local-1', receivedUuid: null, readOnly: true };
    const choice = picker.pick(release, [full, fromV1], [committed]);
    expect(choice).toEqual({ type: 'full', artifact: full });
  });

  it('ignores a writable subvolume carrying the received_uuid (btrfs receive needs a read-only parent)', () => {
    const workspace: DeviceSnapshot = { id: 'workspace', receivedUuid: UUID_V1, readOnly: false };
    expect(picker.pick(release, [full, fromV1], [workspace])).toEqual({ type: 'full', artifact: full });
  });

  it('reports a release the device already holds, so nothing is downloaded', () => {
    const choice = picker.pick(release, [full, fromV1], [received('v1', UUID_V1), received('v3', UUID_V3)]);
    expect(choice).toEqual({ type: 'held', snapshotId: 'v3' });
  });

  it('answers none when there is neither a full stream nor a usable incremental', () => {
    expect(picker.pick(release, [fromV1], [])).toEqual({ type: 'none' });
    expect(picker.pick({ snapshotUuid: null }, [], [received('v1', UUID_V1)])).toEqual({ type: 'none' });
  });
});
