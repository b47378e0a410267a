import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CommandError, CommandRunner, formatCommandLine } from './command-runner';

describe(CommandRunner.name, () => {
  const runner = new CommandRunner();

  it('passes arguments verbatim, without a shell', async () => {
    const { stdout } = await runner.run('printf', ['%s|', 'a b', '$HOME', ';rm -rf /']);
    expect(stdout).toBe('a b|$HOME|;rm -rf /|');
  });

  it('puts the command line, exit code and stderr tail into the error', async () => {
    const error = await runner
      .run('sh', ['-c', 'echo first >&2; echo "bad thing" >&2; exit 3'])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    const failure = error as CommandError;
    expect(failure.failure).toBe('exit');
    expect(failure.exitCode).toBe(3);
    expect(failure.stderrTail).toContain('bad thing');
    expect(failure.message).toContain('sh -c');
    expect(failure.message).toContain('exit code 3');
  });

  it('reports a command that does not exist', async () => {
    await expect(runner.run('cowroot-no-such-command', [])).rejects.toMatchObject({ failure: 'spawn' });
  });

  it('streams a Readable into stdin', async () => {
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const { stdout } = await runner.run('wc', ['-c'], { stdin: Readable.from(chunks) });
    expect(Number(stdout.trim())).toBe(64 * 64 * 1024);
  });

  it('hands a file to stdin as a descriptor, and fails clearly when it cannot be opened', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cowroot-runner-'));
    try {
      const file = join(dir, 'input');
      await writeFile(file, Buffer.alloc(300_000, 7));
      const { stdout } = await runner.run('wc', ['-c'], { stdin: { file } });
      expect(Number(stdout.trim())).toBe(300_000);
      await expect(runner.run('wc', ['-c'], { stdin: { file: join(dir, 'missing') } })).rejects.toMatchObject({
        failure: 'stdin',
        message: expect.stringContaining('ENOENT'),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('a file through a filter (filter < file | command, an OS pipe between them)', () => {
    let dir: string;
    let file: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'cowroot-runner-'));
      file = join(dir, 'input');
      await writeFile(file, 'line\n'.repeat(100_000));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('gives the command what the filter wrote, from a path or a descriptor', async () => {
      const through = { command: 'tr', args: ['a-z', 'A-Z'] };
      const { stdout } = await runner.run('sh', ['-c', 'sort -u'], { stdin: { file, through } });
      expect(stdout).toBe('LINE\n');
      const handle = await open(file, 'r');
      try {
        const counted = await runner.run('wc', ['-l'], { stdin: { fd: handle.fd, through } });
        expect(Number(counted.stdout.trim())).toBe(100_000);
      } finally {
        await handle.close();
      }
    });

    it('fails when the filter fails, even though the command took the short stream it got', async () => {
      // the filter writes part of its input and dies; wc alone would have exited 0 on that
      const error = (await runner
        .run('wc', ['-c'], {
          stdin: { file, through: { command: 'sh', args: ['-c', 'head -c 1000; echo broken >&2; exit 3'] } },
        })
        .catch((e: unknown) => e)) as CommandError;
      expect(error).toBeInstanceOf(CommandError);
      expect(error.failure).toBe('stdin');
      expect(error.message).toMatch(/input filter failed.*exit code 3.*broken/s);
    });

    it("reports the command's own failure and stops the filter", async () => {
      const started = Date.now();
      // the filter would run for 30 s; it must not outlive the command that stopped reading
      const through = { command: 'sh', args: ['-c', 'exec sleep 30'] };
      await expect(runner.run('sh', ['-c', 'exit 5'], { stdin: { file, through } })).rejects.toMatchObject({
        failure: 'exit',
        exitCode: 5,
      });
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it('reports a filter that does not exist', async () => {
      const error = (await runner
        .run('wc', ['-c'], { stdin: { file, through: { command: 'no-such-filter-cowroot', args: [] } } })
        .catch((e: unknown) => e)) as CommandError;
      expect(error.failure).toBe('stdin');
      expect(error.message).toContain('no-such-filter-cowroot');
    });
  });

  describe("another command's stdout as stdin (producer | command)", () => {
    it('gives the command what the producer printed', async () => {
      const { stdout } = await runner.run('sort', [], {
        stdin: { producer: { command: 'printf', args: ['b\\na\\nc\\n'] } },
      });
      expect(stdout).toBe('a\nb\nc\n');
    });

    it("fails with the producer's error when the producer fails", async () => {
      const producer = { command: 'sh', args: ['-c', 'printf partial; echo gone >&2; exit 2'] };
      await expect(runner.run('wc', ['-c'], { stdin: { producer } })).rejects.toMatchObject({
        failure: 'stdin',
        message: expect.stringMatching(/input filter failed.*exit code 2.*gone/s),
      });
    });

    it("reports the command's own failure and does not wait for an endless producer", async () => {
      const started = Date.now();
      await expect(
        runner.run('sh', ['-c', 'exit 6'], { stdin: { producer: { command: 'yes', args: [] } } }),
      ).rejects.toMatchObject({ failure: 'exit', exitCode: 6 });
      expect(Date.now() - started).toBeLessThan(10_000);
    });
  });

  describe('stdout to a sink instead of memory', () => {
    it('streams more than maxStdoutBytes into the sink and returns an empty stdout', async () => {
      let bytes = 0;
      const result = await runner.run('head', ['-c', '3000000', '/dev/zero'], {
        maxStdoutBytes: 1000,
        stdoutSink: async (stdout) => {
          for await (const chunk of stdout) bytes += (chunk as Buffer).length;
        },
      });
      expect(bytes).toBe(3_000_000);
      expect(result.stdout).toBe('');
    });

    it("kills the command and fails with the sink's error when the sink fails", async () => {
      const started = Date.now();
      const error = (await runner
        .run('yes', [], {
          stdoutSink: async (stdout) => {
            for await (const chunk of stdout) {
              if (chunk) throw new Error('disk full');
            }
          },
        })
        .catch((e: unknown) => e)) as CommandError;
      expect(error).toBeInstanceOf(CommandError);
      expect(error.failure).toBe('output');
      expect(error.message).toContain('consuming stdout: disk full');
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it('still fails on a non-zero exit after the sink took everything', async () => {
      let text = '';
      await expect(
        runner.run('sh', ['-c', 'echo out; exit 3'], {
          stdoutSink: async (stdout) => {
            for await (const chunk of stdout) text += String(chunk);
          },
        }),
      ).rejects.toMatchObject({ failure: 'exit', exitCode: 3 });
      expect(text).toBe('out\n');
    });
  });

  it('kills the command when the stdin source fails, so it never sees a clean end', async () => {
    const source = new Readable({ read() {} });
    source.push('partial');
    setTimeout(() => source.destroy(new Error('connection reset')), 50);
    const error = (await runner.run('cat', [], { stdin: source }).catch((e: unknown) => e)) as CommandError;
    expect(error.failure).toBe('stdin');
    expect(error.message).toContain('connection reset');
  });

  it('does not hang or crash when the command exits without reading stdin', async () => {
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) yield Buffer.alloc(64 * 1024);
      })(),
    );
    await expect(runner.run('sh', ['-c', 'exit 4'], { stdin: source })).rejects.toMatchObject({ exitCode: 4 });
    expect(source.destroyed).toBe(true);
  });

  it('times out and aborts', async () => {
    await expect(runner.run('sleep', ['5'], { timeoutMs: 100 })).rejects.toMatchObject({ failure: 'timeout' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(runner.run('sleep', ['5'], { signal: controller.signal })).rejects.toMatchObject({
      failure: 'aborted',
    });
  });

  it('quotes arguments for display only', () => {
    expect(formatCommandLine('btrfs', ['receive', '-e', '/pool/staging/a b'])).toBe(
      'btrfs receive -e "/pool/staging/a b"',
    );
  });
});
