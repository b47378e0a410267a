import { isSnapshotId } from '@cowroot/protocol';
import { KERNEL_ARG } from './switch-protocol';

/** What u-boot told this boot on the kernel command line (docs/device.md §3.2). */
export interface BootContext {
  /** cowroot.snapshot=<id>; null when absent or not a valid snapshot id */
  snapshot: string | null;
  /** cowroot.trial=1: this boot is the one try of a trial */
  trial: boolean;
}

/**
 * Reads the cowroot parameters from kernel command line text (/proc/cmdline). The text is passed in, not
 * read here, so tests can play any boot. The last occurrence of a parameter wins, as in the kernel.
 */
export function parseBootContext(cmdline: string): BootContext {
  let snapshot: string | null = null;
  let trial = false;
  for (const word of cmdline.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq < 0) continue;
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    if (key === KERNEL_ARG.snapshot) snapshot = isSnapshotId(value) ? value : null;
    else if (key === KERNEL_ARG.trial) trial = value === '1';
  }
  return { snapshot, trial };
}
