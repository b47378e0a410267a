import { ErrorCode, LastTrialResult, ROLLBACK_CAUSE, RollbackCause, TrialOutcome } from '@cowroot/protocol';
import { BootContext, SwitchEnv, SwitchState } from '@cowroot/device';
import { sanitizeCheckName, sanitizeCheckOutput } from '../health/check-output';
import { TrialRecord } from '../journal/command-journal';

/** Everything a boot's meaning depends on: read by the boot handler, judged here without side effects. */
export interface BootFacts {
  /** this boot's kernel command line (cowroot.snapshot=, cowroot.trial=) */
  boot: BootContext;
  env: SwitchEnv;
  /** the journal's pending trial */
  trial: TrialRecord | null;
  /** the device core's last trial result (with the rejected check and its output, when a check rejected it) */
  lastTrialResult: LastTrialResult | null;
}

export type BootVerdict =
  /** a trial boot: run the health checks, then confirm or reject */
  | { kind: 'judge-trial'; snapshot: string; commandId: string | null }
  /** a trial boot that was rejected before an agent restart that came before the reboot: reboot again */
  | { kind: 'reboot-rejected'; commandId: string }
  /** a trial boot already confirmed (the agent restarted after confirming): nothing to do */
  | { kind: 'already-confirmed'; snapshot: string }
  /** a trial boot the env does not know of: no verdict, logged */
  | { kind: 'unmatched-trial-boot'; booted: string; envTrial: string; envState: SwitchState }
  /** u-boot accepted the trial (`confirmed` was sent in the trial boot): close the record */
  | { kind: 'trial-accepted'; commandId: string; snapshot: string }
  /** the trial was undone: report `rolled-back` once, then close the record */
  | {
      kind: 'rolled-back';
      commandId: string;
      snapshot: string;
      restoredSnapshot: string;
      by: RollbackCause;
      check?: string;
      outputTail?: string;
      error?: { code: ErrorCode; message: string };
    }
  /** a normal boot with nothing to report */
  | { kind: 'nothing' };

/**
 * What this boot means (docs/agent.md §5), as a pure function of the env, the journal and the boot
 * context, like bootloaderDecision (libs/device switch-protocol.ts) is for u-boot's side.
 */
export function bootVerdict({ boot, env, trial, lastTrialResult }: BootFacts): BootVerdict {
  if (boot.trial && boot.snapshot) {
    if (trial?.snapshot === boot.snapshot && trial.verdict === 'rejected') {
      return { kind: 'reboot-rejected', commandId: trial.commandId };
    }
    if (env.trial === boot.snapshot && env.state === SwitchState.Confirmed) {
      return { kind: 'already-confirmed', snapshot: boot.snapshot };
    }
    if (env.trial === boot.snapshot && env.state === SwitchState.Trying) {
      return {
        kind: 'judge-trial',
        snapshot: boot.snapshot,
        commandId: trial?.snapshot === boot.snapshot ? trial.commandId : null,
      };
    }
    return { kind: 'unmatched-trial-boot', booted: boot.snapshot, envTrial: env.trial, envState: env.state };
  }
  // a normal boot: did u-boot finish the trial we asked for?
  if (!trial || !env.result) return { kind: 'nothing' };
  if (env.state !== SwitchState.Idle || env.trial || env.resultSnapshot !== trial.snapshot) return { kind: 'nothing' };
  const by = ROLLBACK_CAUSE[env.result];
  if (by === null) return { kind: 'trial-accepted', commandId: trial.commandId, snapshot: trial.snapshot };
  const fromDevice = lastTrialResult?.snapshot === trial.snapshot ? lastTrialResult : null;
  const check = trial.check ?? fromDevice?.check;
  const outputTail = trial.outputTail ?? fromDevice?.outputTail;
  return {
    kind: 'rolled-back',
    commandId: trial.commandId,
    snapshot: trial.snapshot,
    restoredSnapshot: boot.snapshot ?? env.current,
    by,
    // a record written by an older agent, or the rejection file, may hold what a check printed unsanitised
    ...(check ? { check: sanitizeCheckName(check) } : {}),
    ...(outputTail ? { outputTail: sanitizeCheckOutput(outputTail) } : {}),
    ...(by === RollbackCause.HealthCheck ? {} : { error: fallbackError(env.result, trial.snapshot) }),
  };
}

function fallbackError(outcome: TrialOutcome, snapshot: string): { code: ErrorCode; message: string } {
  return {
    code: ErrorCode.BootloaderFallback,
    message:
      outcome === TrialOutcome.KernelLoadFailed
        ? `u-boot could not load the kernel of ${snapshot}`
        : `the trial boot of ${snapshot} was never confirmed; u-boot fell back`,
  };
}
