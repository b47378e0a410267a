// One server replica as a real child process (the built server, dist/apps/server/src/main.js, as `npm start`
// runs it), so the cluster test can kill -9 it. `npm run test:cluster` builds the server first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const SERVER_MAIN = resolve(__dirname, '../../../../../../dist/apps/server/src/main.js');

export class ReplicaProcess {
  private child: ChildProcess | null = null;
  private log = '';

  constructor(
    readonly name: string,
    readonly httpPort: number,
    private readonly env: Record<string, string>,
    /** the built server; bench:cluster passes its own, as its compiled copy of this file sits elsewhere */
    private readonly main = SERVER_MAIN,
  ) {}

  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get output(): string {
    return this.log;
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves once /readyz answers 200 (database and broker up). */
  async start(timeoutMs = 60_000): Promise<void> {
    if (!existsSync(this.main)) throw new Error(`${this.main} missing: run npm run build:server first`);
    // PGAPPNAME names the replica's PostgreSQL sessions, so the test can tell which one holds the engine lock
    const child = spawn(process.execPath, [this.main], {
      env: { ...process.env, ...this.env, PGAPPNAME: this.name, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`replica ${this.name} exited:\n${this.log}`);
      const ready = await fetch(`${this.httpUrl}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`replica ${this.name} not ready after ${timeoutMs} ms:\n${this.log}`);
  }

  /** SIGKILL = a crash; SIGTERM = the graceful shutdown. Resolves when the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    await new Promise<void>((done) => {
      child.once('exit', () => done());
      child.kill(signal);
    });
  }
}
