import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HealthCheckKind } from '@cowroot/protocol';
import { OUTPUT_TAIL_BYTES, runCheckDirectory, runCheckExecutable } from './health-check-runner';

async function script(dir: string, name: string, body: string, mode = 0o755): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, mode);
  return path;
}

describe('health check runner', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-health-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes on exit 0 and keeps the output', async () => {
    const result = await runCheckExecutable(await script(dir, 'ok', 'echo network up; echo warn >&2'), 5000);
    expect(result.passed).toBe(true);
    expect(result.output).toContain('network up');
    expect(result.output).toContain('warn');
  });

  it('fails on a non-zero exit with the tail of the output', async () => {
    const result = await runCheckExecutable(await script(dir, 'bad', 'echo "no route to host" >&2; exit 3'), 5000);
    expect(result.passed).toBe(false);
    expect(result.output).toContain('no route to host');
    expect(result.output).toContain('exit 3');
  });

  it('kills a check that hangs past its timeout, with whatever it started', async () => {
    const marker = join(dir, 'grandchild-alive');
    const started = Date.now();
    const result = await runCheckExecutable(
      await script(dir, 'hang', `echo starting; (sleep 3; touch ${marker}) & sleep 30`),
      300,
    );
    expect(result.passed).toBe(false);
    expect(result.output).toContain('starting');
    expect(result.output).toContain('timeout');
    expect(Date.now() - started).toBeLessThan(3000);
    // the background child of the script was in the killed process group
    await new Promise((resolve) => setTimeout(resolve, 3500));
    await expect(import('node:fs/promises').then((fs) => fs.access(marker))).rejects.toThrow();
  }, 15000);

  it('keeps only the last bytes of a chatty check', async () => {
    const result = await runCheckExecutable(
      await script(dir, 'chatty', 'i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done; echo LAST'),
      5000,
    );
    expect(result.output.length).toBeLessThanOrEqual(OUTPUT_TAIL_BYTES);
    expect(result.output.trimEnd().endsWith('LAST')).toBe(true);
  });

  it('runs a directory in name order, skips hidden files, fails non-executables', async () => {
    const checks = join(dir, 'required.d');
    await mkdir(checks);
    await script(checks, '20-second', 'exit 0');
    await script(checks, '10-first', 'exit 1');
    await script(checks, '.hidden', 'exit 1');
    await script(checks, '30-not-executable', 'exit 0', 0o644);
    const results = await runCheckDirectory(checks, HealthCheckKind.Required, 5000);
    expect(results.map((r) => [r.name, r.passed, r.kind])).toEqual([
      ['10-first', false, 'required'],
      ['20-second', true, 'required'],
      ['30-not-executable', false, 'required'],
    ]);
    expect(results[2].outputTail).toContain('not executable');
  });

  it('treats a missing directory as no checks', async () => {
    expect(await runCheckDirectory(join(dir, 'nope'), HealthCheckKind.Wanted, 1000)).toEqual([]);
  });
});

describe('check output sanitising', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-health-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('strips NUL and control characters from what a check prints, keeps tabs and newlines, bounds the size', async () => {
    // 6000 bytes of NUL, escapes and invalid UTF-8, then a readable last line
    const result = await runCheckExecutable(
      await script(
        dir,
        'noisy',
        `i=0; while [ $i -lt 1000 ]; do printf 'a\\000\\033[31m\\377\\r'; i=$((i+1)); done; printf 'tab\\there\\nlast line\\n'; exit 1`,
      ),
      5000,
    );
    expect(result.passed).toBe(false);
    expect(result.output).not.toMatch(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/);
    expect(result.output.length).toBeLessThanOrEqual(4096);
    expect(result.output).toContain('tab\there\nlast line\n');
    expect(result.output).toContain('[cowroot] exit 1');
    // the invalid UTF-8 byte became the replacement character, not a lone surrogate
    expect(result.output).toContain('\uFFFD');
  });

  it('reports a check whose file name holds control characters under a clean, bounded name', async () => {
    const checks = join(dir, 'required.d');
    await mkdir(checks);
    await script(checks, `bad\u0001name${'x'.repeat(200)}`, 'exit 0');
    const [result] = await runCheckDirectory(checks, HealthCheckKind.Required, 5000);
    expect(result.name).toBe(`badname${'x'.repeat(121)}`);
    expect(result.passed).toBe(true);
  });
});
