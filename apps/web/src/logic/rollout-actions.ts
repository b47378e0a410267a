import type { Schemas } from '@cowroot/api-client';

export type Role = Schemas['SessionDto']['role'];
export type Rollout = Schemas['RolloutDto'];
export type RolloutAction = 'pause' | 'resume' | 'cancel' | 'approve' | 'retry-failed' | 'revert';

export const ACTION_LABEL: Record<RolloutAction, string> = {
  pause: 'Pause',
  resume: 'Resume',
  cancel: 'Cancel',
  approve: 'Approve next wave',
  'retry-failed': 'Retry failed',
  revert: 'Revert',
};

export const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function mayOperate(role: Role | undefined): boolean {
  return role !== undefined && RANK[role] >= RANK.operator;
}

const FAILED_STATES = ['rejected-by-health-check', 'rolled-back-by-bootloader', 'failed', 'timed-out'] as const;

/**
 * The actions the page offers for a rollout, in the server's rules (rollout-actions.service.ts): a viewer is
 * offered none; pause needs running, resume paused; cancel, approve and retry only before the end;
 * approve needs a wave awaiting approval; retry needs failed devices; revert (a rollback of the rollout's
 * devices) needs a confirmed device.
 */
export function availableActions(rollout: Rollout, role: Role | undefined): RolloutAction[] {
  if (!mayOperate(role)) return [];
  // completed, canceled and aborted are finished: the server answers ROLLOUT_FINISHED
  const open = rollout.status === 'running' || rollout.status === 'paused';
  const counts = rollout.counts as Partial<Record<string, number>>;
  const failed = FAILED_STATES.reduce((n, state) => n + (counts[state] ?? 0), 0);
  const actions: RolloutAction[] = [];
  if (rollout.status === 'running') actions.push('pause');
  if (rollout.status === 'paused') actions.push('resume');
  if (open && rollout.waves.some((wave) => wave.status === 'awaiting-approval')) actions.push('approve');
  if (open && failed > 0) actions.push('retry-failed');
  if (open) actions.push('cancel');
  if ((counts.confirmed ?? 0) > 0) actions.push('revert');
  return actions;
}

/** Wave state in words: running, soaking until…, awaiting approval, succeeded with its verdict. */
export function waveStatusText(wave: Schemas['RolloutWaveDto'], now: Date): string {
  switch (wave.status) {
    case 'soaking': {
      const left = wave.soakUntil ? Math.max(0, Math.ceil((Date.parse(wave.soakUntil) - now.getTime()) / 1000)) : 0;
      return `soaking, ${left} s left`;
    }
    case 'awaiting-approval':
      return 'awaiting approval';
    case 'succeeded':
    case 'failed': {
      const verdict = wave.verdict as { confirmed?: number; considered?: number; acceptedBy?: string } | null;
      const detail = verdict?.acceptedBy
        ? `accepted by ${verdict.acceptedBy}`
        : verdict?.considered !== undefined
          ? `${verdict.confirmed} of ${verdict.considered} confirmed`
          : '';
      return detail ? `${wave.status} (${detail})` : wave.status;
    }
    default:
      return wave.status;
  }
}
