import { cancelTrial, type EnvUpdate } from '@cowroot/device';

/**
 * The recorded flows, in the order they run on one device (each starts from the disk the previous one
 * left). One flow is one power-on: u-boot, the initramfs's workspace step, then the guest agent's
 * commands (tools/vdev/guest/init), all of it recorded write by write.
 */
export interface Flow {
  name: string;
  what: string;
  /** unrecorded preparation: host env writes (the device core's transitions) and guest boots */
  setup?: { env?: EnvUpdate; control?: string[] }[];
  /** the guest agent's commands during the recorded boot */
  control: string[];
  /** lines the recorded boot must print (the flow really happened) */
  expect: string[];
}

export const FLOWS: Flow[] = [
  {
    name: 'install-full',
    what: 'download a full release, btrfs receive, read-only snapshot, metadata, trial request',
    control: ['install 4 full'],
    expect: ['COWROOT-INSTALLED 4', 'COWROOT-ENV-WRITTEN cowroot_request_trial_script'],
  },
  {
    name: 'trial-confirm',
    what: "u-boot's `trying` save, the trial boot of 4, Linux's confirmation",
    control: ['confirm'],
    expect: ['cowroot: booting snapshot 4 trial=1', 'COWROOT-CONFIRMED 4'],
  },
  {
    name: 'accept',
    what: 'u-boot accepts the confirmed 4 (its save) and boots it as current',
    control: [],
    expect: ['cowroot: trial 4 was confirmed: accepting it', 'COWROOT-BOOTED snapshot=4 trial=0'],
  },
  {
    name: 'install-incremental',
    what: 'download an incremental release (parent 4), receive, snapshot, metadata, trial request',
    control: ['install 5 incremental'],
    expect: ['COWROOT-INSTALLED 5'],
  },
  {
    name: 'commit',
    what: 'commit of the workspace as snapshot 6, then its trial request',
    setup: [{ env: cancelTrial() }],
    control: ['touch-workspace', 'commit 6', 'request 6'],
    expect: ['COWROOT-COMMITTED 6', 'COWROOT-REQUESTED 6'],
  },
  {
    name: 'delete-old',
    what: 'deletion of the old snapshot 2 (btrfs subvolume delete -c, metadata)',
    setup: [{ env: cancelTrial() }],
    control: ['delete 2'],
    expect: ['COWROOT-DELETED 2'],
  },
  {
    name: 'gc-partial',
    what: 'GC of a receive cut short (a partial rw subvolume in staging/)',
    setup: [{ control: ['partial-receive 7'] }],
    control: ['gc'],
    expect: ['COWROOT-GC-DONE'],
  },
  {
    name: 'env-rewrite',
    what: 'two env writes in a row (request, cancel): both env copies rewritten',
    control: ['request 5', 'cancel'],
    expect: ['COWROOT-REQUESTED 5', 'COWROOT-CANCELLED'],
  },
];

export function flowNamed(name: string): Flow {
  const flow = FLOWS.find((f) => f.name === name);
  if (!flow) throw new Error(`unknown flow ${name}; flows: ${FLOWS.map((f) => f.name).join(', ')}`);
  return flow;
}
