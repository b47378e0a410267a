import { TrialOutcome } from '@cowroot/protocol';
import {
  ENV,
  KERNEL_ARG,
  SwitchState,
  cancelTrial,
  confirmTrial,
  rejectTrial,
  renderSetenvScript,
  requestTrial,
  type EnvUpdate,
} from '@cowroot/device';

/** Stands for the shell function's first argument while a transition is rendered. */
const SNAPSHOT_PLACEHOLDER = '@COWROOT_SNAPSHOT_ARGUMENT@';

function shellWord(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function constantName(prefix: string, key: string): string {
  return `${prefix}_${key
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]/g, '_')
    .toUpperCase()}`;
}

/**
 * A shell function printing the `fw_setenv -s` script of one transition, rendered by the device core's own
 * renderSetenvScript (libubootenv's `name=value` lines, `name=` deletes). The placeholder becomes "$1".
 */
function transitionFunction(name: string, update: EnvUpdate): string {
  const words = renderSetenvScript(update)
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split(SNAPSHOT_PLACEHOLDER).map(shellWord).join('"$1"'));
  return `${name}() { printf '%s\\n' ${words.join(' ')}; }`;
}

/**
 * The switch protocol as a POSIX shell include, generated from libs/device/src/switch-protocol.ts so that
 * the guest (and any shell tool on a device) writes exactly the variables the device core writes.
 * Each transition function prints the `fw_setenv -s` script of that one atomic env write.
 */
export function renderSwitchEnvInclude(): string {
  const lines = [
    '# Generated from libs/device/src/switch-protocol.ts by tools/vdev/switch-env-include.ts: do not edit.',
  ];
  const constants: [string, Record<string, string>][] = [
    ['COWROOT_ENV', ENV],
    ['COWROOT_STATE', SwitchState],
    ['COWROOT_RESULT', TrialOutcome],
    ['COWROOT_ARG', KERNEL_ARG],
  ];
  for (const [prefix, values] of constants) {
    for (const [key, value] of Object.entries(values)) lines.push(`${constantName(prefix, key)}=${shellWord(value)}`);
  }
  lines.push(transitionFunction('cowroot_request_trial_script', requestTrial(SNAPSHOT_PLACEHOLDER)));
  lines.push(transitionFunction('cowroot_cancel_trial_script', cancelTrial()));
  lines.push(transitionFunction('cowroot_confirm_trial_script', confirmTrial()));
  lines.push(transitionFunction('cowroot_reject_trial_script', rejectTrial(SNAPSHOT_PLACEHOLDER)));
  return `${lines.join('\n')}\n`;
}
