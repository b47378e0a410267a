import { JobEventType, RebootMode, RebootPolicy } from '@cowroot/protocol';
import { CommandRunner, SwitchState } from '@cowroot/device';
import { errorOf } from '../events/error-of';
import { JobEvents } from '../events/job-events';
import { CommandJournal } from '../journal/command-journal';
import { AgentLogger } from '../logger';
import { msUntilWindow } from '../maintenance-window';

export interface RebooterDeps {
  rebootCommand: readonly string[];
  maintenanceTimezone: string;
  journal: CommandJournal;
  events: JobEvents;
  logger: AgentLogger;
  runner: CommandRunner;
  /** the env's switch state now: a window reboot only happens while a trial is still requested */
  switchState: () => Promise<SwitchState>;
}

/** How long `rebooting` may take to reach the broker before the reboot goes ahead without its PUBACK. */
const REBOOTING_DELIVERY_WAIT_MS = 5000;
const REBOOT_COMMAND_TIMEOUT_MS = 60_000;

/**
 * Every reboot the agent makes (docs/agent.md §4.2): now, in a maintenance window (kept in the journal and
 * re-armed after a restart), or into the fallback after a rejected trial. The reboot command runs through
 * the device core's CommandRunner (argument array, stderr captured into the error).
 */
export class Rebooter {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly deps: RebooterDeps) {}

  /** Applies a command's reboot policy after its trial was requested. */
  async afterStaging(commandId: string, policy: RebootPolicy): Promise<void> {
    if (policy.mode === RebootMode.Now) {
      await this.rebootNow(commandId);
    } else if (policy.mode === RebootMode.Window && policy.window) {
      await this.deps.journal.setScheduledReboot({
        commandId,
        window: { start: policy.window.start, end: policy.window.end },
      });
      this.restoreScheduled();
    }
  }

  /** `rebooting`, a short wait for it to reach the broker, then the configured reboot command. */
  async rebootNow(commandId: string): Promise<void> {
    const { delivered } = await this.deps.events.emit(commandId, JobEventType.Rebooting);
    await Promise.race([
      delivered.catch(() => undefined),
      new Promise((resolve) => setTimeout(resolve, REBOOTING_DELIVERY_WAIT_MS).unref()),
    ]);
    await this.deps.journal.flush();
    await this.run({ commandId });
  }

  /** A rejected trial boot that no command of ours requested: back to the fallback, no event to send. */
  async rebootIntoFallback(): Promise<void> {
    await this.deps.journal.flush();
    await this.run({ reason: 'rebooting into the fallback' });
  }

  /** Arms the timer of the journal's window reboot (after a restart, or when a window reboot was set). */
  restoreScheduled(): void {
    const scheduled = this.deps.journal.scheduledReboot;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!scheduled || this.stopped) return;
    const delay = msUntilWindow(new Date(), scheduled.window, this.deps.maintenanceTimezone);
    this.deps.logger.info('reboot scheduled in the maintenance window', {
      commandId: scheduled.commandId,
      window: `${scheduled.window.start}-${scheduled.window.end}`,
      inMs: delay,
    });
    // timers cap at ~24.8 days; a window is at most a day away
    this.timer = setTimeout(() => {
      this.timer = null;
      this.rebootInWindow(scheduled.commandId).catch((error) =>
        this.deps.logger.error('the window reboot failed', {
          commandId: scheduled.commandId,
          error: errorOf(error).message,
        }),
      );
    }, delay);
  }

  /** Drops the window reboot of `commandId` (its trial was withdrawn). */
  async dropScheduled(commandId: string): Promise<void> {
    if (this.deps.journal.scheduledReboot?.commandId !== commandId) return;
    await this.deps.journal.setScheduledReboot(null);
    this.restoreScheduled();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async rebootInWindow(commandId: string): Promise<void> {
    await this.deps.journal.setScheduledReboot(null);
    if ((await this.deps.switchState()) !== SwitchState.Requested) {
      this.deps.logger.info('maintenance window reached but no trial is requested any more; not rebooting', {
        commandId,
      });
      return;
    }
    await this.rebootNow(commandId);
  }

  /** Runs the reboot command; a failure is logged (the agent keeps running and reports on). */
  private async run(context: { commandId?: string; reason?: string }): Promise<void> {
    const [command, ...args] = this.deps.rebootCommand;
    this.deps.logger.info(context.reason ?? 'rebooting', {
      commandId: context.commandId,
      command: this.deps.rebootCommand.join(' '),
    });
    try {
      await this.deps.runner.run(command, args, { timeoutMs: REBOOT_COMMAND_TIMEOUT_MS });
    } catch (error) {
      this.deps.logger.error('the reboot command failed', {
        commandId: context.commandId,
        error: errorOf(error).message,
      });
    }
  }
}
