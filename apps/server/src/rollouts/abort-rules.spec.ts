import { AbortAction, AbortRule, evaluateAbortRules } from './abort-rules';
import { ExecutionState, FailureKind } from './execution-state';

const rule = (
  kind: FailureKind,
  thresholdPercent: number,
  minExecuted: number,
  action = AbortAction.Pause,
): AbortRule => ({
  kind,
  thresholdPercent,
  minExecuted,
  action,
});

describe('evaluateAbortRules', () => {
  it('waits for the minimum number of executed devices', () => {
    const counts = {
      [ExecutionState.RejectedByHealthCheck]: 2,
      [ExecutionState.Confirmed]: 1,
      [ExecutionState.Rebooting]: 5,
    };
    expect(evaluateAbortRules([rule(FailureKind.HealthCheck, 50, 4)], counts)).toBeNull();
    const trigger = evaluateAbortRules([rule(FailureKind.HealthCheck, 50, 3)], counts);
    expect(trigger).toMatchObject({ ruleIndex: 0, failures: 2, executed: 3 });
    expect(trigger!.reason).toContain('2 of 3');
  });

  it('fires at the threshold exactly, not below', () => {
    const counts = { [ExecutionState.Failed]: 1, [ExecutionState.Confirmed]: 3 };
    expect(evaluateAbortRules([rule(FailureKind.Download, 25, 1)], counts)).not.toBeNull();
    expect(evaluateAbortRules([rule(FailureKind.Download, 26, 1)], counts)).toBeNull();
  });

  it('counts only its kind, or every failure for `any`', () => {
    const counts = {
      [ExecutionState.Failed]: 1,
      [ExecutionState.TimedOut]: 1,
      [ExecutionState.RolledBackByBootloader]: 1,
      [ExecutionState.Confirmed]: 1,
    };
    expect(evaluateAbortRules([rule(FailureKind.Bootloader, 50, 1)], counts)).toBeNull();
    expect(evaluateAbortRules([rule(FailureKind.Timeout, 25, 1)], counts)).toMatchObject({ failures: 1, executed: 4 });
    expect(evaluateAbortRules([rule(FailureKind.Any, 75, 4)], counts)).toMatchObject({ failures: 3, executed: 4 });
  });

  it('ignores canceled and in-flight devices', () => {
    expect(
      evaluateAbortRules([rule(FailureKind.Any, 1, 1)], {
        [ExecutionState.Canceled]: 10,
        [ExecutionState.Notified]: 3,
      }),
    ).toBeNull();
  });

  it('prefers a revert rule when several fire, and fires again only when more devices fail', () => {
    const counts = { [ExecutionState.RejectedByHealthCheck]: 2, [ExecutionState.Confirmed]: 2 };
    const rules = [
      rule(FailureKind.Any, 10, 1, AbortAction.Pause),
      rule(FailureKind.HealthCheck, 50, 1, AbortAction.Revert),
    ];
    expect(evaluateAbortRules(rules, counts)).toMatchObject({ ruleIndex: 1 });
    expect(evaluateAbortRules(rules, counts, { '0': 2, '1': 2 })).toBeNull();
    expect(evaluateAbortRules(rules, { ...counts, [ExecutionState.Failed]: 1 }, { '0': 2, '1': 2 })).toMatchObject({
      ruleIndex: 0,
      failures: 3,
    });
  });
});
