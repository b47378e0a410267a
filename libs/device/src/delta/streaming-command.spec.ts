import { HUGE_PAGES_TUNABLE, StreamingCommand, withHugePages } from './streaming-command';

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

  it('starts a decoder with huge pages for malloc added to the tunables it inherits, others without', async () => {
    const output = async (hugePages: boolean) => {
      const child = new StreamingCommand().start('sh', ['-c', 'printf %s "$GLIBC_TUNABLES"'], { hugePages });
      let text = '';
      for await (const chunk of child.stdout) text += (chunk as Buffer).toString();
      await child.done;
      return text;
    };
    const inherited = process.env.GLIBC_TUNABLES;
    try {
      delete process.env.GLIBC_TUNABLES;
      expect(await output(true)).toBe(HUGE_PAGES_TUNABLE);
      expect(await output(false)).toBe('');
      process.env.GLIBC_TUNABLES = 'glibc.malloc.check=3';
      expect(await output(true)).toBe(`glibc.malloc.check=3:${HUGE_PAGES_TUNABLE}`);
    } finally {
      if (inherited === undefined) delete process.env.GLIBC_TUNABLES;
      else process.env.GLIBC_TUNABLES = inherited;
    }
    // one set by the operator to another value is replaced, not doubled
    expect(withHugePages('glibc.malloc.hugetlb=0:glibc.malloc.check=3')).toBe(
      `glibc.malloc.check=3:${HUGE_PAGES_TUNABLE}`,
    );
    expect(withHugePages(undefined)).toBe(HUGE_PAGES_TUNABLE);
  });
});
