import { ArtifactKind } from '@cowroot/protocol';
import { ArtifactPicker, DeviceSnapshot, PickableArtifact, UNREPORTED_DELTA_FORMATS } from './artifact-picker';

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
/** what an agent of this release reports */
const ALL_FORMATS = [1, 2, 3];

function received(id: string, receivedUuid: string): DeviceSnapshot {
  return { id, receivedUuid, readOnly: true };
}

describe(ArtifactPicker.name, () => {
  const picker = new ArtifactPicker();

  it('picks the incremental whose parent the device received', () => {
    const choice = picker.pick(release, [full, fromV1, fromV2], [received('factory', UUID_V1)], ALL_FORMATS);
    expect(choice).toEqual({ type: 'incremental', artifact: fromV1, parentSnapshotId: 'factory' });
  });

  it('picks the smallest incremental when the device holds several parents', () => {
    const choice = picker.pick(
      release,
      [full, fromV1, fromV2],
      [received('a', UUID_V1), received('b', UUID_V2)],
      ALL_FORMATS,
    );
    expect(choice).toEqual({ type: 'incremental', artifact: fromV2, parentSnapshotId: 'b' });
  });

  it('prefers the delta artifact when the device holds its parent (issue 14)', () => {
    const choice = picker.pick(release, [full, fromV1, deltaFromV1], [received('factory', UUID_V1)], ALL_FORMATS);
    expect(choice).toEqual({ type: 'delta', artifact: deltaFromV1, parentSnapshotId: 'factory' });
  });

  it('falls back to the plain incremental when the delta’s parent is not held, then to the full stream', () => {
    const artifacts = [full, fromV2, deltaFromV1];
    expect(picker.pick(release, artifacts, [received('b', UUID_V2)], ALL_FORMATS)).toEqual({
      type: 'incremental',
      artifact: fromV2,
      parentSnapshotId: 'b',
    });
    expect(picker.pick(release, artifacts, [received('x', LOCAL)], ALL_FORMATS)).toEqual({
      type: 'full',
      artifact: full,
    });
  });

  it('falls back to the full stream when the device holds no parent', () => {
    const choice = picker.pick(release, [fromV1, full], [received('other', LOCAL)], ALL_FORMATS);
    expect(choice).toEqual({ type: 'full', artifact: full });
  });

  it('never uses a committed snapshot (no received_uuid) as a parent, even if its own uuid matches', () => {
    const committed: DeviceSnapshot = { id: 'local-1', receivedUuid: null, readOnly: true };
    const choice = picker.pick(release, [full, fromV1], [committed], ALL_FORMATS);
    expect(choice).toEqual({ type: 'full', artifact: full });
  });

  it('ignores a writable subvolume carrying the received_uuid (btrfs receive needs a read-only parent)', () => {
    const workspace: DeviceSnapshot = { id: 'workspace', receivedUuid: UUID_V1, readOnly: false };
    expect(picker.pick(release, [full, fromV1], [workspace], ALL_FORMATS)).toEqual({ type: 'full', artifact: full });
  });

  it('reports a release the device already holds, so nothing is downloaded', () => {
    const choice = picker.pick(
      release,
      [full, fromV1],
      [received('v1', UUID_V1), received('v3', UUID_V3)],
      ALL_FORMATS,
    );
    expect(choice).toEqual({ type: 'held', snapshotId: 'v3' });
  });

  describe('delta formats', () => {
    const format = (n: number | null): TestArtifact => ({ ...deltaFromV1, deltaFormat: n });
    const holdsV1 = [received('factory', UUID_V1)];

    it('offers a delta of known format to a device that reports reading it', () => {
      expect(picker.pick(release, [full, fromV1, format(3)], holdsV1, [1, 2, 3])).toMatchObject({ type: 'delta' });
      expect(picker.pick(release, [full, fromV1, format(2)], holdsV1, [2])).toMatchObject({ type: 'delta' });
    });

    it('skips a delta whose format the device does not list: the plain incremental, else the full stream', () => {
      expect(picker.pick(release, [full, fromV1, format(3)], holdsV1, [1, 2])).toEqual({
        type: 'incremental',
        artifact: fromV1,
        parentSnapshotId: 'factory',
      });
      expect(picker.pick(release, [full, format(3)], holdsV1, [1, 2])).toEqual({ type: 'full', artifact: full });
      // an agent that reads no delta format at all
      expect(picker.pick(release, [full, fromV1, format(1)], holdsV1, [])).toMatchObject({ type: 'incremental' });
    });

    it('offers a device that never reported its formats only format 1 (what every delta-reading agent reads)', () => {
      expect(UNREPORTED_DELTA_FORMATS).toEqual([1]);
      expect(picker.pick(release, [full, fromV1, format(1)], holdsV1, null)).toMatchObject({ type: 'delta' });
      for (const n of [2, 3]) {
        expect(picker.pick(release, [full, fromV1, format(n)], holdsV1, null)).toMatchObject({ type: 'incremental' });
      }
    });

    it('keeps offering a delta of unknown format (a manifest without deltaFormat) to every device, as before', () => {
      for (const formats of [null, [], [1, 2]]) {
        expect(picker.pick(release, [full, fromV1, format(null)], holdsV1, formats)).toMatchObject({ type: 'delta' });
        expect(picker.pick(release, [full, fromV1, deltaFromV1], holdsV1, formats)).toMatchObject({ type: 'delta' });
      }
    });

    it('ignores formats for plain incrementals and full streams', () => {
      const odd = { ...fromV1, deltaFormat: 9 };
      expect(picker.pick(release, [full, odd], holdsV1, [])).toMatchObject({ type: 'incremental', artifact: odd });
    });
  });

  it('answers none when there is neither a full stream nor a usable incremental', () => {
    expect(picker.pick(release, [fromV1], [], ALL_FORMATS)).toEqual({ type: 'none' });
    expect(picker.pick({ snapshotUuid: null }, [], [received('v1', UUID_V1)], ALL_FORMATS)).toEqual({ type: 'none' });
  });
});
