import { AgentConfig } from '../config/agent-config';
import { DeviceCore } from '../device-core';
import { JobEvents } from '../events/job-events';
import { InstallJob } from '../install/install-job';
import { CommandJournal } from '../journal/command-journal';
import { AgentLogger } from '../logger';
import { Rebooter } from '../reboot/rebooter';
import { DowngradeGuard } from '../security/downgrade-guard';
import { JobSlot } from './job-slot';

/** What a command handler (commands/*.ts) may use: the agent's parts, not the agent. */
export interface CommandContext {
  readonly config: AgentConfig;
  readonly core: DeviceCore;
  readonly journal: CommandJournal;
  readonly events: JobEvents;
  readonly reboots: Rebooter;
  readonly logger: AgentLogger;
  readonly installJob: InstallJob;
  readonly jobs: JobSlot;
  /** downgrade protection: the floor, and what each snapshot's signed manifest said */
  readonly security: DowngradeGuard;
  /** publishes the full state (docs/protocol.md §5.1); never throws */
  publishState(): Promise<void>;
}
