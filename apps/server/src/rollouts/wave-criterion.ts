import { ExecutionState, isFinished } from './execution-state';

export type StateCounts = Partial<Record<ExecutionState, number>>;

export type WaveVerdict =
  /** devices of the wave are still queued or in flight */
  | { done: false }
  | { done: true; succeeded: boolean; confirmed: number; considered: number; requiredConfirmed: number };

/**
 * A wave's success criterion (docs/rollouts.md "Wave lifecycle"): the share of its devices that CONFIRMED
 * within the wave timeout. Decided once every device has an outcome (the timeout guarantees one). Canceled
 * devices (decommissioned, canceled before dispatch) are not part of the wave's denominator; an empty wave
 * succeeds.
 */
export function evaluateWave(counts: StateCounts, successPercent: number): WaveVerdict {
  let considered = 0;
  let unfinished = 0;
  for (const [state, count] of Object.entries(counts) as [ExecutionState, number][]) {
    if (!count) continue;
    if (!isFinished(state)) unfinished += count;
    else if (state !== ExecutionState.Canceled) considered += count;
  }
  if (unfinished > 0) return { done: false };
  const confirmed = counts[ExecutionState.Confirmed] ?? 0;
  const requiredConfirmed = Math.ceil((successPercent * considered) / 100 - 1e-9);
  return { done: true, succeeded: confirmed >= requiredConfirmed, confirmed, considered, requiredConfirmed };
}
