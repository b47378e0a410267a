import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { CommandFilter } from '../devices/device-feed';
import type { SqlFragment } from '../devices/device-selection';
import type { ExecutionState } from './execution-state';

/** A remote rollback's device whose command an event batch is about, locked. */
export interface RollbackTarget {
  rollbackId: string;
  deviceId: string;
  commandId: string;
  state: ExecutionState;
}

/**
 * What the job event follower needs from the rollbacks feature, whose switch commands it follows like
 * the engine's own. RollbacksModule imports RolloutsModule (for the command port), so the rollouts side
 * cannot inject RollbacksService; the rollbacks feature attaches its service to RollbackOutcomeLink
 * instead, and the follower reads rollbacks only through this interface, never their tables.
 */
export interface RollbackOutcomePort {
  /** SQL condition: the command id in the given column is a remote rollback's. */
  readonly rollbackCommands: CommandFilter;
  /**
   * The rollback commands in flight that have not moved for `staleSeconds`, as a subquery; its
   * parameters are placed from `$firstParam`.
   */
  staleRollbackCommands(staleSeconds: number, firstParam: number): SqlFragment;
  lockRollbackDevicesOf(manager: EntityManager, commandIds: string[]): Promise<RollbackTarget[]>;
  /** A rollback device's new state; `detail` (the outcome's reason) replaces the old one when given. */
  setRollbackDeviceState(
    manager: EntityManager,
    target: { rollbackId: string; deviceId: string },
    state: ExecutionState,
    detail: string | null,
  ): Promise<void>;
}

/**
 * Where the rollbacks feature plugs its RollbackOutcomePort in (at module init, before the engine's
 * first tick at application bootstrap). Without it (a server built without RollbacksModule) the
 * follower follows rollout commands only.
 */
@Injectable()
export class RollbackOutcomeLink {
  private port: RollbackOutcomePort | null = null;

  attach(port: RollbackOutcomePort): void {
    if (this.port && this.port !== port) throw new Error('a rollback outcome port is attached already');
    this.port = port;
  }

  get attached(): RollbackOutcomePort | null {
    return this.port;
  }
}
