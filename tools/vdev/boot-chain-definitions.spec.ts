import { TrialOutcome } from '@cowroot/protocol';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ENV,
  KERNEL_ARG,
  SwitchState,
  cancelTrial,
  confirmTrial,
  rejectTrial,
  renderSetenvScript,
  requestTrial,
} from '@cowroot/device';
import { renderSwitchEnvInclude } from './switch-env-include';

const repo = join(__dirname, '..', '..');
const bootCmd = readFileSync(join(repo, 'uboot', 'boot.cmd'), 'utf8');
/** boot.cmd without its comments: what u-boot executes */
const bootCode = bootCmd
  .split('\n')
  .filter((line) => !/^\s*#/.test(line))
  .join('\n');
/** the board settings boot.cmd reads (uboot/README.md), besides the protocol variables */
const BOARD_SETTINGS = [
  'cowroot_disk',
  'cowroot_bootargs',
  'cowroot_kernel',
  'cowroot_initrd',
  'cowroot_fdt',
  'cowroot_boot',
];
const TEST_HOOKS = ['cowroot_test_pause'];

describe('uboot/boot.cmd and the switch protocol definition', () => {
  it('uses exactly the protocol variables of switch-protocol.ts, plus the documented board settings', () => {
    const used = new Set(bootCode.match(/\bcowroot_[a-z_]+/g));
    const expected = new Set([...Object.values(ENV), ...BOARD_SETTINGS, ...TEST_HOOKS]);
    expect([...used].sort()).toEqual([...expected].sort());
  });

  it('compares cowroot_state only with the states of SwitchState', () => {
    const compared = [...bootCode.matchAll(/"\$\{cowroot_state\}" = "([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(compared)).toEqual(new Set([SwitchState.Requested, SwitchState.Trying, SwitchState.Confirmed]));
    const written = [...bootCode.matchAll(/setenv cowroot_state (\S+)/g)].map((m) => m[1]);
    expect(written).toEqual([SwitchState.Trying]);
  });

  it('records only results of TrialOutcome that u-boot owns', () => {
    const written = new Set([...bootCode.matchAll(/setenv cowroot_result (\S+)/g)].map((m) => m[1]));
    expect(written).toEqual(
      new Set([TrialOutcome.Accepted, TrialOutcome.BootloaderFallback, TrialOutcome.KernelLoadFailed]),
    );
  });

  it('passes the kernel arguments of KERNEL_ARG', () => {
    expect(bootCode).toContain(`${KERNEL_ARG.snapshot}=\${cr_boot}`);
    expect(bootCode).toContain(`${KERNEL_ARG.trial}=\${cr_trial}`);
    expect(bootCode).toContain(`${KERNEL_ARG.trial}=0`);
  });

  it('has one saveenv, reached only through a model transition', () => {
    expect(bootCode.match(/\bsaveenv\b/g)).toHaveLength(1);
  });
});

describe('renderSwitchEnvInclude', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cowroot-switch-include-'));
    writeFileSync(join(dir, 'switch-env.sh'), renderSwitchEnvInclude());
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function shell(script: string, ...args: string[]): string {
    return execFileSync('sh', ['-c', `. "${join(dir, 'switch-env.sh')}"; ${script}`, 'sh', ...args], {
      encoding: 'utf8',
    });
  }

  it('prints the same fw_setenv scripts as the device core for every transition', () => {
    const snapshot = "2026-11-26 it's";
    expect(shell('cowroot_request_trial_script "$1"', snapshot)).toBe(renderSetenvScript(requestTrial(snapshot)));
    expect(shell('cowroot_cancel_trial_script')).toBe(renderSetenvScript(cancelTrial()));
    expect(shell('cowroot_confirm_trial_script')).toBe(renderSetenvScript(confirmTrial()));
    expect(shell('cowroot_reject_trial_script "$1"', snapshot)).toBe(renderSetenvScript(rejectTrial(snapshot)));
  });

  it('defines the variable names, states, results and kernel arguments', () => {
    expect(
      shell('echo "$COWROOT_ENV_STATE $COWROOT_STATE_TRYING $COWROOT_RESULT_BOOTLOADER_FALLBACK $COWROOT_ARG_TRIAL"'),
    ).toBe(`${ENV.state} ${SwitchState.Trying} ${TrialOutcome.BootloaderFallback} ${KERNEL_ARG.trial}\n`);
  });
});

describe('boot chain shell scripts', () => {
  const scripts = [
    'deploy/initramfs/cowroot-workspace.sh',
    'deploy/initramfs/busybox-init',
    'deploy/initramfs/hooks/cowroot',
    'deploy/initramfs/scripts/local-bottom/cowroot',
    'tools/vdev/guest/init',
    'tools/vdev/build-artifacts.sh',
    'tools/vdev/make-disk.sh',
    'tools/vdev/run.sh',
  ];
  it.each(scripts)('%s parses', (script) => {
    const interpreter = script.endsWith('.sh') && script.startsWith('tools/') ? 'bash' : 'sh';
    expect(() => execFileSync(interpreter, ['-n', join(repo, script)], { stdio: 'pipe' })).not.toThrow();
  });
});
