import { Inject, Injectable, Logger } from '@nestjs/common';
import { CommandType } from '@cowroot/protocol';
import { EntityManager } from 'typeorm';
import { Actor } from '../auth/actor';
import { DeviceFeed } from '../devices/device-feed';
import { ExecutionState } from './execution-state';
import { ExecutionsRepository } from './executions.repository';
import { ROLLOUT_COMMAND_PORT, RolloutCommandPort, StoredCommand } from './rollout-command-port';

/** What cancel() did, for the rollout's audit entry and the caller's publish after commit. */
export interface InFlightCancellation {
  /** executions that were in flight and are canceled now */
  canceled: number;
  /** the `cancel` commands stored for them, to publish once the transaction has committed */
  commands: StoredCommand[];
}

/**
 * A canceled rollout withdraws what it already sent (issue 9): every device in flight gets a `cancel`
 * naming the rollout's command (docs/protocol.md §6: abort a running download, or withdraw a requested
 * trial not yet booted), and its execution is `canceled` at once, so the device's next rollout is not
 * held back until the old wave timeout (one rollout command per device at a time, WaveDispatcher).
 * A device that already booted the trial, or reports its real outcome later, still gets that outcome
 * recorded: `canceled` ranks below every device outcome (execution-state.ts).
 */
@Injectable()
export class InFlightCanceller {
  private readonly logger = new Logger(InFlightCanceller.name);

  constructor(
    @Inject(ROLLOUT_COMMAND_PORT) private readonly commands: RolloutCommandPort,
    private readonly executions: ExecutionsRepository,
    private readonly devices: DeviceFeed,
  ) {}

  /** Inside the caller's transaction, which holds the rollout row locked. */
  async cancel(manager: EntityManager, rolloutId: string, reason: string, actor: Actor): Promise<InFlightCancellation> {
    const rows = await this.executions.cancelInFlight(manager, rolloutId, reason);
    if (rows.length === 0) return { canceled: 0, commands: [] };
    await this.executions.recordHistory(
      manager,
      rows.map((r) => ({
        executionId: r.id,
        attempt: r.attempt,
        from: r.from_state,
        to: ExecutionState.Canceled,
        commandId: r.command_id,
        detail: { reason },
      })),
    );
    // a decommissioned device gets no command (the dispatcher refuses one); its execution is canceled all the
    // same. FOR SHARE as in recordMany(): a decommission that did not commit yet waits for these commands.
    const active = await this.devices.lockActive(
      manager,
      rows.map((r) => r.device_id),
    );
    const targets = rows.filter((r) => r.command_id !== null && active.has(r.device_id));
    const commands = await this.commands.recordMany(
      manager,
      targets.map((r) => ({
        deviceId: r.device_id,
        request: { type: CommandType.Cancel, targetCommandId: r.command_id! },
      })),
      actor,
    );
    return { canceled: rows.length, commands };
  }

  /** QoS 1 publishes after commit; a device that misses one gets it again when it subscribes. */
  async publish(cancellation: InFlightCancellation): Promise<void> {
    if (cancellation.commands.length === 0) return;
    await this.commands
      .publishMany(cancellation.commands)
      .catch((error: Error) =>
        this.logger.warn(
          `publishing ${cancellation.commands.length} cancel command(s) failed, re-sent on resubscribe: ${error.message}`,
        ),
      );
  }
}
