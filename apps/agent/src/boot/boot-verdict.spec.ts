import { ErrorCode, RollbackCause, TrialOutcome } from '@cowroot/protocol';
import { ENV, SwitchState, bootloaderDecision, readSwitchEnv, rejectTrial, requestTrial } from '@cowroot/device';
import { TrialRecord } from '../journal/command-journal';
import { BootFacts, bootVerdict } from './boot-verdict';

const trialOf = (snapshot: string, extra: Partial<TrialRecord> = {}): TrialRecord => ({
  commandId: 'c-1',
  snapshot,
  fallback: 'a',
  requestedAt: '2026-12-01T00:00:00.000Z',
  ...extra,
});

function facts(
  vars: Record<string, string>,
  boot: { snapshot: string; trial: boolean },
  trial: TrialRecord | null,
  lastTrialResult: BootFacts['lastTrialResult'] = null,
): BootFacts {
  return { boot, env: readSwitchEnv(vars), trial, lastTrialResult };
}

/** The env after u-boot's part of one boot, from the reference model of boot.cmd. */
function afterBoot(
  vars: Record<string, string>,
  loads = true,
): { vars: Record<string, string>; boot: string; trial: boolean } {
  const decision = bootloaderDecision(readSwitchEnv(vars), () => loads);
  return {
    vars: { ...vars, ...(decision.write ?? {}) } as Record<string, string>,
    boot: decision.boot,
    trial: decision.trial,
  };
}

describe(bootVerdict.name, () => {
  const requested = { [ENV.current]: 'a', ...requestTrial('b') } as Record<string, string>;

  it('judges the trial boot u-boot started, naming the command that asked for it', () => {
    const boot = afterBoot(requested);
    expect(bootVerdict(facts(boot.vars, { snapshot: boot.boot, trial: boot.trial }, trialOf('b')))).toEqual({
      kind: 'judge-trial',
      snapshot: 'b',
      commandId: 'c-1',
    });
    // a trial the journal does not know (requested by a shell tool): still judged, no command to report to
    expect(bootVerdict(facts(boot.vars, { snapshot: 'b', trial: true }, null))).toMatchObject({
      kind: 'judge-trial',
      commandId: null,
    });
  });

  it('reboots again a trial boot rejected before the agent restarted, and leaves a confirmed one alone', () => {
    const rejected = { ...requested, ...rejectTrial('b') } as Record<string, string>;
    expect(bootVerdict(facts(rejected, { snapshot: 'b', trial: true }, trialOf('b', { verdict: 'rejected' })))).toEqual(
      { kind: 'reboot-rejected', commandId: 'c-1' },
    );
    const confirmed = { ...requested, [ENV.state]: SwitchState.Confirmed };
    expect(bootVerdict(facts(confirmed, { snapshot: 'b', trial: true }, trialOf('b')))).toEqual({
      kind: 'already-confirmed',
      snapshot: 'b',
    });
  });

  it('gives no verdict to a trial boot the env does not know of', () => {
    expect(bootVerdict(facts({ [ENV.current]: 'a' }, { snapshot: 'b', trial: true }, trialOf('b')))).toEqual({
      kind: 'unmatched-trial-boot',
      booted: 'b',
      envTrial: '',
      envState: SwitchState.Idle,
    });
  });

  it('closes an accepted trial without an event', () => {
    const trying = afterBoot(requested).vars;
    const accepted = afterBoot({ ...trying, [ENV.state]: SwitchState.Confirmed });
    expect(bootVerdict(facts(accepted.vars, { snapshot: accepted.boot, trial: false }, trialOf('b')))).toEqual({
      kind: 'trial-accepted',
      commandId: 'c-1',
      snapshot: 'b',
    });
  });

  it('reports each fallback with its cause: bootloader, kernel-load, health-check with the check', () => {
    const trying = afterBoot(requested).vars;
    const fellBack = afterBoot(trying);
    expect(bootVerdict(facts(fellBack.vars, { snapshot: fellBack.boot, trial: false }, trialOf('b')))).toEqual({
      kind: 'rolled-back',
      commandId: 'c-1',
      snapshot: 'b',
      restoredSnapshot: 'a',
      by: RollbackCause.Bootloader,
      error: {
        code: ErrorCode.BootloaderFallback,
        message: 'the trial boot of b was never confirmed; u-boot fell back',
      },
    });

    const noKernel = afterBoot(requested, false);
    expect(bootVerdict(facts(noKernel.vars, { snapshot: noKernel.boot, trial: false }, trialOf('b')))).toMatchObject({
      kind: 'rolled-back',
      by: RollbackCause.KernelLoad,
      error: { code: ErrorCode.BootloaderFallback, message: 'u-boot could not load the kernel of b' },
    });

    const healthRejected = afterBoot({ ...trying, ...rejectTrial('b') } as Record<string, string>);
    const fromDevice = { snapshot: 'b', outcome: TrialOutcome.HealthRejected, check: '50-app', outputTail: 'refused' };
    const verdict = bootVerdict(
      facts(healthRejected.vars, { snapshot: healthRejected.boot, trial: false }, trialOf('b'), fromDevice),
    );
    expect(verdict).toEqual({
      kind: 'rolled-back',
      commandId: 'c-1',
      snapshot: 'b',
      restoredSnapshot: 'a',
      by: RollbackCause.HealthCheck,
      check: '50-app',
      outputTail: 'refused',
    });
  });

  it('reports a recorded check output with NUL and control characters cleaned', () => {
    const vars = { [ENV.current]: 'a', ...rejectTrial('b') } as Record<string, string>;
    const trial = trialOf('b', { check: 'ap\u0000p', outputTail: 'bad\u0000byte\u001b[0m\nend' });
    expect(bootVerdict(facts(vars, { snapshot: 'a', trial: false }, trial))).toMatchObject({
      check: 'app',
      outputTail: 'badbyte[0m\nend',
    });
  });

  it('prefers the journal record of the rejection, and bounds the output tail', () => {
    const vars = { [ENV.current]: 'a', ...rejectTrial('b') } as Record<string, string>;
    const trial = trialOf('b', { verdict: 'rejected', check: 'journal-check', outputTail: 'x'.repeat(5000) });
    const other = { snapshot: 'b', outcome: TrialOutcome.HealthRejected, check: 'file-check' };
    expect(bootVerdict(facts(vars, { snapshot: 'a', trial: false }, trial, other))).toMatchObject({
      check: 'journal-check',
      outputTail: 'x'.repeat(4096),
    });
  });

  it('says nothing while a trial is only requested, or when the result is about another snapshot', () => {
    expect(bootVerdict(facts(requested, { snapshot: 'a', trial: false }, trialOf('b')))).toEqual({ kind: 'nothing' });
    const other = { [ENV.current]: 'a', [ENV.result]: TrialOutcome.BootloaderFallback, [ENV.resultSnapshot]: 'c' };
    expect(bootVerdict(facts(other, { snapshot: 'a', trial: false }, trialOf('b')))).toEqual({ kind: 'nothing' });
    expect(bootVerdict(facts(other, { snapshot: 'a', trial: false }, null))).toEqual({ kind: 'nothing' });
  });
});
