import { isSnapshotAncestor, SubvolumeLink } from './subvolume-ancestry';

describe(isSnapshotAncestor.name, () => {
  // a ← b ← c (c snapshotted from b, b from a); x unrelated; d's parent was deleted
  const a: SubvolumeLink = { uuid: 'a', parentUuid: null };
  const b: SubvolumeLink = { uuid: 'b', parentUuid: 'a' };
  const c: SubvolumeLink = { uuid: 'c', parentUuid: 'b' };
  const x: SubvolumeLink = { uuid: 'x', parentUuid: null };
  const d: SubvolumeLink = { uuid: 'd', parentUuid: 'gone' };
  const pool = [a, b, c, x, d];

  it('follows the parent chain through every generation', () => {
    expect(isSnapshotAncestor('b', c, pool)).toBe(true);
    expect(isSnapshotAncestor('a', c, pool)).toBe(true);
  });

  it('is false for unrelated subvolumes, descendants and the subvolume itself', () => {
    expect(isSnapshotAncestor('x', c, pool)).toBe(false);
    expect(isSnapshotAncestor('c', a, pool)).toBe(false);
    expect(isSnapshotAncestor('c', c, pool)).toBe(false);
  });

  it('stops at a deleted link instead of guessing', () => {
    expect(isSnapshotAncestor('a', d, pool)).toBe(false);
    expect(isSnapshotAncestor('gone', d, pool)).toBe(true);
  });

  it('terminates on a corrupt listing with a cycle', () => {
    const p: SubvolumeLink = { uuid: 'p', parentUuid: 'q' };
    const q: SubvolumeLink = { uuid: 'q', parentUuid: 'p' };
    expect(isSnapshotAncestor('z', p, [p, q])).toBe(false);
  });
});
