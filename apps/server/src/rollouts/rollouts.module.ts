import { Module } from '@nestjs/common';
import { ReleasesModule } from '../releases/releases.module';
import { DispatcherCommandPort } from './dispatcher-command-port';
import { EngineLeadership } from './engine-leadership.service';
import { ExecutionsRepository } from './executions.repository';
import { InFlightCanceller } from './in-flight-cancel.service';
import { JobEventFollower } from './job-event-follower.service';
import { JobEventTargetsRepository } from './job-event-targets.repository';
import { RevertSender } from './revert-sender.service';
import { RollbackOutcomeLink } from './rollback-outcome-port';
import { RolloutActions } from './rollout-actions.service';
import { ROLLOUT_COMMAND_PORT } from './rollout-command-port';
import { RolloutEngine } from './rollout-engine.service';
import { RolloutPlanner } from './rollout-planner.service';
import { RolloutsController } from './rollouts.controller';
import { RolloutsRepository } from './rollouts.repository';
import { RolloutsService } from './rollouts.service';
import { WaveDispatcher } from './wave-dispatcher.service';
import { SelectorPreviewService } from './selector-preview.service';
import { WaveProgression } from './wave-progression.service';
import { WaveQueueRepository } from './wave-queue.repository';

/**
 * Rollouts (waves, criteria, abort rules, revert, continuous mode, delta planning). Commands go out through
 * the devices feature's CommandDispatcher (DevicesModule is global); events come back through the devices'
 * job event feed (DeviceFeed, read by JobEventFollower). Every SQL statement of the feature is in its
 * repositories (*.repository.ts); the devices' tables are read through DeviceFeed only. The command port is exported for RollbacksModule, and
 * RollbackOutcomeLink for it to plug in the rollbacks whose outcomes the follower applies.
 */
@Module({
  imports: [ReleasesModule],
  controllers: [RolloutsController],
  providers: [
    { provide: ROLLOUT_COMMAND_PORT, useClass: DispatcherCommandPort },
    RolloutsRepository,
    ExecutionsRepository,
    WaveQueueRepository,
    JobEventTargetsRepository,
    RollbackOutcomeLink,
    EngineLeadership,
    JobEventFollower,
    RolloutPlanner,
    WaveDispatcher,
    WaveProgression,
    RevertSender,
    RolloutEngine,
    InFlightCanceller,
    RolloutsService,
    RolloutActions,
    SelectorPreviewService,
  ],
  exports: [RolloutsService, RolloutEngine, ROLLOUT_COMMAND_PORT, RollbackOutcomeLink],
})
export class RolloutsModule {}
