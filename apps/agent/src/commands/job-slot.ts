import { Command, CommandType, ErrorCode } from '@cowroot/protocol';
import { DeviceError } from '@cowroot/device';

export interface ActiveJob {
  commandId: string;
  type: CommandType;
  abort: AbortController;
  /** settles when the job's body has returned or thrown */
  finished: Promise<void>;
}

/** One long job at a time (docs/agent.md §4): another one meanwhile is refused with BUSY. */
export class JobSlot {
  private active: ActiveJob | null = null;

  get current(): ActiveJob | null {
    return this.active;
  }

  async run(command: Command, body: (signal: AbortSignal) => Promise<void>): Promise<void> {
    if (this.active) {
      throw new DeviceError(ErrorCode.Busy, `busy with ${this.active.type} ${this.active.commandId}`);
    }
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const job: ActiveJob = { commandId: command.commandId, type: command.type, abort: new AbortController(), finished };
    this.active = job;
    try {
      await body(job.abort.signal);
    } finally {
      this.active = null;
      finish();
    }
  }

  /** Aborts the running job, if any, with `reason` (AGENT_STOPPING keeps a download's spool). */
  abort(reason?: unknown): void {
    this.active?.abort.abort(reason);
  }
}
