#!/usr/bin/env bash
# Assembles the virtual device's disk image:
#   p1  FAT   boot.scr (uboot/boot.cmd), uboot.env + uboot-redund.env (the redundant u-boot env)
#   p2  btrfs the pool: /snapshots/1 (current), /snapshots/2 (a good trial), /snapshots/3 (corrupt kernel)
#   p3  raw   the control area: what the guest's test agent does at its next boot (tools/vdev/guest/init)
# Usage: make-disk.sh OUT_IMAGE U_BOOT_INITIAL_ENV GUEST_ROOT SWITCH_ENV_INCLUDE [x86|arm64]
# The partitions are built as separate image files and concatenated behind an MBR (no loop partitions,
# no udev needed); only the btrfs image is loop-mounted (mount -o loop picks a free loop device).
set -euo pipefail
out=$1 initial_env=$2 guest_root=$3 switch_include=$4 board=${5:-x86}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { echo "[vdev-disk] $*" >&2; }

fat_mib=32 btrfs_mib=256 control_mib=1
work=$(mktemp -d /tmp/cowroot-vdev-disk.XXXXXX)
mnt=$work/mnt
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" || umount -l "$mnt"; fi
  rm -rf "$work"
}
trap cleanup EXIT

kver=$(ls "$guest_root/lib/modules")
case "$board" in
  x86) arch_libdir=lib/i386-linux-gnu loader=ld-linux.so.2 console=ttyS0 mkimage_arch=x86 ;;
  arm64) arch_libdir=lib/aarch64-linux-gnu loader=ld-linux-aarch64.so.1 console=ttyAMA0 mkimage_arch=arm64 ;;
  *) log "unknown board '$board' (x86 or arm64)"; exit 2 ;;
esac

# --- the guest userland shared by the initramfs and the root file system -------------------------------
# stage_userland DIR: busybox with its applet links, btrfs, fw_setenv/fw_printenv and their libraries.
stage_userland() {
  local root=$1
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,mnt,var}
  cp "$guest_root/bin/busybox" "$root/bin/busybox"
  # the applet list of the host's busybox-static (same Debian version as the guest's)
  # Relative links only: an absolute /bin/busybox link inside the staging tree would point at the
  # HOST's busybox for every later cp into that path.
  busybox --list-full | while read -r applet; do
    [ -e "$root/$applet" ] || [ -L "$root/$applet" ] && continue
    local up
    up=$(dirname "$applet" | sed 's|[^/]*|..|g')
    ln -s "$up/bin/busybox" "$root/$applet"
  done
  local binaries=(bin/btrfs usr/bin/fw_setenv usr/bin/fw_printenv)
  for bin in "${binaries[@]}"; do
    mkdir -p "$root/$(dirname "$bin")"
    rm -f "$root/$bin"
    cp "$guest_root/$bin" "$root/$bin"
  done
  # the shared libraries they need, transitively (readelf reads i386 and aarch64 ELF files on the host)
  local pending=("${binaries[@]}") seen=" " file lib path
  mkdir -p "$root/$arch_libdir" "$root/lib"
  cp -L "$guest_root/$arch_libdir/$loader" "$root/lib/$loader"
  while [ ${#pending[@]} -gt 0 ]; do
    file=${pending[0]}; pending=("${pending[@]:1}")
    for lib in $(readelf -d "$guest_root/$file" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
      case "$seen" in *" $lib "*) continue ;; esac
      seen="$seen$lib "
      path=""
      for dir in "$arch_libdir" "usr/$arch_libdir"; do
        [ -e "$guest_root/$dir/$lib" ] && { path=$dir/$lib; break; }
      done
      [ -n "$path" ] || { log "library $lib (needed by $file) is not in the guest packages"; exit 1; }
      cp -L "$guest_root/$path" "$root/$arch_libdir/$lib"
      pending+=("$path")
    done
  done
}

# --- initramfs: busybox + the cowroot workspace step (deploy/initramfs) ----------------------------------
log "initramfs"
initramfs=$work/initramfs
stage_userland "$initramfs"
mkdir -p "$initramfs/lib/cowroot" "$initramfs/newroot"
cp "$repo/deploy/initramfs/busybox-init" "$initramfs/init"
cp "$repo/deploy/initramfs/cowroot-workspace.sh" "$initramfs/lib/cowroot/cowroot-workspace.sh"
# i6300esb: QEMU's watchdog, which the guest arms for the hung-trial scenario
modules=(virtio_pci virtio_blk btrfs vfat nls_cp437 nls_ascii nls_iso8859-1 nls_utf8 i6300esb)
depmod -b "$guest_root" "$kver"
for module in "${modules[@]}"; do
  modprobe -d "$guest_root" -S "$kver" --show-depends "$module" | awk '$1 == "insmod" { print $2 }'
done | sort -u | while read -r ko; do
  rel=${ko#"$guest_root"/}
  mkdir -p "$initramfs/$(dirname "$rel")"
  cp "$ko" "$initramfs/$rel"
done
cp "$guest_root/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$initramfs/lib/modules/$kver/"
depmod -b "$initramfs" "$kver"
(IFS=,; echo "${modules[*]}") >"$initramfs/etc/cowroot-modules"
(cd "$initramfs" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

# --- root file system of snapshot 1 --------------------------------------------------------------------
log "root file system"
rootfs=$work/rootfs
stage_userland "$rootfs"
mkdir -p "$rootfs/boot" "$rootfs/uboot" "$rootfs/etc/cowroot" "$rootfs/pool"
rm -f "$rootfs/sbin/init" # an applet link: replace it, never write through it
cp "$here/guest/init" "$rootfs/sbin/init"
chmod 755 "$rootfs/sbin/init"
cp "$switch_include" "$rootfs/etc/cowroot/switch-env.sh"
printf '%s\n' '/uboot/uboot.env 0x0 0x4000' '/uboot/uboot-redund.env 0x0 0x4000' >"$rootfs/etc/fw_env.config"
echo 1 >"$rootfs/etc/cowroot-release"
if [ "$board" = x86 ]; then
  # x86: a legacy uImage wrapping the bzImage (kernel_noload: it stays where it was loaded), zbooted
  mkimage -A x86 -O linux -T kernel_noload -C none -a 0 -e 0 -n "linux $kver" \
    -d "$guest_root/boot/vmlinuz-$kver" "$rootfs/boot/uImage" >/dev/null
else
  # arm64: Debian's vmlinuz is the plain Image (32 MiB); gzipped it is a third of that to read from
  # btrfs and checksum under TCG. bootm checks the header and data CRC, unpacks it to the 2 MiB aligned
  # load address 0x40400000 (RAM base + 4 MiB: clear of the device tree QEMU puts at the RAM base and of
  # boot.scr at 0x40200000) and enters it there. kernel_addr_r (0x48000000) leaves 124 MiB below it for
  # the unpacked Image; ramdisk_addr_r (0x4c000000) 64 MiB above it for the kernel's uImage.
  gzip -n -6 -c "$guest_root/boot/vmlinuz-$kver" >"$work/Image.gz"
  mkimage -A arm64 -O linux -T kernel -C gzip -a 0x40400000 -e 0x40400000 -n "linux $kver" \
    -d "$work/Image.gz" "$rootfs/boot/uImage" >/dev/null
fi
mkimage -A "$mkimage_arch" -O linux -T ramdisk -C none -a 0 -e 0 -n "cowroot initrd" \
  -d "$work/initrd.gz" "$rootfs/boot/uInitrd" >/dev/null

# --- btrfs pool --------------------------------------------------------------------------------------
log "btrfs pool"
truncate -s ${btrfs_mib}M "$work/btrfs.img"
mkfs.btrfs -q -L cowroot "$work/btrfs.img"
mkdir -p "$mnt"
mount -o loop "$work/btrfs.img" "$mnt"
mkdir "$mnt/snapshots"
btrfs -q subvolume create "$mnt/snapshots/1"
cp -a "$rootfs/." "$mnt/snapshots/1/"
btrfs -q subvolume snapshot "$mnt/snapshots/1" "$mnt/snapshots/2"
echo 2 >"$mnt/snapshots/2/etc/cowroot-release"
btrfs -q subvolume snapshot "$mnt/snapshots/1" "$mnt/snapshots/3"
echo 3 >"$mnt/snapshots/3/etc/cowroot-release"
# flip bytes in the middle of the kernel: the uImage data checksum no longer matches
size=$(stat -c %s "$mnt/snapshots/3/boot/uImage")
printf 'cowroot-corrupt-kernel' | dd of="$mnt/snapshots/3/boot/uImage" bs=1 seek=$((size / 2)) conv=notrunc status=none
for id in 1 2 3; do btrfs property set -ts "$mnt/snapshots/$id" ro true; done
umount "$mnt"

# --- FAT: boot script and the redundant env -----------------------------------------------------------
log "boot partition"
mkimage -A "$mkimage_arch" -O linux -T script -C none -n cowroot -d "$repo/uboot/boot.cmd" "$work/boot.scr" >/dev/null
{
  # arm64 sets its own load addresses below
  grep -v -e '^bootargs=' -e '^bootcmd=' "$initial_env" | { [ "$board" = x86 ] && cat || grep -v -e '^kernel_addr_r=' -e '^ramdisk_addr_r='; }
  echo 'bootcmd=load virtio 0:1 ${scriptaddr} boot.scr && source ${scriptaddr}'
  echo 'cowroot_disk=virtio 0:2'
  echo "cowroot_bootargs=console=$console root=/dev/vda2 panic=-1 loglevel=4"
  if [ "$board" = x86 ]; then
    # x86: zboot the bzImage inside the uImage (data after the 64-byte legacy header); see uboot/README.md
    echo 'cowroot_boot=setexpr cr_kdata ${kernel_addr_r} + 0x40; setexpr cr_rddata ${ramdisk_addr_r} + 0x40; zboot ${cr_kdata} 0 ${cr_rddata} ${cr_rdsize}'
  else
    # arm64: bootm of uImage + uInitrd with the device tree QEMU generated (fdt_addr, the RAM base)
    echo 'kernel_addr_r=0x48000000'
    echo 'ramdisk_addr_r=0x4c000000'
    echo 'cowroot_boot=bootm ${kernel_addr_r} ${ramdisk_addr_r} ${fdt_addr}'
  fi
  echo 'cowroot_current=1'
} >"$work/env.txt"
mkenvimage -r -s 0x4000 -o "$work/uboot.env" "$work/env.txt"
cp "$work/uboot.env" "$work/uboot-redund.env"
# incremental flags (u-boot's ENV_FAT): the copy with the higher flag is the newer one
printf '\001' | dd of="$work/uboot.env" bs=1 seek=4 conv=notrunc status=none
printf '\000' | dd of="$work/uboot-redund.env" bs=1 seek=4 conv=notrunc status=none
truncate -s ${fat_mib}M "$work/fat.img"
mkfs.vfat -n COWBOOT "$work/fat.img" >/dev/null
mcopy -i "$work/fat.img" "$work/boot.scr" "$work/uboot.env" "$work/uboot-redund.env" ::/

# --- the disk: MBR + p1 + p2 + p3 -----------------------------------------------------------------------
log "disk image"
truncate -s 1M "$work/disk.img"
cat "$work/fat.img" "$work/btrfs.img" >>"$work/disk.img"
truncate -s $((1 + fat_mib + btrfs_mib + control_mib))M "$work/disk.img"
sfdisk -q "$work/disk.img" <<EOF
label: dos
start=1MiB, size=${fat_mib}MiB, type=c
start=$((1 + fat_mib))MiB, size=${btrfs_mib}MiB, type=83
start=$((1 + fat_mib + btrfs_mib))MiB, size=${control_mib}MiB, type=da
EOF
mv "$work/disk.img" "$out"
log "wrote $out"
