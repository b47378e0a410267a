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
