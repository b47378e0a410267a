import type { Schemas } from '@cowroot/api-client';

export type ExecutionState = Schemas['ExecutionState'];
export type StateCounts = Partial<Record<ExecutionState, number>>;

/** Bar order: waiting, moving, done well, then each failure kind (server: rollouts/execution-state.ts). */
export const STATE_ORDER: readonly ExecutionState[] = [
  'queued',
  'notified',
  'downloading',
  'installed',
  'rebooting',
  'confirmed',
  'rejected-by-health-check',
  'rolled-back-by-bootloader',
  'failed',
  'timed-out',
  'canceled',
];

export const IN_FLIGHT: readonly ExecutionState[] = ['notified', 'downloading', 'installed', 'rebooting'];
export const FAILURES: readonly ExecutionState[] = [
  'rejected-by-health-check',
  'rolled-back-by-bootloader',
  'failed',
  'timed-out',
];

/** The abort-rule kind each failure state counts as (server: failureKindOf). */
export const FAILURE_KIND: Partial<Record<ExecutionState, Schemas['AbortRuleDto']['kind']>> = {
  failed: 'download',
  'rejected-by-health-check': 'health-check',
  'rolled-back-by-bootloader': 'bootloader',
  'timed-out': 'timeout',
};

export const STATE_LABEL: Record<ExecutionState, string> = {
  queued: 'queued',
  notified: 'notified',
  downloading: 'downloading',
  installed: 'installed',
  rebooting: 'rebooting',
  confirmed: 'confirmed',
  'rejected-by-health-check': 'health check rejected',
  'rolled-back-by-bootloader': 'bootloader rollback',
  failed: 'failed',
  'timed-out': 'timed out',
  canceled: 'canceled',
};

export interface BarSegment {
  state: ExecutionState;
  count: number;
  /** share of the bar, 0–100, rounded to 0.1 */
  percent: number;
}

/** A wave's stacked bar: one segment per state with devices, in STATE_ORDER, summing to 100%. */
export function barSegments(counts: StateCounts, total: number): BarSegment[] {
  const sum = STATE_ORDER.reduce((n, state) => n + (counts[state] ?? 0), 0);
  const denominator = Math.max(total, sum, 1);
  return STATE_ORDER.filter((state) => (counts[state] ?? 0) > 0).map((state) => ({
    state,
    count: counts[state]!,
    percent: Math.round((counts[state]! * 1000) / denominator) / 10,
  }));
}

/** The bar's text alternative: "3 confirmed, 1 in flight, 2 queued of 6". */
export function barSummary(counts: StateCounts, total: number): string {
  const inFlight = IN_FLIGHT.reduce((n, state) => n + (counts[state] ?? 0), 0);
  const failed = FAILURES.reduce((n, state) => n + (counts[state] ?? 0), 0);
  const parts = [
    `${counts.confirmed ?? 0} confirmed`,
    ...(inFlight ? [`${inFlight} in flight`] : []),
    ...(failed ? [`${failed} failed`] : []),
    ...(counts.queued ? [`${counts.queued} queued`] : []),
    ...(counts.canceled ? [`${counts.canceled} canceled`] : []),
  ];
  return `${parts.join(', ')} of ${total}`;
}
