import { CliError } from '../cli-error';
import { parsePercent } from './wave-spec';

/** Failure kinds an abort rule can count (docs/rollouts.md "Abort rules"). */
export const FAILURE_KINDS = {
  download: 'download', // download or verification failed
  health: 'health-check', // the new snapshot booted but its health check rejected it
  fallback: 'bootloader', // u-boot fell back: the trial boot never reached confirmation
  timeout: 'timeout',
  any: 'any',
} as const;
export type FailureKind = (typeof FAILURE_KINDS)[keyof typeof FAILURE_KINDS];

export const ABORT_ACTIONS = ['pause', 'revert'] as const;
export type AbortAction = (typeof ABORT_ACTIONS)[number];

/** The server's AbortRule (apps/server/src/rollouts/abort-rules.ts). */
export interface AbortRule {
  kind: FailureKind;
  thresholdPercent: number;
  /** the rule applies only once this many devices have finished (successfully or not) */
  minExecuted: number;
  action: AbortAction;
}

const KIND_ALIASES: Record<string, FailureKind> = {
  ...FAILURE_KINDS,
  verify: 'download',
  'health-check': 'health-check',
  bootloader: 'bootloader',
  'timed-out': 'timeout',
};

/**
 * One `--abort` value: `<kind>:<threshold>%[:min=<n>][:pause|revert]`, e.g. `any:10%:min=5:revert`.
 * kind: download (download/verify), health, fallback, timeout, any. Default min 1, action pause.
 */
export function parseAbortRule(text: string): AbortRule {
  const [kindText, thresholdText, ...rest] = text.split(':').map((part) => part.trim());
  const kind = KIND_ALIASES[kindText?.toLowerCase() ?? ''];
  if (!kind) {
    throw CliError.usage(
      `abort rule ${JSON.stringify(text)}: unknown failure kind ${JSON.stringify(kindText)} (use ${Object.keys(FAILURE_KINDS).join(', ')})`,
    );
  }
  if (!thresholdText)
    throw CliError.usage(`abort rule ${JSON.stringify(text)}: give a threshold, e.g. ${kindText}:10%`);
  const rule: AbortRule = {
    kind,
    thresholdPercent: parsePercent(thresholdText, `abort rule ${text} threshold`),
    minExecuted: 1,
    action: 'pause',
  };
  for (const part of rest) {
    const min = /^min=(\d+)$/.exec(part);
    if (min) {
      rule.minExecuted = Number(min[1]);
      if (rule.minExecuted < 1) throw CliError.usage(`abort rule ${JSON.stringify(text)}: min must be at least 1`);
    } else if ((ABORT_ACTIONS as readonly string[]).includes(part)) {
      rule.action = part as AbortAction;
    } else {
      throw CliError.usage(
        `abort rule ${JSON.stringify(text)}: unknown part ${JSON.stringify(part)} (use min=<n>, pause or revert)`,
      );
    }
  }
  return rule;
}
