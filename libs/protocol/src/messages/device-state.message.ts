import { Type } from 'class-transformer';
import {
  IsArray,
  IsBoolean,
  IsEnum,
  IsISO8601,
  IsInt,
  IsObject,
  IsOptional,
  Matches,
  ArrayMaxSize,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { BTRFS_UUID_PATTERN, SNAPSHOT_ID_PATTERN } from '../identifiers';
import { ReleaseRef, VersionedMessage } from './common';
import { INT32_MAX, MAX_SAFE_UINT, Text, Timestamp, Uint } from './storable';
import { TrialOutcome } from './trial-outcome';

/** Most entries of a state report's deltaFormats (a handful of formats exist; the bound keeps the row small). */
export const MAX_DELTA_FORMATS = 16;

/** How a snapshot came to be on the device (docs/device.md §2). */
export enum SnapshotOrigin {
  /** made by `btrfs receive` from a release artifact: has a received_uuid, usable as a delta parent */
  Received = 'received',
  /** made from the rw workspace on the device: no received_uuid, never a delta parent */
  Committed = 'committed',
  /** written at manufacturing time */
  Factory = 'factory',
}

export class SnapshotInfo {
  @Matches(SNAPSHOT_ID_PATTERN)
  id!: string;

  @Matches(BTRFS_UUID_PATTERN)
  uuid!: string;

  /** null when the subvolume was not received (btrfs prints '-') */
  @IsOptional()
  @Matches(BTRFS_UUID_PATTERN)
  receivedUuid!: string | null;

  @IsOptional()
  @Matches(BTRFS_UUID_PATTERN)
  parentUuid!: string | null;

  @IsBoolean()
  readOnly!: boolean;

  @IsEnum(SnapshotOrigin)
  origin!: SnapshotOrigin;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ReleaseRef)
  release!: ReleaseRef | null;

  /** kept in jsonb: any ISO 8601 form (metadata of factory snapshots may be written by other tools) */
  @IsISO8601()
  createdAt!: string;
}

/** Where a requested switch stands in the u-boot env (docs/device.md §3). */
export enum TrialState {
  Requested = 'requested',
  Trying = 'trying',
  Confirmed = 'confirmed',
}

export class PendingTrial {
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot!: string;

  @IsEnum(TrialState)
  state!: TrialState;
}

export class LastTrialResult {
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot!: string;

  @IsEnum(TrialOutcome)
  outcome!: TrialOutcome;

  /** name of the failed health check, when a check rejected it */
  @IsOptional()
  @Text(128)
  check?: string;

  @IsOptional()
  @Text(4096)
  outputTail?: string;
}

export enum HealthStatus {
  Passed = 'passed',
  Failed = 'failed',
  Pending = 'pending',
}

export enum HealthCheckKind {
  Builtin = 'builtin',
  Required = 'required',
  Wanted = 'wanted',
}

export class HealthCheckResult {
  @Text(128)
  name!: string;

  @IsEnum(HealthCheckKind)
  kind!: HealthCheckKind;

  @IsBoolean()
  passed!: boolean;

  @Uint(MAX_SAFE_UINT)
  durationMs!: number;

  @IsOptional()
  @Text(4096)
  outputTail?: string;
}

export class HealthReport {
  @IsEnum(HealthStatus)
  status!: HealthStatus;

  @IsISO8601()
  checkedAt!: string;

  @IsArray()
  @ArrayMaxSize(256)
  @ValidateNested({ each: true })
  @Type(() => HealthCheckResult)
  checks!: HealthCheckResult[];
}

/**
 * device → server on `…/state` (docs/protocol.md §5.1): the whole state, sent on connect and after
 * every change. `seq` increases with every report of one agent run, so the server drops stale ones.
 */
export class DeviceStateMessage extends VersionedMessage {
  /** stored in an `integer` column: at most 2^31 - 1 */
  @Uint(INT32_MAX)
  seq!: number;

  /** stored in a `timestamptz` column: a real date-time, strictly */
  @Timestamp()
  sentAt!: string;

  @Text(64)
  agentVersion!: string;

  /** the read-only snapshot this boot started from (cowroot.snapshot= on the kernel command line) */
  @Matches(SNAPSHOT_ID_PATTERN)
  bootedSnapshot!: string;

  /** true when this boot is a trial that is not yet accepted */
  @IsBoolean()
  trialBoot!: boolean;

  /** the snapshot u-boot boots when no trial is pending (confirmed), also the fallback of a trial */
  @IsOptional()
  @Matches(SNAPSHOT_ID_PATTERN)
  fallbackSnapshot!: string | null;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => PendingTrial)
  pendingTrial!: PendingTrial | null;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => LastTrialResult)
  lastTrialResult!: LastTrialResult | null;

  @IsArray()
  @ArrayMaxSize(512)
  @ValidateNested({ each: true })
  @Type(() => SnapshotInfo)
  snapshots!: SnapshotInfo[];

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => HealthReport)
  health!: HealthReport | null;

  /** free bytes in the btrfs pool, for install planning */
  @IsOptional()
  @Uint(MAX_SAFE_UINT)
  freeBytes?: number;

  /**
   * The delta artifact formats this agent rebuilds (docs/protocol.md §5.1, §8): the server offers a delta
   * of a known format only to devices that list it. Absent from agents older than the field; stored in an
   * `integer[]` column, each a small format number.
   */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_DELTA_FORMATS)
  @IsInt({ each: true })
  @Min(1, { each: true })
  @Max(255, { each: true })
  deltaFormats?: number[];
}
