import type { Schemas } from '@cowroot/api-client';
import { formatKeyValues, formatTable } from '../table';
import { formatDuration } from './duration';
import { describeSelector } from './target-selector';
import { describeWaveSize } from './wave-spec';

export type StateCounts = Record<string, number | undefined>;

/** GET /api/v1/rollouts/:id (the server's RolloutDto) */
export type RolloutStatusView = Schemas['RolloutDto'];
export type WaveStatusView = Schemas['RolloutWaveDto'];

/** Rollout states after which nothing changes any more (aborted still reverts devices). */
export const FINAL_ROLLOUT_STATUSES = ['completed', 'canceled'];

const IN_FLIGHT = ['notified', 'downloading', 'installed', 'rebooting'];
const FAILURES = ['rejected-by-health-check', 'rolled-back-by-bootloader', 'failed', 'timed-out'];
const FAILURE_LABELS: Record<string, string> = {
  'rejected-by-health-check': 'health-check',
  'rolled-back-by-bootloader': 'bootloader',
  failed: 'download/other',
  'timed-out': 'timeout',
};

const sum = (counts: StateCounts, states: readonly string[]) =>
  states.reduce((total, state) => total + (counts[state] ?? 0), 0);

/** queued / in flight / confirmed / failed / canceled: the columns an operator watches */
export function countColumns(counts: StateCounts): {
  queued: number;
  inFlight: number;
  confirmed: number;
  failed: number;
  canceled: number;
} {
  return {
    queued: counts.queued ?? 0,
    inFlight: sum(counts, IN_FLIGHT),
    confirmed: counts.confirmed ?? 0,
    failed: sum(counts, FAILURES),
    canceled: counts.canceled ?? 0,
  };
}

function ruleText(rule: RolloutStatusView['abortRules'][number]): string {
  return `${rule.kind} >= ${rule.thresholdPercent}% (after ${rule.minExecuted ?? 1}) -> ${rule.action}`;
}

function waveNote(wave: WaveStatusView, now: Date): string {
  if (wave.status === 'awaiting-approval') return 'needs approval: cowroot rollouts approve <id>';
  if (wave.status === 'soaking' && wave.soakUntil)
    return `soak ends in ${formatDuration(Math.max(0, (Date.parse(wave.soakUntil) - now.getTime()) / 1000))}`;
  if (wave.status === 'pending' && wave.requiresApproval) return 'approval required';
  return '';
}

/** The `rollouts status` screen: header, waves table, failure breakdown. */
export function renderRollout(rollout: RolloutStatusView, now = new Date()): string {
  const overall = countColumns(rollout.counts);
  const header = formatKeyValues([
    ['rollout', `${rollout.id}  ${rollout.name}`],
    ['release', `${rollout.release.name}@${rollout.release.version}`],
    ['status', `${rollout.status.toUpperCase()}${rollout.statusReason ? ` (${rollout.statusReason})` : ''}`],
    ['target', `${describeSelector(rollout.selector)}${rollout.continuous ? ' (continuous: new matches join)' : ''}`],
    [
      'devices',
      `${rollout.total} planned, ${overall.confirmed} confirmed, ${overall.failed} failed, ${overall.inFlight} in flight, ${overall.queued} queued, ${overall.canceled} canceled`,
    ],
    [
      'dispatch',
      `${rollout.dispatchPerMinute ? `${rollout.dispatchPerMinute}/min` : 'unlimited'}, ${rollout.randomize ? 'random order' : 'by id'}, reboot ${rollout.rebootMode}`,
    ],
    ['abort rules', rollout.abortRules.length > 0 ? rollout.abortRules.map(ruleText).join('; ') : 'none'],
  ]);
  const waves = formatTable<WaveStatusView>(
    [
      {
        header: 'wave',
        value: (w) =>
          `${w.index + 1}${w.index === rollout.currentWave && !FINAL_ROLLOUT_STATUSES.includes(rollout.status) ? '*' : ''}`,
        align: 'right',
      },
      { header: 'size', value: (w) => describeWaveSize(w.size) },
      { header: 'status', value: (w) => w.status },
      { header: 'devices', value: (w) => w.total, align: 'right' },
      { header: 'queued', value: (w) => countColumns(w.counts).queued, align: 'right' },
      { header: 'in flight', value: (w) => countColumns(w.counts).inFlight, align: 'right' },
      { header: 'confirmed', value: (w) => countColumns(w.counts).confirmed, align: 'right' },
      { header: 'failed', value: (w) => countColumns(w.counts).failed, align: 'right' },
      { header: 'canceled', value: (w) => countColumns(w.counts).canceled, align: 'right' },
      { header: 'needs', value: (w) => `${w.successPercent}%`, align: 'right' },
      { header: 'timeout', value: (w) => formatDuration(w.timeoutSeconds) },
      { header: 'soak', value: (w) => formatDuration(w.soakSeconds) },
      { header: 'note', value: (w) => waveNote(w, now) },
    ],
    rollout.waves,
  );
  const failures = FAILURES.filter((state) => (rollout.counts[state] ?? 0) > 0).map(
    (state) => `${rollout.counts[state]} ${FAILURE_LABELS[state]}`,
  );
  return [header, '', waves, ...(failures.length > 0 ? ['', `failures: ${failures.join(', ')}`] : [])].join('\n');
}
