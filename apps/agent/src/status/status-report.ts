import { SnapshotInfo } from '@cowroot/protocol';
import { SwitchStatus } from '@cowroot/device';
import { TrialRecord } from '../journal/command-journal';

export interface StatusData {
  deviceId: string;
  status: SwitchStatus;
  snapshots: SnapshotInfo[];
  freeBytes: number | null;
  trial: TrialRecord | null;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** `cowroot-agent status`, laid out like `rauc status`: the boot state first, then one block per snapshot. */
export function renderStatus(data: StatusData): string {
  const { status } = data;
  const lines: string[] = [];
  lines.push('=== Device ===');
  lines.push(`Device:        ${data.deviceId}`);
  lines.push(
    `Booted from:   ${status.booted ?? '(unknown: no cowroot.snapshot= on the kernel command line)'}${status.trialBoot ? ' (trial boot)' : ''}`,
  );
  lines.push(`Fallback:      ${status.fallback ?? '-'}`);
  lines.push(`Previous:      ${status.previous ?? '-'}`);
  const pending = status.pendingTrial;
  lines.push(
    `Pending trial: ${pending ? `${pending.snapshot} (${pending.state})` : '-'}${data.trial && pending?.snapshot === data.trial.snapshot ? ` by command ${data.trial.commandId}` : ''}`,
  );
  const last = status.lastTrialResult;
  lines.push(
    `Last result:   ${last ? `${last.snapshot}: ${last.outcome}${last.check ? ` (check ${last.check})` : ''}` : '-'}`,
  );
  if (last?.outputTail) {
    for (const line of last.outputTail.trimEnd().split('\n').slice(-5)) lines.push(`               | ${line}`);
  }
  if (data.freeBytes !== null) lines.push(`Pool free:     ${formatBytes(data.freeBytes)}`);
  lines.push('');
  lines.push('=== Snapshots ===');
  if (data.snapshots.length === 0) lines.push('(none)');
  for (const snapshot of data.snapshots) {
    const marks: string[] = [];
    if (snapshot.id === status.booted) marks.push('booted');
    if (snapshot.id === status.fallback) marks.push(status.trialBoot ? 'fallback' : 'current');
    if (snapshot.id === status.previous) marks.push('previous');
    if (pending?.snapshot === snapshot.id) marks.push(`trial ${pending.state}`);
    const bullet = snapshot.id === status.booted ? 'x' : 'o';
    lines.push(`${bullet} [${snapshot.id}]${marks.length ? ` (${marks.join(', ')})` : ''}`);
    lines.push(`      origin:        ${snapshot.origin}`);
    lines.push(
      `      release:       ${snapshot.release ? `${snapshot.release.name} ${snapshot.release.version}` : '-'}`,
    );
    lines.push(`      created:       ${snapshot.createdAt}`);
    lines.push(`      uuid:          ${snapshot.uuid}`);
    lines.push(`      received_uuid: ${snapshot.receivedUuid ?? '-'}`);
    lines.push(`      read-only:     ${snapshot.readOnly ? 'yes' : 'NO'}`);
  }
  return `${lines.join('\n')}\n`;
}
