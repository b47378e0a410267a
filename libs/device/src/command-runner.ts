import { ChildProcess, spawn } from 'node:child_process';
import { FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';

/** A command standing between a file and the command that is run: `filter < file | command`. */
export interface StdinFilter {
  command: string;
  args: readonly string[];
}

/**
 * A file handed to the command (or to its filter) as its stdin descriptor, so no byte passes through
 * Node: by path (opened and closed by the runner) or as a descriptor the caller owns.
 */
export type StdinFile = ({ file: string } | { fd: number }) & { through?: StdinFilter };

/**
 * Another command's stdout as the command's stdin, through an OS pipe: `producer | command` (the producer's
 * own stdin is empty). It fails and is stopped the way a filter is (see runFromDescriptor).
 */
export interface StdinProducer {
  producer: StdinFilter;
}

export interface RunOptions {
  /**
   * fed to the command's stdin: a Readable is piped (backpressure kept) and consumed by the call;
   * `{ file }` opens the file and hands its descriptor to the command, so no byte passes through Node.
   */
  stdin?: Readable | string | Buffer | StdinFile | StdinProducer;
  /** kill the command (SIGTERM, then SIGKILL after killGraceMs) when it runs longer */
  timeoutMs?: number;
  /** abort = kill the command, like a timeout */
  signal?: AbortSignal;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout kept in memory; a command printing more is killed and fails (default 16 MiB) */
  maxStdoutBytes?: number;
  /**
   * consumes stdout as a stream (to a file, a hash) instead of keeping it in memory; the result's stdout
   * is then ''. The call settles once the command has exited and this promise has settled; when it
   * rejects (disk full), the command is killed and the call fails with 'output'.
   */
  stdoutSink?: (stdout: Readable) => Promise<void>;
}

export interface CommandResult {
  stdout: string;
  /** stderr, with the middle elided when it was long (the start and the last STDERR_KEEP bytes are kept) */
  stderr: string;
}

export type CommandFailure = 'exit' | 'signal' | 'timeout' | 'aborted' | 'spawn' | 'stdin' | 'output';

const STDERR_KEEP = 64 * 1024;
const MESSAGE_TAIL = 1024;
const DEFAULT_MAX_STDOUT = 16 * 1024 * 1024;
const KILL_GRACE_MS = 3000;

/** Quotes an argument for display only (commands never go through a shell). */
function displayArg(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg);
}

export function formatCommandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map(displayArg).join(' ');
}

/** A command that did not succeed, with everything needed to tell why without rerunning it. */
export class CommandError extends Error {
  readonly commandLine: string;

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly failure: CommandFailure,
    readonly exitCode: number | null,
    readonly stderrTail: string,
    detail?: string,
    options?: { cause?: unknown },
  ) {
    const commandLine = formatCommandLine(command, args);
    const what =
      detail ?? (failure === 'exit' ? `exit code ${exitCode}` : failure === 'timeout' ? 'timed out' : failure);
    const tail = stderrTail.trim() ? `: ${stderrTail.trim().slice(-MESSAGE_TAIL)}` : '';
    super(`${commandLine} failed (${what})${tail}`, options);
    this.name = 'CommandError';
    this.commandLine = commandLine;
  }
}

/** Keeps the first and the last STDERR_KEEP bytes of a stream of chunks. */
class BoundedText {
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private elided = false;

  push(chunk: Buffer): void {
    if (this.headBytes < STDERR_KEEP) {
      const take = chunk.subarray(0, STDERR_KEEP - this.headBytes);
      this.head.push(take);
      this.headBytes += take.length;
      chunk = chunk.subarray(take.length);
    }
    if (chunk.length === 0) return;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tailBytes - this.tail[0].length >= STDERR_KEEP) {
      this.tailBytes -= this.tail.shift()!.length;
      this.elided = true;
    }
  }

  toString(): string {
    const head = Buffer.concat(this.head).toString('utf8');
    const tail = Buffer.concat(this.tail).toString('utf8');
    return this.elided ? `${head}\n[…]\n${tail}` : head + tail;
  }
}

/**
 * The one door to the OS for the device core: every `btrfs`, `fw_setenv`, `mkenvimage` call goes through
 * `run` with an argument array (never a shell string). Injected into the adapters so a test or the agent
 * can wrap it (logging, dry runs) without touching them.
 */
export class CommandRunner {
  async run(command: string, args: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    const stdin = options.stdin;
    if (stdin === undefined || stdin instanceof Readable || typeof stdin !== 'object' || Buffer.isBuffer(stdin)) {
      return this.spawnAndWait(command, args, options, undefined);
    }
    if ('producer' in stdin) return this.runFromDescriptor(command, args, options, 'ignore', stdin.producer);
    if ('fd' in stdin) return this.runFromDescriptor(command, args, options, stdin.fd, stdin.through);
    let file: FileHandle;
    try {
      file = await open(stdin.file, 'r');
    } catch (error) {
      throw new CommandError(
        command,
        args,
        'stdin',
        null,
        '',
        `opening stdin ${stdin.file}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    try {
      return await this.runFromDescriptor(command, args, options, file.fd, stdin.through);
    } finally {
      await file.close();
    }
  }

  /**
   * `command < fd`, or `filter < fd | command` with an OS pipe between the two processes (as a shell
   * would, at the same speed); fd 'ignore' makes it `producer | command`. The call succeeds only when both
   * exit 0: a filter that fails (a corrupt compressed file) kills the command, and even when the command
   * already finished on the short stream it got, the call fails with the filter's error, so the caller
   * never takes a truncated result for a whole.
   */
  private async runFromDescriptor(
    command: string,
    args: readonly string[],
    options: RunOptions,
    fd: number | 'ignore',
    filter: StdinFilter | undefined,
  ): Promise<CommandResult> {
    if (!filter) return this.spawnAndWait(command, args, options, fd);
    const producer = new FilterProcess(filter, fd);
    const consumer = this.spawnAndWait(command, args, options, producer.stdout, (kill) => producer.onFailure(kill));
    producer.closeParentEnd();
    let result: CommandResult;
    try {
      result = await consumer;
    } catch (error) {
      producer.stop();
      await producer.done.catch(() => undefined);
      throw error;
    }
    const filterError = await producer.done.then(
      () => null,
      (error: CommandError) => error,
    );
    if (filterError) {
      throw new CommandError(command, args, 'stdin', 0, '', filterFailed(filterError), { cause: filterError });
    }
    return result;
  }

  /**
   * `stdinFd` is a descriptor (or the OS pipe of a filter) the child gets as its stdin; without it,
   * options.stdin is written by Node. `watchInput` lets a filter kill the command when the filter fails.
   */
  private spawnAndWait(
    command: string,
    args: readonly string[],
    options: RunOptions,
    stdinFd: number | 'ignore' | Readable | undefined,
    watchInput?: (kill: (kind: CommandFailure, detail: string, cause: unknown) => void) => void,
  ): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      const stdinSource = stdinFd === undefined ? (options.stdin as Readable | string | Buffer | undefined) : undefined;
      const child = spawn(command, [...args], {
        cwd: options.cwd,
        env: options.env,
        stdio: [stdinFd ?? (stdinSource === undefined ? 'ignore' : 'pipe'), 'pipe', 'pipe'],
      });
      const sink = options.stdoutSink;
      const stdout: Buffer[] = [];
      let stdoutBytes = 0;
      const maxStdout = options.maxStdoutBytes ?? DEFAULT_MAX_STDOUT;
      const stderr = new BoundedText();
      let failure: { kind: CommandFailure; detail?: string; cause?: unknown } | null = null;
      let killTimer: NodeJS.Timeout | undefined;
      let settled = false;

      const kill = (kind: CommandFailure, detail?: string, cause?: unknown) => {
        failure ??= { kind, detail, cause };
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        killTimer ??= setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
        killTimer.unref();
      };

      const timeout =
        options.timeoutMs !== undefined
          ? setTimeout(() => kill('timeout', `timed out after ${options.timeoutMs} ms`), options.timeoutMs)
          : undefined;
      // a filter that failed because its reader went away (the command exited or closed stdin) is the
      // consequence, not the cause: the command's own exit is reported; a filter failing first kills it
      watchInput?.((kind, detail, cause) => {
        const exited = child.exitCode !== null || child.signalCode !== null;
        if (!exited && !brokenPipe(cause)) kill(kind, detail, cause);
      });
      const onAbort = () => kill('aborted', 'aborted', options.signal?.reason);
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });

      const finish = (error: CommandError | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        clearTimeout(killTimer);
        options.signal?.removeEventListener('abort', onAbort);
        if (stdinSource instanceof Readable && !stdinSource.readableEnded) {
          // the command stopped reading: release whatever produces the stream (a download, a file)
          if (child.stdin) stdinSource.unpipe(child.stdin);
          stdinSource.destroy();
        }
        if (error) reject(error);
        else resolve({ stdout: Buffer.concat(stdout).toString('utf8'), stderr: stderr.toString() });
      };

      // settles with null when the sink finished, with its error otherwise (the command is then killed)
      const sinkDone: Promise<Error | null> = sink
        ? sink(child.stdout!).then(
            () => null,
            (error: Error) => {
              kill('output', `consuming stdout: ${error.message}`, error);
              return error;
            },
          )
        : Promise.resolve(null);
      if (!sink)
        child.stdout!.on('data', (chunk: Buffer) => {
          stdoutBytes += chunk.length;
          if (stdoutBytes > maxStdout) {
            kill('output', `more than ${maxStdout} bytes on stdout`);
            return;
          }
          stdout.push(chunk);
        });
      child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));

      child.on('error', (error: NodeJS.ErrnoException) => {
        // spawn failure (ENOENT, EACCES): no 'close' may follow
        finish(new CommandError(command, args, 'spawn', null, '', error.message, { cause: error }));
      });

      child.on('close', (code, signal) => void sinkDone.then((sinkError) => settle(code, signal, sinkError)));

      const settle = (code: number | null, signal: NodeJS.Signals | null, sinkError: Error | null) => {
        const err = stderr.toString();
        if (failure) {
          finish(new CommandError(command, args, failure.kind, code, err, failure.detail, { cause: failure.cause }));
        } else if (sinkError) {
          const detail = `consuming stdout: ${sinkError.message}`;
          finish(new CommandError(command, args, 'output', code, err, detail, { cause: sinkError }));
        } else if (code === 0) {
          finish(null);
        } else if (code === null) {
          finish(new CommandError(command, args, 'signal', null, err, `killed by ${signal}`));
        } else {
          finish(new CommandError(command, args, 'exit', code, err));
        }
      };

      if (stdinSource !== undefined && child.stdin) {
        const stdin = child.stdin;
        stdin.on('error', (error: NodeJS.ErrnoException) => {
          // EPIPE: the command exited without reading everything; its exit status says why
          if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') {
            kill('stdin', `writing stdin: ${error.message}`, error);
          }
        });
        if (stdinSource instanceof Readable) {
          stdinSource.on('error', (error: Error) => {
            // the producer failed (dropped download, unreadable file): the command must not see a clean EOF
            kill('stdin', `stdin source failed: ${error.message}`, error);
          });
          stdinSource.pipe(stdin);
        } else {
          stdin.end(stdinSource);
        }
      }
    });
  }
}

const BROKEN_PIPE = /Broken pipe|Connection reset by peer|EPIPE|ECONNRESET/i;

/** A filter that died writing to a reader that was gone (SIGPIPE, or EPIPE/ECONNRESET in its stderr). */
function brokenPipe(error: unknown): boolean {
  if (!(error instanceof CommandError)) return false;
  return (error.failure === 'signal' && error.message.includes('SIGPIPE')) || BROKEN_PIPE.test(error.stderrTail);
}

function filterFailed(error: CommandError): string {
  return `its input filter failed: ${error.message}`;
}

/**
 * The filter of `filter < fd | command`: its stdout is an OS pipe that becomes the command's stdin.
 * `done` settles when it exits (a CommandError unless it exited 0).
 */
class FilterProcess {
  readonly stdout: Readable;
  readonly done: Promise<void>;
  private readonly child: ChildProcess;
  private failureListener: ((kind: CommandFailure, detail: string, cause: unknown) => void) | null = null;

  constructor(filter: StdinFilter, fd: number | 'ignore') {
    this.child = spawn(filter.command, [...filter.args], { stdio: [fd, 'pipe', 'pipe'] });
    this.stdout = this.child.stdout!;
    const stderr = new BoundedText();
    this.child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    this.done = new Promise<void>((resolve, reject) => {
      const fail = (error: CommandError) => {
        this.failureListener?.('stdin', filterFailed(error), error);
        reject(error);
      };
      this.child.on('error', (error) =>
        fail(new CommandError(filter.command, filter.args, 'spawn', null, '', error.message, { cause: error })),
      );
      this.child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else if (code === null)
          fail(new CommandError(filter.command, filter.args, 'signal', null, stderr.toString(), `killed by ${signal}`));
        else fail(new CommandError(filter.command, filter.args, 'exit', code, stderr.toString()));
      });
    });
    this.done.catch(() => undefined); // awaited by the runner; never an unhandled rejection
  }

  /** Node keeps a copy of the pipe's read end; closed, so the filter gets SIGPIPE if the command dies. */
  closeParentEnd(): void {
    this.stdout.destroy();
  }

  /** Registered synchronously right after spawning, before the filter can have emitted anything. */
  onFailure(kill: (kind: CommandFailure, detail: string, cause: unknown) => void): void {
    this.failureListener = kill;
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
