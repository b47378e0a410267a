import { PassThrough } from 'node:stream';
import { runCli } from '../src/cli';
import { ExitCode } from '../src/exit-codes';

export interface CliRun {
  code: ExitCode;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process (runCli with injected argv, env and output streams), as the bundle's main does. */
export async function runCliInProcess(
  argv: string[],
  env: Record<string, string | undefined>,
  options: { tty?: boolean } = {},
): Promise<CliRun> {
  const stdout = Object.assign(new PassThrough(), { isTTY: options.tty ?? false });
  const stderr = Object.assign(new PassThrough(), { isTTY: options.tty ?? false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => err.push(chunk));
  const code = await runCli(argv, {
    stdout,
    stderr,
    env,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 20))),
  });
  stdout.end();
  stderr.end();
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
