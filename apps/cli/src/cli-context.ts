import type { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { ApiClient } from './api-client';
import { CliError } from './cli-error';
import { ConfigEnvironment, ConfigStore } from './config-store';

/** A stream the CLI writes to; process.stdout/stderr or, in tests, a PassThrough. */
export type OutputStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** Everything the CLI touches outside itself, injected so tests run it in-process. */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  env: ConfigEnvironment & Record<string, string | undefined>;
  /** resolves after `ms`, or early when the signal aborts (Ctrl-C in --watch) */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** aborted when the user interrupts a long-running command */
  interrupt?: AbortSignal;
}

/** Shared state of one CLI invocation: output, config, and the API client once logged in. */
export class CliContext {
  readonly config: ConfigStore;
  /** one X-Request-Id for every request of this invocation */
  readonly requestId = `cli-${randomUUID()}`;
  private clientPromise: Promise<ApiClient> | null = null;

  constructor(readonly io: CliIo) {
    this.config = new ConfigStore(io.env);
  }

  /** --json given anywhere on the command line (it is a global option) */
  json(command: Command): boolean {
    return Boolean((command.optsWithGlobals() as { json?: boolean }).json);
  }

  out(text: string): void {
    this.io.stdout.write(`${text}\n`);
  }

  err(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  printJson(value: unknown): void {
    this.out(JSON.stringify(value, null, 2));
  }

  /** The API client with the stored (or env) server and token; exit 3 when not logged in. */
  client(): Promise<ApiClient> {
    this.clientPromise ??= this.config.resolve().then((config) => {
      if (!config) throw CliError.notLoggedIn();
      return new ApiClient(config.server, config.token, this.requestId);
    });
    return this.clientPromise;
  }

  sleep(ms: number): Promise<void> {
    if (this.io.sleep) return this.io.sleep(ms, this.io.interrupt);
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.io.interrupt;
      function done() {
        signal?.removeEventListener('abort', done);
        clearTimeout(timer);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  get interrupted(): boolean {
    return this.io.interrupt?.aborted ?? false;
  }
}
