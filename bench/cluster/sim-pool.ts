import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import type { DeviceSpec, WorkerReply, WorkerRequest } from './sim-protocol';

type Request = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/**
 * The simulated fleet of bench:cluster spread over `workers` child processes (sim-worker.js), device i in
 * process i % workers. Each call goes to every process and resolves with their replies.
 */
export class SimPool {
  private readonly children: ChildProcess[] = [];
  private readonly waiting = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor(readonly workers: number) {
    for (let i = 0; i < workers; i++) {
      // each process gets its own heap: 10,000 mqtt.js clients need more than the default
      const child = fork(join(__dirname, 'sim-worker.js'), [], {
        execArgv: ['--max-old-space-size=4096'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child.on('message', (reply: WorkerReply) => {
        const waiter = this.waiting.get(reply.id);
        this.waiting.delete(reply.id);
        if (reply.error) waiter?.reject(new Error(`simulator ${i}: ${reply.error}`));
        else waiter?.resolve(reply);
      });
      child.on('exit', (code, signal) => {
        for (const waiter of this.waiting.values())
          waiter.reject(new Error(`simulator ${i} exited (${code ?? signal})`));
        this.waiting.clear();
      });
      this.children.push(child);
    }
  }

  private ask(child: ChildProcess, request: Request): Promise<WorkerReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      child.send({ ...request, id });
    });
  }

  all(request: Request): Promise<WorkerReply[]> {
    return Promise.all(this.children.map((child) => this.ask(child, request)));
  }

  /** Hands each device to its process; nothing connects yet. */
  async add(devices: DeviceSpec[], mqttUrls: string[], tokenUrls?: string[]): Promise<void> {
    await Promise.all(
      this.children.map((child, w) =>
        this.ask(child, {
          op: 'add',
          devices: devices.filter((d) => d.index % this.workers === w),
          mqttUrls,
          tokenUrls,
        }),
      ),
    );
  }

  /** Connects the devices added since the last call; seconds until the last process is done. */
  async connect(concurrency = 100): Promise<{ seconds: number; reconnects: number }> {
    const started = Date.now();
    const replies = await this.all({ op: 'connect', concurrency });
    return {
      seconds: (Date.now() - started) / 1000,
      reconnects: replies.reduce((s, r) => s + (r.reconnects ?? 0), 0),
    };
  }

  /** Every connected device publishes `reports` state reports; the sum of last seqs the server must reach. */
  async publish(
    reports: number,
  ): Promise<{ seconds: number; seqSum: number; failed: number; resent: number; reconnects: number }> {
    const started = Date.now();
    const replies = await this.all({ op: 'publish', reports });
    const sum = (key: 'seqSum' | 'failed' | 'resent' | 'reconnects') => replies.reduce((s, r) => s + (r[key] ?? 0), 0);
    return {
      seconds: (Date.now() - started) / 1000,
      seqSum: sum('seqSum'),
      failed: sum('failed'),
      resent: sum('resent'),
      reconnects: sum('reconnects'),
    };
  }

  async accepted(): Promise<number> {
    return (await this.all({ op: 'accepted' })).reduce((s, r) => s + (r.accepted ?? 0), 0);
  }

  /** Ends the devices' sessions (the processes stay for the next mode). */
  async stopDevices(): Promise<void> {
    await this.all({ op: 'stop' });
  }

  async close(): Promise<void> {
    for (const child of this.children) child.disconnect();
    await Promise.all(
      this.children.map((child) =>
        child.exitCode !== null ? undefined : new Promise((resolve) => child.once('exit', resolve)),
      ),
    );
  }
}
