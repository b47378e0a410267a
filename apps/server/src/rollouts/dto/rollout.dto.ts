import { ApiProperty } from '@nestjs/swagger';
import { RebootMode } from '@cowroot/protocol';
import { AbortAction } from '../abort-rules';
import { ExecutionState, FailureKind } from '../execution-state';
import { RolloutStatus, WaveStatus } from '../rollout-rows';
import { StateCounts } from '../wave-criterion';
import { ReleaseRefDto, SelectorDto } from './create-rollout.dto';

const COUNTS = {
  type: 'object',
  additionalProperties: { type: 'integer' },
  description: 'devices per execution state; states with no device are left out',
  example: { queued: 90, downloading: 4, confirmed: 6 },
} as const;
const TIME = { type: String, format: 'date-time' } as const;
const OPTIONAL_TIME = { ...TIME, nullable: true } as const;

export class WaveSizeDto {
  @ApiProperty({ enum: ['count', 'percent'] }) kind!: 'count' | 'percent';
  @ApiProperty({ description: 'cumulative devices (count) or percent of the targeted devices' }) value!: number;
}

/** An abort rule as stored: minExecuted is always filled in. */
export class RolloutAbortRuleDto {
  @ApiProperty({ enum: FailureKind }) kind!: FailureKind;
  @ApiProperty() thresholdPercent!: number;
  @ApiProperty() minExecuted!: number;
  @ApiProperty({ enum: AbortAction }) action!: AbortAction;
}

export class RolloutWaveDto {
  @ApiProperty({ description: '0-based' }) index!: number;
  @ApiProperty({ type: WaveSizeDto }) size!: WaveSizeDto;
  @ApiProperty() successPercent!: number;
  @ApiProperty() timeoutSeconds!: number;
  @ApiProperty() soakSeconds!: number;
  @ApiProperty() requiresApproval!: boolean;
  @ApiProperty({ enum: WaveStatus, enumName: 'WaveStatus' }) status!: WaveStatus;
  @ApiProperty({ type: String, nullable: true }) approvedBy!: string | null;
  @ApiProperty(OPTIONAL_TIME) approvedAt!: string | null;
  @ApiProperty(OPTIONAL_TIME) startedAt!: string | null;
  @ApiProperty(OPTIONAL_TIME) soakUntil!: string | null;
  @ApiProperty(OPTIONAL_TIME) finishedAt!: string | null;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: 'how the success criterion was decided (confirmed, considered, requiredConfirmed, acceptedBy)',
  })
  verdict!: Record<string, unknown> | null;
  @ApiProperty() total!: number;
  @ApiProperty(COUNTS) counts!: StateCounts;
}

export class RolloutDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ type: ReleaseRefDto }) release!: ReleaseRefDto;
  @ApiProperty({ type: SelectorDto }) selector!: SelectorDto;
  @ApiProperty({ enum: RolloutStatus, enumName: 'RolloutStatus' }) status!: RolloutStatus;
  @ApiProperty({ type: String, nullable: true, description: 'why it is paused, aborted, canceled…' })
  statusReason!: string | null;
  @ApiProperty({ description: '0-based index of the wave in progress' }) currentWave!: number;
  @ApiProperty() continuous!: boolean;
  @ApiProperty() randomize!: boolean;
  @ApiProperty({ type: Number, nullable: true }) dispatchPerMinute!: number | null;
  @ApiProperty({ enum: RebootMode }) rebootMode!: RebootMode;
  @ApiProperty({ type: [RolloutAbortRuleDto] }) abortRules!: RolloutAbortRuleDto[];
  @ApiProperty({ description: 'name of the actor that created it' }) createdBy!: string;
  @ApiProperty(TIME) createdAt!: string;
  @ApiProperty(TIME) updatedAt!: string;
  @ApiProperty(OPTIONAL_TIME) finishedAt!: string | null;
  @ApiProperty() total!: number;
  @ApiProperty(COUNTS) counts!: StateCounts;
  @ApiProperty({ type: [RolloutWaveDto] }) waves!: RolloutWaveDto[];
}

export class RolloutPageDto {
  @ApiProperty({ type: [RolloutDto] }) items!: RolloutDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class ExecutionArtifactDto {
  @ApiProperty({ type: String, nullable: true }) id!: string | null;
  @ApiProperty({ type: String, nullable: true }) file!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'full or incremental' }) kind!: string | null;
  @ApiProperty() bytes!: number;
}

export class ExecutionRevertDto {
  @ApiProperty({ type: String, nullable: true }) commandId!: string | null;
  @ApiProperty({ enum: ExecutionState, enumName: 'ExecutionState', nullable: true }) state!: ExecutionState | null;
}

export class ExecutionDto {
  @ApiProperty() id!: string;
  @ApiProperty() rolloutId!: string;
  @ApiProperty() deviceId!: string;
  @ApiProperty({ description: '0-based wave index' }) wave!: number;
  @ApiProperty({ enum: ExecutionState, enumName: 'ExecutionState' }) state!: ExecutionState;
  @ApiProperty() attempt!: number;
  @ApiProperty({ type: String, nullable: true }) commandId!: string | null;
  @ApiProperty({ type: String, nullable: true }) commandType!: string | null;
  @ApiProperty({ type: ExecutionArtifactDto, nullable: true, description: 'set once a command was sent' })
  artifact!: ExecutionArtifactDto | null;
  @ApiProperty({ type: String, nullable: true }) fromSnapshot!: string | null;
  @ApiProperty({ type: String, nullable: true }) targetSnapshot!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'with the check output when a check failed' })
  failureReason!: string | null;
  @ApiProperty(OPTIONAL_TIME) dispatchedAt!: string | null;
  @ApiProperty(OPTIONAL_TIME) deadlineAt!: string | null;
  @ApiProperty(OPTIONAL_TIME) finishedAt!: string | null;
  @ApiProperty({ type: ExecutionRevertDto, nullable: true, description: 'set when a revert rule switched it back' })
  revert!: ExecutionRevertDto | null;
}

export class ExecutionPageDto {
  @ApiProperty({ type: [ExecutionDto] }) items!: ExecutionDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class ExecutionHistoryDto {
  @ApiProperty(TIME) at!: string;
  @ApiProperty() attempt!: number;
  @ApiProperty({ enum: ExecutionState, enumName: 'ExecutionState', nullable: true }) from!: ExecutionState | null;
  @ApiProperty({ enum: ExecutionState, enumName: 'ExecutionState' }) to!: ExecutionState;
  @ApiProperty({ type: String, nullable: true }) eventId!: string | null;
  @ApiProperty({ type: String, nullable: true }) commandId!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true }) detail!: unknown;
}

export class ExecutionDetailDto extends ExecutionDto {
  @ApiProperty({ type: [ExecutionHistoryDto] }) history!: ExecutionHistoryDto[];
}

export class TimelineActorDto {
  @ApiProperty({ description: 'operator, device or system' }) type!: string;
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
}

export class TimelineEntryDto {
  @ApiProperty({ description: 'audit entry id' }) id!: string;
  @ApiProperty(TIME) at!: string;
  @ApiProperty({ type: TimelineActorDto }) actor!: TimelineActorDto;
  @ApiProperty({ example: 'rollout.paused' }) action!: string;
  @ApiProperty({ description: 'rollout or device' }) subjectType!: string;
  @ApiProperty() subjectId!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true }) before!: unknown;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true }) after!: unknown;
  @ApiProperty({ type: String, nullable: true }) reason!: string | null;
}
