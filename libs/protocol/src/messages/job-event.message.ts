import { Type } from 'class-transformer';
import {
  IsEnum,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { ErrorCode } from '../error-codes';
import { SNAPSHOT_ID_PATTERN } from '../identifiers';
import { VersionedMessage } from './common';
import { RollbackCause } from './trial-outcome';

/**
 * What happened to a command on the device (docs/protocol.md §5.2). Only `confirmed` means that a
 * switch succeeded: the device booted the new snapshot and its health checks passed.
 */
export enum JobEventType {
  /** command received and recorded; sent again (with duplicate=true) for a redelivered command */
  Accepted = 'accepted',
  Progress = 'progress',
  /** the new snapshot is on disk and a trial is requested in the env */
  Staged = 'staged',
  Rebooting = 'rebooting',
  /** the trial boot passed every required health check and was confirmed in the env */
  Confirmed = 'confirmed',
  /** a required health check failed in the trial boot; the device reboots into the fallback */
  Rejected = 'rejected',
  /** reported after the fallback boot: the trial was undone, by the bootloader or by a health check */
  RolledBack = 'rolled-back',
  /** the command failed before any switch; the device is unchanged */
  Failed = 'failed',
  Canceled = 'canceled',
  /** a command that needs no trial (delete, reboot, cancel) finished */
  Completed = 'completed',
}

export enum JobPhase {
  Download = 'download',
  Verify = 'verify',
  Receive = 'receive',
}

export class JobProgress {
  @IsEnum(JobPhase)
  phase!: JobPhase;

  @IsInt()
  @Min(0)
  bytesDone!: number;

  @IsOptional()
  @IsInt()
  @Min(0)
  bytesTotal?: number;
}

export class JobError {
  @IsEnum(ErrorCode)
  code!: ErrorCode;

  @IsString()
  @MaxLength(2048)
  message!: string;
}

export class RollbackDetail {
  /** the snapshot that was tried and undone */
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot!: string;

  /** the snapshot the device runs again */
  @Matches(SNAPSHOT_ID_PATTERN)
  restoredSnapshot!: string;

  @IsEnum(RollbackCause)
  by!: RollbackCause;

  @IsOptional()
  @IsString()
  @MaxLength(128)
  check?: string;

  @IsOptional()
  @IsString()
  @MaxLength(4096)
  outputTail?: string;
}

export class JobEventMessage extends VersionedMessage {
  @IsUUID()
  commandId!: string;

  /** unique per event, so the server can drop a redelivered QoS 1 publish */
  @IsUUID()
  eventId!: string;

  @IsEnum(JobEventType)
  type!: JobEventType;

  @IsISO8601()
  at!: string;

  @IsOptional()
  @ValidateNested()
  @Type(() => JobProgress)
  progress?: JobProgress;

  /** the snapshot the command produced or acted on */
  @IsOptional()
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot?: string;

  @IsOptional()
  @ValidateNested()
  @Type(() => JobError)
  error?: JobError;

  @IsOptional()
  @ValidateNested()
  @Type(() => RollbackDetail)
  rollback?: RollbackDetail;

  /** bytes actually downloaded for this command (after resumes), on staged/failed */
  @IsOptional()
  @IsInt()
  @Min(0)
  bytesDownloaded?: number;

  @IsOptional()
  duplicate?: boolean;
}
