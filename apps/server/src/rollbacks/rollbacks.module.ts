import { Module } from '@nestjs/common';
import { RolloutsModule } from '../rollouts/rollouts.module';
import { RollbacksController } from './rollbacks.controller';
import { RollbackStore } from './rollback-store';
import { RollbacksService } from './rollbacks.service';

/**
 * Remote rollbacks (docs/rollouts.md "Remote rollback"). They send their switch commands through the rollouts feature's command
 * port, and their devices' outcomes are followed from job events by the rollouts' JobEventFollower, which
 * reads and moves them through RollbacksService (attached to the rollouts' RollbackOutcomeLink).
 */
@Module({
  imports: [RolloutsModule],
  controllers: [RollbacksController],
  providers: [RollbackStore, RollbacksService],
  exports: [RollbacksService],
})
export class RollbacksModule {}
