/**
 * Shapes of the identifiers that appear in topics, env variables and paths (docs/protocol.md §3).
 * They are deliberately narrow: a device id becomes an MQTT topic level, a snapshot id a directory
 * name on the device and a u-boot env value.
 */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const SNAPSHOT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const RELEASE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const RELEASE_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$/;
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/;
/** A UUID in any case: ids the server hands out (randomUUID) and PostgreSQL uuid columns accept. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** btrfs subvolume UUIDs as `btrfs subvolume show` prints them. */
export const BTRFS_UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isDeviceId(value: string): boolean {
  return DEVICE_ID_PATTERN.test(value) && !value.includes('..');
}

export function isSnapshotId(value: string): boolean {
  return SNAPSHOT_ID_PATTERN.test(value) && !value.includes('..');
}
