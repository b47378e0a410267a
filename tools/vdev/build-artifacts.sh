#!/usr/bin/env bash
# Builds (or reuses from the cache) what the virtual device needs that does not come from this repo:
#   - u-boot 2023.01 from Debian's source package, qemu-x86_defconfig + uboot/qemu-x86-cowroot.config
#   - the i386 Debian kernel and the i386 userland the guest runs (busybox, btrfs-progs, fw_setenv)
# Everything is fetched with apt from the Debian archive the machine already uses, through a private apt
# root under the cache dir (so the host's apt config and dpkg architectures stay untouched).
# Cache: ${COWROOT_CACHE_DIR:-/var/cache/cowroot}/vdev, keyed on package versions and the config fragment.
# Prints nothing on stdout but the final "key=path" lines (u_boot_rom, guest_root), for callers to parse.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${COWROOT_CACHE_DIR:-/var/cache/cowroot}/vdev
fragment=$repo/uboot/qemu-x86-cowroot.config
mkdir -p "$cache"
log() { echo "[vdev-build] $*" >&2; }
# one builder at a time per cache (the tests and a by-hand run may start together)
exec 9>"$cache/.lock"
flock 9

# Host tools for the u-boot build and the disk assembly (python3 may be a pyenv shim: use /usr/bin).
host_packages=(build-essential bc bison flex libssl-dev uuid-dev libgnutls28-dev swig python3-dev
  python3-setuptools python3-pyelftools dpkg-dev u-boot-tools libubootenv-tool btrfs-progs mtools
  dosfstools cpio kmod qemu-system-x86 fdisk)
missing=()
for pkg in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing host packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- private apt root: the machine's Debian sources, as deb (i386) + deb-src lines -------------------
aptroot=$cache/apt
mkdir -p "$aptroot/lists/partial" "$aptroot/archives/partial" "$aptroot/parts" "$aptroot/prefs"
: >"$aptroot/status"
derive_sources() {
  # one-line .list files
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1=="deb" { for (i=2;i<=NF;i++) if ($i !~ /^\[/) break; rest=""; for (j=i+1;j<=NF;j++) rest=rest" "$j;
          print $i" "rest }' "$f"
  done
  # deb822 .sources files: stanzas separated by blank lines
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no") { n=split(uris,u," "); m=split(suites,s," ");
            for (a=1;a<=n;a++) for (b=1;b<=m;b++) print u[a]" "s[b]" "comps }
            types=""; uris=""; suites=""; comps=""; enabled="" }
         /^[ \t]*#/ { next }
         /^[ \t]*$/ { flush(); next }
         { key=$1; sub(/:$/,"",key); $1=""; sub(/^ /,"");
           if (key=="Types") types=$0; else if (key=="URIs") uris=$0; else if (key=="Suites") suites=$0;
           else if (key=="Components") comps=$0; else if (key=="Enabled") enabled=$0 }
         END { flush() }' "$f"
  done
}
sources=$(derive_sources | awk '$1 ~ /\/debian(-security)?\/?$/' | sort -u)
[ -n "$sources" ] || { log "no Debian archive found in the machine's apt sources"; exit 1; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=""; [ -f "$keyring" ] && signed=" signed-by=$keyring"
printf '%s\n' "$sources" | awk -v signed="$signed" '{ print "deb [arch=i386" signed "] "$0; print "deb-src [" substr(signed,2) "] "$0 }' \
  | sed 's/deb-src \[\] /deb-src /' >"$aptroot/sources.list.new"
apt_opts=(-o "Dir::Etc::SourceList=$aptroot/sources.list" -o "Dir::Etc::SourceParts=$aptroot/parts"
  -o "Dir::Etc::Preferences=$aptroot/prefs/none" -o "Dir::Etc::PreferencesParts=$aptroot/prefs"
  -o "Dir::State::Lists=$aptroot/lists" -o "Dir::State::status=$aptroot/status"
  -o "Dir::Cache=$aptroot" -o "Dir::Cache::archives=$aptroot/archives"
  -o "APT::Architecture=i386" -o "APT::Architectures::=i386" -o "APT::Get::AllowUnauthenticated=false")
lists_age=$(( $(date +%s) - $(stat -c %Y "$aptroot/lists" 2>/dev/null || echo 0) ))
if ! cmp -s "$aptroot/sources.list.new" "$aptroot/sources.list" || [ ! -e "$aptroot/updated" ] \
  || [ "$lists_age" -gt 86400 ] && [ "${COWROOT_VDEV_OFFLINE:-0}" != 1 ]; then
  mv "$aptroot/sources.list.new" "$aptroot/sources.list"
  log "apt update (private root, i386 + deb-src)"
  # A mirror in mid-sync can fail one index; what matters is that the packages below resolve.
  apt-get "${apt_opts[@]}" update -qq >&2 || log "apt update reported errors; going on with the indexes it got"
  touch "$aptroot/updated" "$aptroot/lists"
else
  rm -f "$aptroot/sources.list.new"
fi
candidate() { apt-cache "${apt_opts[@]}" policy "$1" | awk '/Candidate:/ { print $2 }'; }

# --- u-boot ------------------------------------------------------------------------------------------
uboot_version=$(apt-cache "${apt_opts[@]}" showsrc u-boot | awk '/^Version:/ { print $2 }' | sort -V | tail -1)
frag_hash=$(sha256sum "$fragment" | cut -c1-12)
# uboot/patches/*.patch (e.g. the btrfs backup-superblock fallback) are applied to a copy of the source
# tree; their hash is part of the cache key, so changing a patch rebuilds u-boot
patches=()
for patch_file in "$repo"/uboot/patches/*.patch; do [ -f "$patch_file" ] && patches+=("$patch_file"); done
patch_key=""
[ ${#patches[@]} -eq 0 ] || patch_key=-p$(cat "${patches[@]}" | sha256sum | cut -c1-12)
rom=$cache/u-boot-${uboot_version//[:+~]/_}-$frag_hash$patch_key.rom
if [ ! -s "$rom" ] || [ ! -s "$rom.env" ]; then
  src=$cache/src/u-boot-$uboot_version
  if [ ! -d "$src/done" ]; then
    rm -rf "$src" && mkdir -p "$src"
    log "fetching u-boot $uboot_version source"
    (cd "$src" && apt-get "${apt_opts[@]}" source --download-only -qq "u-boot=$uboot_version" >&2)
    (cd "$src" && dpkg-source -x --skip-debianization ./*.dsc tree >&2 || dpkg-source -x ./*.dsc tree >&2)
    mkdir "$src/done"
  fi
  tree=$src/tree
  if [ -n "$patch_key" ]; then
    tree=$src/tree$patch_key
    if [ ! -e "$tree/.cowroot-patched" ]; then
      rm -rf "$tree" && cp -a "$src/tree" "$tree"
      for patch_file in "${patches[@]}"; do
        log "applying $(basename "$patch_file")"
        patch -d "$tree" -p1 --batch --forward <"$patch_file" >&2
      done
      touch "$tree/.cowroot-patched"
    fi
  fi
  build=$cache/build-u-boot-$frag_hash$patch_key
  rm -rf "$build" && mkdir -p "$build"
  log "building u-boot (qemu-x86_defconfig + $(basename "$fragment"))"
  export PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
  make -s -C "$tree" O="$build" qemu-x86_defconfig >&2
  "$tree/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$fragment" >/dev/null
  make -s -C "$tree" O="$build" olddefconfig >&2
  for opt in CONFIG_CMD_NVEDIT_LOAD CONFIG_FS_BTRFS CONFIG_CMD_BTRFS CONFIG_CMD_SETEXPR CONFIG_ENV_IS_IN_FAT CONFIG_SYS_REDUNDAND_ENVIRONMENT; do
    grep -q "^$opt=y" "$build/.config" || { log "$opt did not survive olddefconfig"; exit 1; }
  done
  make -s -C "$tree" O="$build" -j"${COWROOT_BUILD_JOBS:-2}" >&2
  # the board's default env as text: the env file on the FAT partition must carry it too
  make -s -C "$tree" O="$build" u-boot-initial-env >&2
  cp "$build/u-boot-initial-env" "$rom.env"
  cp "$build/u-boot.rom" "$rom.tmp" && mv "$rom.tmp" "$rom"
  rm -rf "$build"
fi

# --- guest: i386 kernel + userland --------------------------------------------------------------------
kernel_pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-686 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kernel_pkg" ] || { log "cannot resolve linux-image-686"; exit 1; }
guest_packages=("$kernel_pkg" busybox-static btrfs-progs libubootenv-tool libubootenv0.1 libc6 libblkid1
  libuuid1 libzstd1 zlib1g liblzo2-2 libudev1 libyaml-0-2 libgcc-s1)
key=""
for pkg in "${guest_packages[@]}"; do key="$key $pkg=$(candidate "$pkg")"; done
guest_hash=$(echo "$key" | sha256sum | cut -c1-12)
guest_root=$cache/guest-$guest_hash
if [ ! -e "$guest_root/.done" ]; then
  rm -rf "$guest_root" "$cache/debs" && mkdir -p "$cache/debs" "$guest_root"
  log "downloading i386 guest packages: $key"
  (cd "$cache/debs" && apt-get "${apt_opts[@]}" download -qq "${guest_packages[@]}" >&2)
  for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$guest_root"; done
  rm -rf "$cache/debs"
  echo "$key" >"$guest_root/.packages"
  touch "$guest_root/.done"
fi

echo "u_boot_rom=$rom"
echo "u_boot_env=$rom.env"
echo "guest_root=$guest_root"
