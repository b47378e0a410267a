/**
 * Parsers for the text that btrfs-progs prints (checked against btrfs-progs 6.2 output captured in
 * fixtures/). Kept apart from the adapter so they are unit-tested without a filesystem.
 */

/** One line of `btrfs subvolume list -u -q -R <mount>`. */
export interface SubvolumeListEntry {
  id: number;
  generation: number;
  topLevel: number;
  /** relative to the mounted top level (subvolid=5) */
  path: string;
  uuid: string;
  /** null where btrfs prints '-' */
  parentUuid: string | null;
  receivedUuid: string | null;
}

/** `btrfs subvolume show <path>`, the fields cowroot uses. */
export interface SubvolumeDetails {
  name: string;
  id: number;
  uuid: string;
  parentUuid: string | null;
  receivedUuid: string | null;
  readOnly: boolean;
  /** as printed, e.g. '2026-11-26 00:43:19 +0000'; null when '-' */
  creationTime: string | null;
}

const LIST_LINE = /^ID (\d+) gen (\d+) top level (\d+) parent_uuid (\S+)\s+received_uuid (\S+)\s+uuid (\S+) path (.*)$/;

function uuidOrNull(value: string): string | null {
  return value === '-' ? null : value;
}

export function parseSubvolumeList(output: string): SubvolumeListEntry[] {
  const entries: SubvolumeListEntry[] = [];
  for (const line of output.split('\n')) {
    if (!line.trim()) continue;
    const match = LIST_LINE.exec(line);
    if (!match) throw new Error(`unexpected line in btrfs subvolume list output: ${JSON.stringify(line)}`);
    const [, id, gen, topLevel, parentUuid, receivedUuid, uuid, path] = match;
    entries.push({
      id: Number(id),
      generation: Number(gen),
      topLevel: Number(topLevel),
      // btrfs prints paths below the top level; with -a it would prefix '<FS_TREE>/', which we never pass
      path,
      uuid,
      parentUuid: uuidOrNull(parentUuid),
      receivedUuid: uuidOrNull(receivedUuid),
    });
  }
  return entries;
}

export function parseSubvolumeShow(output: string): SubvolumeDetails {
  const fields = new Map<string, string>();
  for (const line of output.split('\n')) {
    // "\tName: \t\t\ts2": key, colon, whitespace, value (the first line is the path, without a colon-tab)
    const match = /^\s+([A-Za-z][A-Za-z ()]*?):\s*(.*)$/.exec(line);
    if (match) fields.set(match[1], match[2].trim());
  }
  const required = (key: string): string => {
    const value = fields.get(key);
    if (value === undefined) throw new Error(`btrfs subvolume show output has no "${key}" field`);
    return value;
  };
  const flags = required('Flags');
  const creation = fields.get('Creation time') ?? '-';
  return {
    name: required('Name'),
    id: Number(required('Subvolume ID')),
    uuid: required('UUID'),
    parentUuid: uuidOrNull(required('Parent UUID')),
    receivedUuid: uuidOrNull(required('Received UUID')),
    readOnly: flags.split(/[\s,|]+/).includes('readonly'),
    creationTime: creation === '-' ? null : creation,
  };
}

/** "Free (estimated):" of `btrfs filesystem usage -b <mount>`, in bytes. */
export function parseFreeBytes(usageOutput: string): number {
  const match = /^\s*Free \(estimated\):\s+(\d+)/m.exec(usageOutput);
  if (!match) throw new Error('btrfs filesystem usage output has no "Free (estimated)" line');
  return Number(match[1]);
}

/** The subvolume that `btrfs receive` created, from its "At subvol X" / "At snapshot X" line. */
export function parseReceivedName(stderr: string): string | null {
  const match = /^At (?:subvol|snapshot) (.+)$/m.exec(stderr);
  return match ? match[1] : null;
}
