/** What the ancestry check needs to know of one subvolume (`btrfs subvolume list -u -q`). */
export interface SubvolumeLink {
  uuid: string;
  /** uuid of the subvolume this one was snapshotted from, null for a fresh subvolume */
  parentUuid: string | null;
}

/**
 * True when `ancestorUuid` is on the snapshot chain of `descendant`: its parent, its parent's parent, …
 * The chain is followed through the pool's subvolumes; a deleted link ends it (the ancestry can no longer
 * be proven, so it is treated as not an ancestor). Cycles cannot happen in btrfs, but a bounded walk keeps
 * a corrupt listing from hanging the build.
 */
export function isSnapshotAncestor(
  ancestorUuid: string,
  descendant: SubvolumeLink,
  subvolumes: SubvolumeLink[],
): boolean {
  const byUuid = new Map(subvolumes.map((subvolume) => [subvolume.uuid, subvolume]));
  let parentUuid = descendant.parentUuid;
  for (let hops = 0; parentUuid && hops <= subvolumes.length; hops += 1) {
    if (parentUuid === ancestorUuid) return true;
    parentUuid = byUuid.get(parentUuid)?.parentUuid ?? null;
  }
  return false;
}
