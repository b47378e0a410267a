import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CommandRunner } from './command-runner.adapter';
import { ReleaseErrorCode } from './release-error';

function collector(): { sink: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  return {
    sink: new Writable({ write: (chunk: Buffer, _e, next) => (chunks.push(chunk), next()) }),
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

describe(CommandRunner.name, () => {
  const runner = new CommandRunner();

  it('returns stdout and passes arguments verbatim, without a shell', async () => {
    await expect(runner.run({ command: 'printf', args: ['%s|', 'a b', '$HOME', ';echo'] })).resolves.toBe(
      'a b|$HOME|;echo|',
    );
  });

  it('puts the command and its stderr into the error', async () => {
    await expect(runner.run({ command: 'ls', args: ['/no/such/path'] })).rejects.toMatchObject({
      code: ReleaseErrorCode.CommandFailed,
      message: expect.stringMatching(/^ls \/no\/such\/path exited with 2: .*No such file or directory/),
    });
  });

  it('names the Debian package of a missing tool', async () => {
    await expect(runner.run({ command: 'cowroot-no-such-tool', args: [] })).rejects.toMatchObject({
      code: ReleaseErrorCode.CommandMissing,
    });
  });

  it('passes extra environment variables', async () => {
    await expect(
      runner.run({ command: 'printenv', args: ['COWROOT_TEST'], env: { COWROOT_TEST: 'yes' } }),
    ).resolves.toBe('yes\n');
  });

  it('pipes one command into another and the result into a sink', async () => {
    const out = collector();
    await runner.pipe({ command: 'printf', args: ['b\\na\\nc\\n'] }, { command: 'sort', args: [] }, (stdout) =>
      pipeline(stdout, out.sink),
    );
    expect(out.text()).toBe('a\nb\nc\n');
  });

  it('reports the failing producer, not the pipe it broke', async () => {
    const out = collector();
    await expect(
      runner.pipe({ command: 'cat', args: ['/no/such/file'] }, { command: 'cat', args: [] }, (stdout) =>
        pipeline(stdout, out.sink),
      ),
    ).rejects.toMatchObject({ message: expect.stringMatching(/^cat \/no\/such\/file exited with 1: .*No such file/) });
  });

  it('reports a failing consumer and does not hang on the producer', async () => {
    const out = collector();
    await expect(
      runner.pipe({ command: 'yes', args: [] }, { command: 'head', args: ['--bogus-option'] }, (stdout) =>
        pipeline(stdout, out.sink),
      ),
    ).rejects.toMatchObject({ message: expect.stringMatching(/^head --bogus-option exited with 1/) });
  });

  it('reports a missing consumer command', async () => {
    const out = collector();
    await expect(
      runner.pipe({ command: 'printf', args: ['x'] }, { command: 'cowroot-no-such-tool', args: [] }, (stdout) =>
        pipeline(stdout, out.sink),
      ),
    ).rejects.toMatchObject({ code: ReleaseErrorCode.CommandMissing });
  });
});
