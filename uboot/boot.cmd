# cowroot boot script (u-boot hush), built into boot.scr with
#   mkimage -A <arch> -O linux -T script -C none -n cowroot -d boot.cmd boot.scr
#
# It implements the switch protocol of libs/device/src/switch-protocol.ts; bootloaderDecision() there is
# the reference model, branch for branch (the comments quote it). Rules it keeps:
#   - a normal boot writes nothing to the env (no saveenv at all);
#   - at most one saveenv per boot: the single atomic write of one model transition (with a redundant
#     env, saveenv writes the older copy, so a power cut during it leaves the other copy intact);
#   - a requested trial is loaded and its image checksums verified BEFORE `trying` is saved, so a trial
#     whose kernel or initrd is missing or corrupt falls back in the same boot (kernel-load-failed);
#   - `trying` found at boot means the trial Linux never confirmed: fall back (bootloader-fallback).
#
# Board settings, read from the env (uboot/README.md):
#   cowroot_disk      the btrfs partition, e.g. "mmc 0:2" or "virtio 0:2"                      (required)
#   cowroot_bootargs  kernel command line without the cowroot.* arguments                      (required)
#   cowroot_kernel    kernel image in /snapshots/<id>/boot/, default uImage
#   cowroot_initrd    initrd image in /snapshots/<id>/boot/, default uInitrd
#   cowroot_fdt       device tree in /snapshots/<id>/boot/; unset on boards without one
#   cowroot_boot      the command that starts the loaded kernel, default
#                     bootm ${kernel_addr_r} ${ramdisk_addr_r} ${cr_fdtarg}
#                     (x86 needs zboot: bootm there insists on a FIT setup.bin; see uboot/README.md)
# Load addresses: the board's kernel_addr_r, ramdisk_addr_r, fdt_addr_r.
# Scratch values are hush locals (cr_*, never in the env); the env script cr_load and the setexpr result
# cr_rdsize are deleted before the saveenv and cr_start is defined after it, so the saved env holds only
# the board's and the protocol's variables.

# defaults as hush locals, so that a saveenv does not freeze them into the env
cr_kernel="${cowroot_kernel}"
if test -z "${cr_kernel}"; then cr_kernel=uImage; fi
cr_initrd="${cowroot_initrd}"
if test -z "${cr_initrd}"; then cr_initrd=uInitrd; fi

# cr_load: load and verify (iminfo: legacy image header and data checksums) the kernel, the initrd and
# the dtb of snapshot ${cr_id}; cr_ok=1 on success. cr_rdsize: initrd image size without its 64-byte header.
cr_load_script='cr_ok=0; cr_fdtarg=; if load ${cowroot_disk} ${kernel_addr_r} /snapshots/${cr_id}/boot/${cr_kernel} && iminfo ${kernel_addr_r} && load ${cowroot_disk} ${ramdisk_addr_r} /snapshots/${cr_id}/boot/${cr_initrd} && iminfo ${ramdisk_addr_r}; then setexpr cr_rdsize ${filesize} - 0x40; cr_ok=1; if test -n "${cowroot_fdt}"; then cr_fdtarg=${fdt_addr_r}; load ${cowroot_disk} ${fdt_addr_r} /snapshots/${cr_id}/boot/${cowroot_fdt} || cr_ok=0; fi; fi'
setenv cr_load "${cr_load_script}"

echo "cowroot: current=${cowroot_current} trial=${cowroot_trial} state=${cowroot_state}"
cr_boot="${cowroot_current}"
cr_trial=0
cr_loaded=0
cr_write=0

if test "${cowroot_state}" = "requested" && test -n "${cowroot_trial}"; then
  cr_id="${cowroot_trial}"
  run cr_load
  if test "${cr_ok}" = "1"; then
    # model: { boot: trial, trial: true, write: { state: trying } }
    echo "cowroot: trial ${cowroot_trial} loaded"
    setenv cowroot_state trying
    cr_boot="${cowroot_trial}"
    cr_trial=1
    cr_loaded=1
  else
    # model: { boot: current, write: { trial: '', state: '', result: kernel-load-failed, result_snapshot: trial } }
    echo "cowroot: trial ${cowroot_trial} does not load: falling back to ${cowroot_current}"
    setenv cowroot_result kernel-load-failed
    setenv cowroot_result_snapshot "${cowroot_trial}"
    setenv cowroot_trial
    setenv cowroot_state
  fi
  cr_write=1
elif test "${cowroot_state}" = "trying" && test -n "${cowroot_trial}"; then
  # model: { boot: current, write: { trial: '', state: '', result: bootloader-fallback, result_snapshot: trial } }
  echo "cowroot: trial ${cowroot_trial} was not confirmed: falling back to ${cowroot_current}"
  setenv cowroot_result bootloader-fallback
  setenv cowroot_result_snapshot "${cowroot_trial}"
  setenv cowroot_trial
  setenv cowroot_state
  cr_write=1
elif test "${cowroot_state}" = "confirmed" && test -n "${cowroot_trial}"; then
  cr_id="${cowroot_trial}"
  run cr_load
  if test "${cr_ok}" = "1"; then
    # model: { boot: trial, write: { previous: current, current: trial, trial: '', state: '', result: accepted, result_snapshot: trial } }
    echo "cowroot: trial ${cowroot_trial} was confirmed: accepting it"
    setenv cowroot_previous "${cowroot_current}"
    setenv cowroot_current "${cowroot_trial}"
    setenv cowroot_result accepted
    setenv cowroot_result_snapshot "${cowroot_trial}"
    setenv cowroot_trial
    setenv cowroot_state
    cr_boot="${cowroot_current}"
    cr_loaded=1
  else
    # Beyond the model, which assumes a confirmed snapshot still loads: keep the old current, say why.
    echo "cowroot: confirmed trial ${cowroot_trial} does not load: keeping ${cowroot_current}"
    setenv cowroot_result kernel-load-failed
    setenv cowroot_result_snapshot "${cowroot_trial}"
    setenv cowroot_trial
    setenv cowroot_state
  fi
  cr_write=1
fi

# The one env write of this boot (none on a normal boot).
if test "${cr_write}" = "1"; then
  cr_rdsize_kept="${cr_rdsize}"
  setenv cr_load
  setenv cr_rdsize
  setenv filesize
  setenv fileaddr
  setenv bootargs
  echo "cowroot: saving env"
  # test hook of the virtual device: holds u-boot here so a power cut lands before the write, every time
  if test -n "${cowroot_test_pause}"; then sleep ${cowroot_test_pause}; fi
  saveenv
  echo "cowroot: env saved (state=${cowroot_state} result=${cowroot_result})"
  setenv cr_load "${cr_load_script}"
  setenv cr_rdsize "${cr_rdsize_kept}"
fi

# cr_start: start the loaded kernel (the board's cowroot_boot, else bootm); returns only on failure.
# Defined after the save, so it never reaches the env.
setenv cr_start 'if test -n "${cowroot_boot}"; then run cowroot_boot; else bootm ${kernel_addr_r} ${ramdisk_addr_r} ${cr_fdtarg}; fi'

# Kernel already loaded by the decision (trial, acceptance): start it.
if test "${cr_loaded}" = "1"; then
  setenv bootargs "${cowroot_bootargs} cowroot.snapshot=${cr_boot} cowroot.trial=${cr_trial}"
  echo "cowroot: booting snapshot ${cr_boot} trial=${cr_trial}"
  run cr_start
  echo "cowroot: snapshot ${cr_boot} did not start"
fi

# Normal boot and every fallback: the current snapshot, without writing. A trial that did not start after
# `trying` was saved is recorded as bootloader-fallback at the next boot, as the model says.
cr_boot="${cowroot_current}"
cr_id="${cr_boot}"
if test -n "${cr_boot}"; then
  run cr_load
  if test "${cr_ok}" = "1"; then
    setenv bootargs "${cowroot_bootargs} cowroot.snapshot=${cr_boot} cowroot.trial=0"
    echo "cowroot: booting snapshot ${cr_boot} trial=0"
    run cr_start
  fi
fi
# Last resort, still without writing: the snapshot that was current before the last acceptance.
cr_boot="${cowroot_previous}"
cr_id="${cr_boot}"
if test -n "${cr_boot}"; then
  echo "cowroot: current snapshot ${cowroot_current} does not boot: trying previous ${cr_boot}"
  run cr_load
  if test "${cr_ok}" = "1"; then
    setenv bootargs "${cowroot_bootargs} cowroot.snapshot=${cr_boot} cowroot.trial=0"
    echo "cowroot: booting snapshot ${cr_boot} trial=0"
    run cr_start
  fi
fi
echo "cowroot: no bootable snapshot (current=${cowroot_current} previous=${cowroot_previous})"
