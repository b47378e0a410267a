import { StreamingCommand } from './streaming-command';

describe(StreamingCommand.name, () => {
  it('keeps the output of a command that exited before its reader started (Node would discard it)', async () => {
    const child = new StreamingCommand().start('head', ['-c', '50000', '/dev/zero']);
    await child.done;
    await new Promise((resolve) => setTimeout(resolve, 50));
    let bytes = 0;
    for await (const chunk of child.stdout) bytes += (chunk as Buffer).length;
    expect(bytes).toBe(50000);
  });

  it('rejects with the exit code and the stderr tail', async () => {
    const child = new StreamingCommand().start('sh', ['-c', 'echo broken >&2; exit 3']);
    await expect(child.done).rejects.toMatchObject({ failure: 'exit', exitCode: 3, stderrTail: 'broken\n' });
  });

  it('settles when killed with its output unread, whatever it has left in the pipe', async () => {
    // more than the pipe and the stream buffers hold: the child blocks writing, or exits with it unread
    const child = new StreamingCommand().start('head', ['-c', '20000000', '/dev/zero']);
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill();
    await expect(
      child.done.then(
        () => 'exited',
        () => 'killed',
      ),
    ).resolves.toMatch(/exited|killed/);
  });
});
