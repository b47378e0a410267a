import {
  ENV,
  KERNEL_ARG,
  SwitchResult,
  SwitchState,
  cancelTrial,
  confirmTrial,
  rejectTrial,
  requestTrial,
  type EnvUpdate,
} from '../../libs/device/src/switch-protocol';

/** Stands for the shell function's first argument while the transitions are rendered. */
const SNAPSHOT_PLACEHOLDER = '\u0000snapshot\u0000';

function shellWord(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function constantName(prefix: string, key: string): string {
  return `${prefix}_${key.replace(/([a-z])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
}

/**
 * A shell function printing the `fw_setenv -s` script of one transition: a line "name value" per
 * variable, or just "name" to delete it ('' in an EnvUpdate). The placeholder becomes the argument "$1".
 */
function transitionFunction(name: string, update: EnvUpdate): string {
  const words = Object.entries(update).map(([variable, value]) => {
    const line = value ? `${variable} ${value}` : variable;
    return line.split(SNAPSHOT_PLACEHOLDER).map(shellWord).join('"$1"');
  });
  return `${name}() { printf '%s\\n' ${words.join(' ')}; }`;
}

/**
 * The switch protocol as a POSIX shell include, generated from libs/device/src/switch-protocol.ts so that
 * the guest (and any shell tool on a device) writes exactly the variables the device core writes.
 * Each transition function prints the `fw_setenv -s` script of that one atomic env write.
 */
export function renderSwitchEnvInclude(): string {
  const lines = ['# Generated from libs/device/src/switch-protocol.ts by tools/vdev/switch-env-include.ts: do not edit.'];
  for (const [key, value] of Object.entries(ENV)) lines.push(`${constantName('COWROOT_ENV', key)}=${shellWord(value)}`);
  for (const [key, value] of Object.entries(SwitchState)) lines.push(`${constantName('COWROOT_STATE', key)}=${shellWord(value)}`);
  for (const [key, value] of Object.entries(SwitchResult)) lines.push(`${constantName('COWROOT_RESULT', key)}=${shellWord(value)}`);
  for (const [key, value] of Object.entries(KERNEL_ARG)) lines.push(`${constantName('COWROOT_ARG', key)}=${shellWord(value)}`);
  lines.push(transitionFunction('cowroot_request_trial_script', requestTrial(SNAPSHOT_PLACEHOLDER)));
  lines.push(transitionFunction('cowroot_cancel_trial_script', cancelTrial()));
  lines.push(transitionFunction('cowroot_confirm_trial_script', confirmTrial()));
  lines.push(transitionFunction('cowroot_reject_trial_script', rejectTrial(SNAPSHOT_PLACEHOLDER)));
  return `${lines.join('\n')}\n`;
}
