import { CliError } from '../cli-error';
import { ExitCode } from '../exit-codes';
import { createRolloutBody } from './rollouts.command';

describe('createRolloutBody', () => {
  it("builds the server's CreateRolloutDto from the command line", () => {
    expect(
      createRolloutBody({
        release: 'base@1.1',
        tag: ['canary'],
        filter: ['online=true'],
        wave: ['1', '5%,soak=10m', '100%,approval'],
        success: '95%',
        timeout: '30m',
        abort: ['health:10%:min=3:revert', 'any:20%'],
        rate: 50,
        continuous: true,
        reboot: 'window',
        reason: 'CVE fix',
      }),
    ).toEqual({
      name: 'base@1.1 to tags canary online=true',
      release: { name: 'base', version: '1.1' },
      selector: { tags: ['canary'], filter: { online: true } },
      waves: [
        { count: 1, successPercent: 95, timeoutSeconds: 1800, requiresApproval: false },
        { percent: 5, successPercent: 95, timeoutSeconds: 1800, soakSeconds: 600, requiresApproval: false },
        { percent: 100, successPercent: 95, timeoutSeconds: 1800, requiresApproval: true },
      ],
      abortRules: [
        { kind: 'health-check', thresholdPercent: 10, minExecuted: 3, action: 'revert' },
        { kind: 'any', thresholdPercent: 20, minExecuted: 1, action: 'pause' },
      ],
      dispatchPerMinute: 50,
      randomize: true,
      continuous: true,
      rebootMode: 'window',
      reason: 'CVE fix',
    });
  });

  it.each([
    [{ release: 'base', allDevices: true, wave: ['100%'], timeout: '1h' }],
    [{ release: 'base@1', wave: ['100%'], timeout: '1h' }],
    [{ release: 'base@1', allDevices: true, wave: [] as string[], timeout: '1h' }],
    [{ release: 'base@1', allDevices: true, wave: ['100%'], timeout: '0s' }],
    [{ release: 'base@1', allDevices: true, wave: ['100%'], timeout: '1h', reboot: 'later' }],
  ])('refuses %j before any request', (options) => {
    expect(() => createRolloutBody(options)).toThrow(CliError);
    try {
      createRolloutBody(options);
    } catch (error) {
      expect((error as CliError).exitCode).toBe(ExitCode.Usage);
    }
  });
});
