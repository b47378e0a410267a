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

/** signals that mean "killed because the other side of the pipe failed" (SIGTERM is pipe()'s own kill) */
const BROKEN_PIPE_SIGNALS: NodeJS.Signals[] = ['SIGPIPE', 'SIGTERM'];

/** Keeps the tail of stderr only: enough to explain a failure without holding a chatty tool's output. */
const STDERR_LIMIT = 4096;

function describe(spec: CommandSpec): string {
  return [spec.command, ...spec.args].join(' ');
}

/** The last two non-empty lines: where tools put the reason they stopped. */
function stderrTail(text: string): string {
  const lines = text
    .trim()
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
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
  const why = stderrTail(stderr);
  return new ReleaseError(ReleaseErrorCode.CommandFailed, `${describe(spec)} ${how}${why ? `: ${why}` : ''}`);
}

interface PipeFailure {
  error: Error;
  signal: NodeJS.Signals | null;
}

/** What failed in `producer | consumer > sink`. */
interface PipeOutcome {
  producer?: PipeFailure;
  consumer?: PipeFailure;
  /** producer stdout → consumer stdin */
  link?: PipeFailure;
  sink?: PipeFailure;
}

function streamFailure(error: Error): never {
  throw { error, signal: null } satisfies PipeFailure;
}

/**
 * The cause of a failed pipe. The sink failing (disk full) comes first: we then killed both commands.
 * A broken link means the consumer stopped reading early, so the consumer is the cause and the producer's
 * EPIPE/ECONNRESET/SIGPIPE its consequence. Without one, a failing producer ended the consumer's input
 * early, so its failure comes before the consumer's. Commands killed by SIGPIPE or by our own SIGTERM
 * are only reported when nothing else is known.
 */
function pickCause(outcome: PipeOutcome): Error {
  const commands = outcome.link ? [outcome.consumer, outcome.producer] : [outcome.producer, outcome.consumer];
  const ownFailures = commands.filter(
    (failure) => failure && !(failure.signal && BROKEN_PIPE_SIGNALS.includes(failure.signal)),
  );
  const cause = outcome.sink ?? ownFailures[0] ?? outcome.link ?? commands.find(Boolean);
  return cause?.error ?? new Error('pipe failed');
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
   * memory. Resolves when both commands exited 0 and the sink finished; otherwise rejects with the cause,
   * with its stderr, rather than what it broke on the other side of the pipe (see pickCause).
   */
  async pipe(producer: CommandSpec, consumer: CommandSpec, sink: (stdout: Readable) => Promise<void>): Promise<void> {
    const first = spawn(producer.command, producer.args, {
      env: this.envOf(producer),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const second = spawn(consumer.command, consumer.args, {
      env: this.envOf(consumer),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const outcome: PipeOutcome = {};
    const record = <T>(promise: Promise<T>, key: keyof PipeOutcome): Promise<T> =>
      promise.catch((failure: PipeFailure) => {
        outcome[key] = failure;
        throw failure.error;
      });
    const steps = [
      record(this.exitOf(first, producer), 'producer'),
      record(this.exitOf(second, consumer), 'consumer'),
      record(pipeline(first.stdout, second.stdin).catch(streamFailure), 'link'),
      record(sink(second.stdout).catch(streamFailure), 'sink'),
    ];
    try {
      await Promise.all(steps);
    } catch {
      // one step failed: stop the others so nothing waits forever on a dead pipe
      first.kill();
      second.kill();
      await Promise.allSettled(steps);
      throw pickCause(outcome);
    }
  }

  /** Resolves on exit 0; rejects with a PipeFailure: the error and the signal that ended the command. */
  private exitOf(child: ChildProcess, spec: CommandSpec): Promise<void> {
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_LIMIT);
    });
    return new Promise((resolve, reject) => {
      child.once('error', (error: NodeJS.ErrnoException) => {
        reject({
          error: error.code === 'ENOENT' ? notFound(spec) : failed(spec, `could not start (${error.message})`, ''),
          signal: null,
        });
      });
      child.once('close', (code, signal) => {
        if (code === 0) return resolve();
        reject({
          error: failed(spec, signal ? `was killed by ${signal}` : `exited with ${String(code)}`, stderr),
          signal,
        });
      });
    });
  }

  private envOf(spec: CommandSpec): NodeJS.ProcessEnv | undefined {
    return spec.env ? { ...process.env, ...spec.env } : undefined;
  }
}
