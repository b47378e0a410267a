import { ChildProcess, execFile, spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ReleaseError, ReleaseErrorCode } from './release-error';

export interface CommandSpec {
  command: string;
  args: string[];
  /** extra environment variables (merged over process.env) */
  env?: Record<string, string>;
}

/** Debian package that provides each command, for "not found" errors. */
const PACKAGE_OF: Record<string, string> = {
  btrfs: 'btrfs-progs',
  mkimage: 'u-boot-tools',
  zstd: 'zstd',
  rsync: 'rsync',
};

/** Keeps the tail of stderr only: enough to explain a failure without holding a chatty tool's output. */
const STDERR_LIMIT = 4096;

function describe(spec: CommandSpec): string {
  return [spec.command, ...spec.args].join(' ');
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n').map((line) => line.trim()).filter(Boolean);
  return lines.slice(-2).join(' / ');
}

function notFound(spec: CommandSpec): ReleaseError {
  const pkg = PACKAGE_OF[spec.command];
  return new ReleaseError(
    ReleaseErrorCode.CommandMissing,
    `command ${spec.command} not found${pkg ? ` (install the Debian package ${pkg})` : ''}`,
  );
}

function failed(spec: CommandSpec, how: string, stderr: string): ReleaseError {
  const why = lastLine(stderr);
  return new ReleaseError(ReleaseErrorCode.CommandFailed, `${describe(spec)} ${how}${why ? `: ${why}` : ''}`);
}

/**
 * The one place that starts other programs (btrfs, mkimage, zstd, rsync). Always argument arrays, never a
 * shell; stderr is captured and put into the error so a failure explains itself.
 */
export class CommandRunner {
  /** Runs a command to completion and returns its stdout. */
  run(spec: CommandSpec): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        spec.command,
        spec.args,
        { env: this.envOf(spec), maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
        (error, stdout, stderr) => {
          if (!error) return resolve(stdout);
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return reject(notFound(spec));
          const how = error.signal ? `was killed by ${error.signal}` : `exited with ${String(error.code)}`;
          reject(failed(spec, how, stderr));
        },
      );
    });
  }

  /**
   * Runs `producer | consumer` and hands the consumer's stdout to `sink`, streaming: nothing is held in
   * memory. Resolves when both commands exited 0 and the sink finished; otherwise rejects with the first
   * real failure (a command's exit with its stderr rather than the broken pipe it caused downstream).
   */
  async pipe(producer: CommandSpec, consumer: CommandSpec, sink: (stdout: Readable) => Promise<void>): Promise<void> {
    const first = spawn(producer.command, producer.args, { env: this.envOf(producer), stdio: ['ignore', 'pipe', 'pipe'] });
    const second = spawn(consumer.command, consumer.args, { env: this.envOf(consumer), stdio: ['pipe', 'pipe', 'pipe'] });
    const commandErrors: ReleaseError[] = [];
    const streamErrors: Error[] = [];
    const track = <T>(promise: Promise<T>, into: Error[]): Promise<T> =>
      promise.catch((error: Error) => {
        into.push(error);
        throw error;
      });
    const steps = [
      track(this.exitOf(first, producer), commandErrors),
      track(this.exitOf(second, consumer), commandErrors),
      track(pipeline(first.stdout, second.stdin), streamErrors),
      track(sink(second.stdout), streamErrors),
    ];
    try {
      await Promise.all(steps);
    } catch {
      // one step failed: stop the others so nothing waits forever on a dead pipe
      first.kill();
      second.kill();
      await Promise.allSettled(steps);
      throw commandErrors[0] ?? streamErrors[0];
    }
  }

  private exitOf(child: ChildProcess, spec: CommandSpec): Promise<void> {
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_LIMIT);
    });
    return new Promise((resolve, reject) => {
      child.once('error', (error: NodeJS.ErrnoException) => {
        reject(error.code === 'ENOENT' ? notFound(spec) : failed(spec, `could not start (${error.message})`, ''));
      });
      child.once('close', (code, signal) => {
        if (code === 0) return resolve();
        reject(failed(spec, signal ? `was killed by ${signal}` : `exited with ${String(code)}`, stderr));
      });
    });
  }

  private envOf(spec: CommandSpec): NodeJS.ProcessEnv | undefined {
    return spec.env ? { ...process.env, ...spec.env } : undefined;
  }
}
