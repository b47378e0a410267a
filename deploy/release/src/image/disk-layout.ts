import { BoardProfile } from './board-profile';

const SECTOR = 512;

/**
 * The sfdisk script for the profile's partition table (`sfdisk <image>` reads it on stdin). Starts and
 * sizes in sectors, exactly as placePartitions put them, so the offsets the image writer uses for its loop
 * devices are the ones the table says; the pool partition is the one u-boot's `cowroot_disk` names.
 */
export function renderSfdiskScript(profile: BoardProfile): string {
  const lines = [`label: ${profile.table}`, 'unit: sectors'];
  for (const partition of profile.partitions) {
    const fields = [
      `start=${partition.offset / SECTOR}`,
      `size=${partition.size / SECTOR}`,
      `type=${partition.type}`,
      ...(partition.role === 'boot' && profile.table === 'dos' ? ['bootable'] : []),
    ];
    lines.push(fields.join(', '));
  }
  return `${lines.join('\n')}\n`;
}

/** One partition as `sfdisk -J` reports it. */
export interface TablePartition {
  start: number;
  size: number;
  type: string;
}

/** Parses `sfdisk -J <image>` into starts and sizes in bytes (sfdisk counts sectors). */
export function parseSfdiskJson(text: string): { table: string; partitions: TablePartition[] } {
  const parsed = JSON.parse(text) as {
    partitiontable: { label: string; sectorsize?: number; partitions: { start: number; size: number; type: string }[] };
  };
  const sector = parsed.partitiontable.sectorsize ?? SECTOR;
  return {
    table: parsed.partitiontable.label,
    partitions: parsed.partitiontable.partitions.map((p) => ({
      start: p.start * sector,
      size: p.size * sector,
      type: p.type,
    })),
  };
}
