import { Module } from '@nestjs/common';
import { ReleasesModule } from '../releases/releases.module';
import { DispatcherCommandPort } from './dispatcher-command-port';
import { EngineLeadership } from './engine-leadership.service';
import { InFlightCanceller } from './in-flight-cancel.service';
import { JobEventFollower } from './job-event-follower.service';
import { ROLLOUT_COMMAND_PORT } from './rollout-command-port';
import { RolloutEngine } from './rollout-engine.service';
import { RolloutPlanner } from './rollout-planner.service';
import { RolloutsController } from './rollouts.controller';
import { RolloutsService } from './rollouts.service';
import { WaveDispatcher } from './wave-dispatcher.service';
import { SelectorPreviewService } from './selector-preview.service';

/**
 * Rollouts (waves, criteria, abort rules, revert, continuous mode, delta planning). Commands go out through
 * the devices feature's CommandDispatcher (DevicesModule is global); events come back through the job event
 * table (JobEventFollower). The command port is exported for RollbacksModule.
 */
@Module({
  imports: [ReleasesModule],
  controllers: [RolloutsController],
  providers: [
    { provide: ROLLOUT_COMMAND_PORT, useClass: DispatcherCommandPort },
    EngineLeadership,
    JobEventFollower,
    RolloutPlanner,
    WaveDispatcher,
    RolloutEngine,
    InFlightCanceller,
    RolloutsService,
    SelectorPreviewService,
  ],
  exports: [RolloutsService, RolloutEngine, ROLLOUT_COMMAND_PORT],
})
export class RolloutsModule {}
