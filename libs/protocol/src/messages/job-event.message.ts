import { Type } from 'class-transformer';
import { IsBoolean, IsEnum, IsIn, IsObject, IsOptional, IsUUID, Matches, ValidateNested } from 'class-validator';
import { ErrorCode } from '../error-codes';
import { SNAPSHOT_ID_PATTERN } from '../identifiers';
import { VersionedMessage } from './common';
import { MAX_SAFE_UINT, Text, Timestamp, Uint } from './storable';

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

  @Uint(MAX_SAFE_UINT)
  bytesDone!: number;

  @IsOptional()
  @Uint(MAX_SAFE_UINT)
  bytesTotal?: number;
}

export class JobError {
  @IsEnum(ErrorCode)
  code!: ErrorCode;

  @Text(2048)
  message!: string;
}

export class RollbackDetail {
  /** the snapshot that was tried and undone */
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot!: string;

  /** the snapshot the device runs again */
  @Matches(SNAPSHOT_ID_PATTERN)
  restoredSnapshot!: string;

  @IsIn(['bootloader', 'health-check', 'kernel-load'])
  by!: 'bootloader' | 'health-check' | 'kernel-load';

  @IsOptional()
  @Text(128)
  check?: string;

  @IsOptional()
  @Text(4096)
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

  /** stored in a `timestamptz` column: a real date-time, strictly */
  @Timestamp()
  at!: string;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => JobProgress)
  progress?: JobProgress;

  /** the snapshot the command produced or acted on */
  @IsOptional()
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot?: string;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => JobError)
  error?: JobError;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => RollbackDetail)
  rollback?: RollbackDetail;

  /** bytes actually downloaded for this command (after resumes), on staged/failed */
  @IsOptional()
  @Uint(MAX_SAFE_UINT)
  bytesDownloaded?: number;

  /** true on an `accepted` repeated for a redelivered command (§5.2); a boolean, nothing else */
  @IsOptional()
  @IsBoolean()
  duplicate?: boolean;
}
