import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, QueryRunner } from 'typeorm';
import { ServerConfig } from '../config/server-config';
import { RolloutsRepository } from './rollouts.repository';

/**
 * Makes exactly one server instance the rollout engine (docs/rollouts.md "Engine"): the leader holds a
 * session-level PostgreSQL advisory lock on a connection of its own, taken out of the pool for as long as it
 * leads. If that connection dies, PostgreSQL drops the lock with the session and another replica's next
 * pg_try_advisory_lock wins; this instance notices on its next check and stops acting.
 */
@Injectable()
export class EngineLeadership {
  private readonly logger = new Logger(EngineLeadership.name);
  private runner: QueryRunner | null = null;
  /** embedded PGlite: this process is the only one that can open the database, so it always leads */
  private readonly embedded: boolean;
  private embeddedLeader = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly store: RolloutsRepository,
    config: ServerConfig,
  ) {
    // PGlite serves one session to every pooled connection: a lock would not exclude anyone, and a
    // connection held out of its small pool would only starve the rest of the server
    this.embedded = config.databaseUrl === null;
  }

  get isLeader(): boolean {
    return this.embedded ? this.embeddedLeader : this.runner !== null;
  }

  /** Tries to become leader, or checks that the lock's session is still alive. @returns whether this instance leads */
  async ensure(): Promise<boolean> {
    if (this.embedded) {
      this.embeddedLeader = true;
      return true;
    }
    if (this.runner) {
      try {
        await this.store.pingEngineLock(this.runner);
        return true;
      } catch (error) {
        this.logger.warn(`lost the rollout engine lock: ${(error as Error).message}`);
        await this.runner.release().catch(() => undefined);
        this.runner = null;
        return false;
      }
    }
    const runner = this.dataSource.createQueryRunner();
    try {
      await runner.connect();
      const locked = await this.store.tryEngineLock(runner);
      if (!locked) {
        await runner.release();
        return false;
      }
      this.runner = runner;
      this.logger.log('this instance is now the rollout engine leader');
      return true;
    } catch (error) {
      await runner.release().catch(() => undefined);
      throw error;
    }
  }

  /** Gives the lock up (shutdown): another replica takes over at its next attempt. */
  async resign(): Promise<void> {
    this.embeddedLeader = false;
    const runner = this.runner;
    this.runner = null;
    if (!runner) return;
    try {
      await this.store.releaseEngineLock(runner);
    } catch {
      // the session is gone, and the lock with it
    } finally {
      await runner.release().catch(() => undefined);
    }
  }
}
