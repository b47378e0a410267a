import { ChildProcess, spawn } from 'node:child_process';
import { PassThrough, Readable, Writable } from 'node:stream';
import { CommandError } from '../command-runner';

const STDERR_TAIL = 4096;

/** A command whose stdout (and stdin, unless a descriptor is given) is streamed rather than collected. */
export interface StreamingProcess {
  stdout: Readable;
  /** null when stdin was a descriptor */
  stdin: Writable | null;
  /** resolves on exit 0; rejects with a CommandError (exit code, signal, stderr tail) */
  done: Promise<void>;
  /** SIGKILL if still running */
  kill(): void;
}

/**
 * The streaming door to a child process for the delta path (`zstd -d` of the artifact, one `zstd -d
 * --patch-from` per patched file): argument arrays, never a shell; stderr kept as a tail for the error.
 * CommandRunner.run collects stdout, which a multi-GiB stream must not be.
 */
export class StreamingCommand {
  /**
   * `stdinFd`: the child reads this descriptor as its stdin; `extraFds`: passed on as descriptors 3, 4, …
   * (a batch's dictionary, which zstd opens as /dev/fd/3).
   */
  start(
    command: string,
    args: readonly string[],
    options: { stdinFd?: number; extraFds?: readonly number[] } = {},
  ): StreamingProcess {
    const child: ChildProcess = spawn(command, [...args], {
      stdio: [options.stdinFd ?? 'pipe', 'pipe', 'pipe', ...(options.extraFds ?? [])],
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL);
    });
    // a consumer that stops early makes our writes fail with EPIPE; the exit status tells why
    child.stdin?.on('error', () => undefined);
    const done = new Promise<void>((resolve, reject) => {
      child.once('error', (error) => reject(new CommandError(command, args, 'spawn', null, '', error.message)));
      child.once('close', (code, signal) => {
        if (code === 0) resolve();
        else if (code === null) reject(new CommandError(command, args, 'signal', null, stderr, `killed by ${signal}`));
        else reject(new CommandError(command, args, 'exit', code, stderr));
      });
    });
    done.catch(() => undefined); // always awaited by the caller; never an unhandled rejection
    // Read from the start: Node resumes (and so discards) the unread stdout of a child that exited
    // (child_process flushStdio), which a fast `zstd -d` does before its reader is pulled. Piped into a
    // PassThrough, the output waits, with backpressure, until it is read.
    const stdout = child.stdout!.pipe(new PassThrough({ highWaterMark: 64 * 1024 }));
    return {
      stdout,
      stdin: child.stdin ?? null,
      done,
      kill: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        // output nobody will read: without this, a child that exited with its pipe full never emits
        // 'close' (the paused pipe never reaches EOF), `done` never settles, and a failed rebuild hangs
        // (our side then ends with what it already holds, so a reader waiting on it sees EOF)
        child.stdout!.unpipe();
        child.stdout!.destroy();
        stdout.end();
      },
    };
  }
}
