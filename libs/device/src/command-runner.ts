import { spawn } from 'node:child_process';
import { FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';

export interface RunOptions {
  /**
   * fed to the command's stdin: a Readable is piped (backpressure kept) and consumed by the call;
   * `{ file }` opens the file and hands its descriptor to the command, so no byte passes through Node.
   */
  stdin?: Readable | string | Buffer | { file: string };
  /** kill the command (SIGTERM, then SIGKILL after killGraceMs) when it runs longer */
  timeoutMs?: number;
  /** abort = kill the command, like a timeout */
  signal?: AbortSignal;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout kept in memory; a command printing more is killed and fails (default 16 MiB) */
  maxStdoutBytes?: number;
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
      detail ??
      (failure === 'exit' ? `exit code ${exitCode}` : failure === 'timeout' ? 'timed out' : failure);
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
    if (stdin !== undefined && !(stdin instanceof Readable) && typeof stdin === 'object' && 'file' in stdin) {
      let file: FileHandle;
      try {
        file = await open(stdin.file, 'r');
      } catch (error) {
        throw new CommandError(command, args, 'stdin', null, '', `opening stdin ${stdin.file}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      try {
        return await this.spawnAndWait(command, args, options, file.fd);
      } finally {
        await file.close();
      }
    }
    return this.spawnAndWait(command, args, options, undefined);
  }

  private spawnAndWait(
    command: string,
    args: readonly string[],
    options: RunOptions,
    stdinFd: number | undefined,
  ): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      const stdinSource = stdinFd === undefined ? (options.stdin as Readable | string | Buffer | undefined) : undefined;
      const child = spawn(command, [...args], {
        cwd: options.cwd,
        env: options.env,
        stdio: [stdinFd ?? (stdinSource === undefined ? 'ignore' : 'pipe'), 'pipe', 'pipe'],
      });
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

      child.on('close', (code, signal) => {
        const err = stderr.toString();
        if (failure) {
          finish(new CommandError(command, args, failure.kind, code, err, failure.detail, { cause: failure.cause }));
        } else if (code === 0) {
          finish(null);
        } else if (code === null) {
          finish(new CommandError(command, args, 'signal', null, err, `killed by ${signal}`));
        } else {
          finish(new CommandError(command, args, 'exit', code, err));
        }
      });

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
