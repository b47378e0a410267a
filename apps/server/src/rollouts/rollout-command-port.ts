import type { EntityManager } from 'typeorm';
import type { Actor } from '../auth/actor';
import type { CommandRequest } from '../devices/command-dispatcher.service';

/** A stored command as the rollout engine needs it back. */
export interface StoredCommand {
  id: string;
  deviceId: string;
}

/**
 * What the rollout engine needs from the devices feature's CommandDispatcher: store commands in the
 * engine's transaction (a fixed number of statements per wave), publish them after commit. An interface so the engine's tests and a future batch
 * path can provide it without the rest of the dispatcher.
 */
export interface RolloutCommandPort {
  /** All or nothing: every device must exist and be active (callers filter first). */
  recordMany(
    manager: EntityManager,
    items: Array<{ deviceId: string; request: CommandRequest }>,
    actor: Actor,
  ): Promise<StoredCommand[]>;
  /** `commands` are what recordMany() returned */
  publishMany(commands: StoredCommand[]): Promise<unknown>;
  /** Publishes again every command the device has not acknowledged (the agent runs a command id once). */
  resendUndelivered(deviceId: string): Promise<number>;
}

export const ROLLOUT_COMMAND_PORT = Symbol('ROLLOUT_COMMAND_PORT');
