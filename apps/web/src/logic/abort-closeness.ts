import type { Schemas } from '@cowroot/api-client';
import { FAILURE_KIND, StateCounts } from './execution-states';

export type AbortRule = Schemas['RolloutAbortRuleDto'];

export interface RuleCloseness {
  rule: AbortRule;
  failures: number;
  executed: number;
  /** failures as a percent of executed devices (0 when none executed) */
  sharePercent: number;
  /** sharePercent / threshold: 1 or more = at or past the threshold */
  closeness: number;
  /** fewer than minExecuted devices have an outcome: the rule cannot fire yet */
  armed: boolean;
  /** what the page says */
  text: string;
}

/**
 * How close each abort rule is to firing, by the server's arithmetic (rollouts/abort-rules.ts): executed =
 * confirmed + every failure kind over all waves; a rule fires once executed >= minExecuted and failures of
 * its kind are at least thresholdPercent of executed.
 */
export function abortCloseness(rules: readonly AbortRule[], counts: StateCounts): RuleCloseness[] {
  const byKind = new Map<string, number>();
  let executed = counts.confirmed ?? 0;
  let any = 0;
  for (const [state, kind] of Object.entries(FAILURE_KIND)) {
    const n = counts[state as keyof StateCounts] ?? 0;
    byKind.set(kind!, (byKind.get(kind!) ?? 0) + n);
    any += n;
    executed += n;
  }
  byKind.set('any', any);
  return rules.map((rule) => {
    const failures = byKind.get(rule.kind) ?? 0;
    const sharePercent = executed === 0 ? 0 : Math.round((failures * 1000) / executed) / 10;
    const closeness = rule.thresholdPercent > 0 ? sharePercent / rule.thresholdPercent : 0;
    const armed = executed > 0 && executed >= rule.minExecuted;
    const text = armed
      ? `${failures} of ${executed} (${sharePercent}%) vs ${rule.thresholdPercent}%`
      : `waits for ${rule.minExecuted} outcomes (${executed} so far); ${failures} ${rule.kind} failures`;
    return { rule, failures, executed, sharePercent, closeness, armed, text };
  });
}
