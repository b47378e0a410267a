import { TrialOutcome } from '@cowroot/protocol';
import { ENV, SwitchState, bootloaderDecision, confirmTrial, readSwitchEnv, requestTrial } from './switch-protocol';

function apply(env: Record<string, string>, update: Record<string, string> | null) {
  return { ...env, ...(update ?? {}) };
}

describe('bootloaderDecision', () => {
  const loads = () => true;

  it('writes nothing on a normal boot', () => {
    const decision = bootloaderDecision(readSwitchEnv({ [ENV.current]: 'a' }), loads);
    expect(decision).toEqual({ boot: 'a', trial: false, write: null });
  });

  it('tries once, then accepts a confirmed trial', () => {
    let env: Record<string, string> = { [ENV.current]: 'a', ...requestTrial('b') } as Record<string, string>;
    const first = bootloaderDecision(readSwitchEnv(env), loads);
    expect(first).toMatchObject({ boot: 'b', trial: true });
    env = apply(env, first.write as Record<string, string>);
    env = apply(env, confirmTrial() as Record<string, string>);
    const second = bootloaderDecision(readSwitchEnv(env), loads);
    expect(second).toMatchObject({ boot: 'b', trial: false });
    env = apply(env, second.write as Record<string, string>);
    expect(readSwitchEnv(env)).toMatchObject({
      current: 'b',
      previous: 'a',
      state: SwitchState.Idle,
      result: TrialOutcome.Accepted,
    });
    expect(bootloaderDecision(readSwitchEnv(env), loads).write).toBeNull();
  });

  it('falls back when the trial was never confirmed', () => {
    let env: Record<string, string> = { [ENV.current]: 'a', ...requestTrial('b') } as Record<string, string>;
    env = apply(env, bootloaderDecision(readSwitchEnv(env), loads).write as Record<string, string>);
    const fallback = bootloaderDecision(readSwitchEnv(env), loads);
    expect(fallback.boot).toBe('a');
    env = apply(env, fallback.write as Record<string, string>);
    expect(readSwitchEnv(env)).toMatchObject({
      current: 'a',
      trial: '',
      result: TrialOutcome.BootloaderFallback,
      resultSnapshot: 'b',
    });
  });

  it('falls back in the same boot when the trial kernel does not load', () => {
    const env = { [ENV.current]: 'a', ...requestTrial('b') } as Record<string, string>;
    const decision = bootloaderDecision(readSwitchEnv(env), (id) => id !== 'b');
    expect(decision.boot).toBe('a');
    expect(decision.write).toMatchObject({ [ENV.result]: TrialOutcome.KernelLoadFailed });
  });

  it('does not accept a confirmed trial whose kernel no longer loads', () => {
    const env = { [ENV.current]: 'a', [ENV.trial]: 'b', [ENV.state]: SwitchState.Confirmed };
    const decision = bootloaderDecision(readSwitchEnv(env), (id) => id !== 'b');
    expect(decision.boot).toBe('a');
    expect(decision.write).toMatchObject({ [ENV.result]: TrialOutcome.KernelLoadFailed, [ENV.trial]: '' });
    expect(decision.write).not.toHaveProperty(ENV.current);
  });
});

describe('readSwitchEnv', () => {
  it('reads a result that is no TrialOutcome as none', () => {
    expect(readSwitchEnv({ [ENV.result]: 'health-check', [ENV.resultSnapshot]: 'b' }).result).toBe('');
    expect(readSwitchEnv({ [ENV.result]: TrialOutcome.KernelLoadFailed }).result).toBe(TrialOutcome.KernelLoadFailed);
  });
});
