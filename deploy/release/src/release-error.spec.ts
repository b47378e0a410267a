import { BtrfsAdapter, CommandRunner } from '@cowroot/device';
import { ReleaseError, ReleaseErrorCode, asReleaseError } from './release-error';

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );
}

describe(asReleaseError.name, () => {
  const runner = new CommandRunner();

  it('keeps its own errors as they are', () => {
    const own = new ReleaseError(ReleaseErrorCode.NoKernel, 'no kernel');
    expect(asReleaseError(own)).toBe(own);
  });

  it('names the Debian package of a missing tool, also when it is the producer of a pipe', async () => {
    expect(asReleaseError(await failureOf(runner.run('mkimage-cowroot-missing', [])))).toMatchObject({
      code: ReleaseErrorCode.CommandMissing,
      message: 'command mkimage-cowroot-missing not found',
    });
    const send = { command: 'cowroot-no-such-btrfs', args: ['send'] };
    const piped = await failureOf(runner.run('cat', [], { stdin: { producer: send } }));
    expect(asReleaseError(piped)).toMatchObject({
      code: ReleaseErrorCode.CommandMissing,
      message: 'command cowroot-no-such-btrfs not found',
    });
  });

  it('says which package provides a known tool', async () => {
    const bare = new CommandRunner();
    // PATH without the tool: the real spawn fails with ENOENT for a command the tool knows
    const error = await failureOf(bare.run('zstd', ['-V'], { env: { PATH: '/nonexistent' } }));
    expect(asReleaseError(error)?.message).toBe('command zstd not found (install the Debian package zstd)');
  });

  it('keeps the command line and stderr of a failed command, also inside a device-core btrfs call', async () => {
    expect(asReleaseError(await failureOf(runner.run('ls', ['/no/such/path'])))).toMatchObject({
      code: ReleaseErrorCode.CommandFailed,
      message: expect.stringMatching(/^ls \/no\/such\/path failed \(exit code 2\): .*No such file or directory/),
    });
    const viaAdapter = await failureOf(new BtrfsAdapter(runner).show('/no/such/subvolume'));
    expect(asReleaseError(viaAdapter)).toMatchObject({
      code: ReleaseErrorCode.CommandFailed,
      message: expect.stringContaining('btrfs subvolume show /no/such/subvolume failed'),
    });
  });

  it('leaves anything else to the CLI as unexpected', () => {
    expect(asReleaseError(new TypeError('bug'))).toBeNull();
  });
});
