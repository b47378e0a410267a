# cowroot early boot: the shared logic of the initramfs step, sourced by POSIX sh (busybox ash or dash).
# Used by the busybox initramfs (busybox-init) and by the initramfs-tools script (scripts/local-bottom/cowroot).
#
# Layout of the btrfs pool (top level, subvolid 5), shared with libs/device:
#   /snapshots/<id>   read-only snapshots; u-boot boots /snapshots/<id>/boot/*
#   /workspace        the read-write copy of the booted snapshot; thrown away at every boot
# The booted snapshot comes from the kernel command line: cowroot.snapshot=<id> (set by uboot/boot.cmd).

COWROOT_SNAPSHOTS_DIR=snapshots
COWROOT_WORKSPACE=workspace

# Prints on the console and the kernel log, so a failure is visible on a serial console without a shell.
cowroot_log() {
  echo "cowroot: $*"
  [ -w /dev/kmsg ] && echo "cowroot: $*" >/dev/kmsg 2>/dev/null
  return 0
}

cowroot_fail() {
  cowroot_log "FAILED: $*"
  return 1
}

# cowroot_cmdline_arg NAME: prints the value of NAME=value from the kernel command line; fails when
# absent. COWROOT_CMDLINE names another file to read (tests).
cowroot_cmdline_arg() {
  for cowroot_arg in $(cat "${COWROOT_CMDLINE:-/proc/cmdline}"); do
    case "$cowroot_arg" in
      "$1="*) echo "${cowroot_arg#*=}"; return 0 ;;
    esac
  done
  return 1
}

# cowroot_grow_pool POOL_MOUNT: makes the pool's filesystem fill its partition (docs/factory.md "The pool
# grows on first boot"). A factory image's btrfs is as large as the image's partition; after flashing, the
# partition may have been grown to the end of the storage, and the first boot takes the rest. On every
# later boot it is a no-op: the kernel ignores a resize to the current size (no transaction, no write).
# Never fatal: a pool that cannot grow still boots.
cowroot_grow_pool() {
  btrfs filesystem resize max "$1" >/dev/null 2>&1 \
    || cowroot_log "cannot grow the pool to its partition (booting on)"
  return 0
}

# cowroot_prepare_root DEVICE POOL_MOUNT NEW_ROOT
# Mounts the pool's top level at POOL_MOUNT, deletes the previous workspace, snapshots the booted read-only
# snapshot as the new rw workspace, unmounts the pool and mounts the workspace at NEW_ROOT.
cowroot_prepare_root() {
  cowroot_dev=$1
  cowroot_pool=$2
  cowroot_newroot=$3
  cowroot_snapshot=$(cowroot_cmdline_arg cowroot.snapshot) \
    || { cowroot_fail "no cowroot.snapshot= on the kernel command line"; return 1; }
  case "$cowroot_snapshot" in
    ''|*/*|.|..) cowroot_fail "invalid cowroot.snapshot=$cowroot_snapshot"; return 1 ;;
  esac
  mkdir -p "$cowroot_pool" "$cowroot_newroot"
  if ! mount -t btrfs -o subvolid=5 "$cowroot_dev" "$cowroot_pool"; then
    # Linux mounts from the primary superblock only. A power cut that tore its write leaves valid backup
    # copies (docs/boot-safety.md): put the newest valid one back in place, then mount again.
    cowroot_log "cannot mount the btrfs pool $cowroot_dev; restoring its superblock from a backup copy"
    btrfs rescue super-recover -y "$cowroot_dev" >/dev/null 2>&1
    mount -t btrfs -o subvolid=5 "$cowroot_dev" "$cowroot_pool" \
      || { cowroot_fail "cannot mount the btrfs pool $cowroot_dev"; return 1; }
  fi
  cowroot_grow_pool "$cowroot_pool"
  cowroot_src="$cowroot_pool/$COWROOT_SNAPSHOTS_DIR/$cowroot_snapshot"
  cowroot_ws="$cowroot_pool/$COWROOT_WORKSPACE"
  if [ ! -d "$cowroot_src" ]; then
    umount "$cowroot_pool"
    cowroot_fail "snapshot $cowroot_snapshot not found in $cowroot_dev"
    return 1
  fi
  if [ -e "$cowroot_ws" ]; then
    # the previous boot's changes are discarded here: that is the point of the workspace
    btrfs subvolume delete "$cowroot_ws" >/dev/null \
      || { umount "$cowroot_pool"; cowroot_fail "cannot delete the previous workspace"; return 1; }
  fi
  btrfs subvolume snapshot "$cowroot_src" "$cowroot_ws" >/dev/null \
    || { umount "$cowroot_pool"; cowroot_fail "cannot snapshot $cowroot_snapshot as the workspace"; return 1; }
  umount "$cowroot_pool"
  mount -t btrfs -o "subvol=/$COWROOT_WORKSPACE" "$cowroot_dev" "$cowroot_newroot" \
    || { cowroot_fail "cannot mount the workspace"; return 1; }
  cowroot_log "workspace created from snapshot $cowroot_snapshot"
  return 0
}
