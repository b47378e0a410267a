import { ExecutionState, FailureKind, failureKindOf } from './execution-state';
import { StateCounts } from './wave-criterion';

export enum AbortAction {
  /** stop dispatching; devices in flight finish; an operator decides */
  Pause = 'pause',
  /** stop, cancel what is not dispatched, and switch devices that confirmed back to where they came from */
  Revert = 'revert',
}

export interface AbortRule {
  kind: FailureKind;
  /** percent of executed devices, 0 < threshold <= 100 */
  thresholdPercent: number;
  /** the rule applies only once this many devices have an outcome */
  minExecuted: number;
  action: AbortAction;
}

export interface AbortTrigger {
  ruleIndex: number;
  rule: AbortRule;
  failures: number;
  executed: number;
  reason: string;
}

/** How many failures each rule had when it last fired: a rule fires again only when more fail. */
export type FiredAt = Record<string, number>;

/**
 * Evaluates the rollout's abort rules over every device with an outcome so far (all waves). Executed =
 * confirmed + every failure kind (canceled devices were never tried). Returns the first rule that fires,
 * revert rules before pause rules so that the stronger action wins when both hold.
 */
export function evaluateAbortRules(
  rules: readonly AbortRule[],
  counts: StateCounts,
  firedAt: FiredAt = {},
): AbortTrigger | null {
  const failuresByKind = new Map<FailureKind, number>();
  let executed = counts[ExecutionState.Confirmed] ?? 0;
  let anyFailures = 0;
  for (const [state, count] of Object.entries(counts) as [ExecutionState, number][]) {
    const kind = failureKindOf(state);
    if (!kind || !count) continue;
    failuresByKind.set(kind, (failuresByKind.get(kind) ?? 0) + count);
    anyFailures += count;
    executed += count;
  }
  failuresByKind.set(FailureKind.Any, anyFailures);

  const order = rules
    .map((rule, ruleIndex) => ({ rule, ruleIndex }))
    .sort((a, b) => Number(b.rule.action === AbortAction.Revert) - Number(a.rule.action === AbortAction.Revert));
  for (const { rule, ruleIndex } of order) {
    const failures = failuresByKind.get(rule.kind) ?? 0;
    if (executed === 0 || executed < rule.minExecuted) continue;
    if (failures <= (firedAt[String(ruleIndex)] ?? 0)) continue;
    if (failures * 100 < rule.thresholdPercent * executed) continue;
    const share = Math.round((failures * 1000) / executed) / 10;
    return {
      ruleIndex,
      rule,
      failures,
      executed,
      reason: `abort rule ${ruleIndex + 1}: ${failures} of ${executed} executed devices failed (${rule.kind}), ${share}% >= ${rule.thresholdPercent}%: ${rule.action}`,
    };
  }
  return null;
}
