import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBase64,
  IsEnum,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { SNAPSHOT_ID_PATTERN } from '../identifiers';
import { VersionedMessage } from './common';

export enum CommandType {
  Install = 'install',
  Switch = 'switch',
  Commit = 'commit',
  Delete = 'delete',
  Reboot = 'reboot',
  Cancel = 'cancel',
}

export enum RebootMode {
  /** reboot into the trial as soon as it is staged */
  Now = 'now',
  /** reboot at the next opening of the maintenance window */
  Window = 'window',
  /** stage only; the trial runs at whatever next reboot happens */
  Never = 'never',
}

const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;

export class MaintenanceWindow {
  /** local time on the device, HH:MM; a window may wrap past midnight */
  @Matches(HH_MM)
  start!: string;

  @Matches(HH_MM)
  end!: string;
}

export class RebootPolicy {
  @IsEnum(RebootMode)
  mode!: RebootMode;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => MaintenanceWindow)
  window?: MaintenanceWindow;
}

/** server → device on `…/commands` (docs/protocol.md §6). */
export abstract class CommandBase extends VersionedMessage {
  /** unique per command: the agent executes a command id at most once */
  @IsUUID()
  commandId!: string;

  @IsEnum(CommandType)
  type!: CommandType;

  @IsISO8601()
  issuedAt!: string;
}

/** The artifact to install. Everything the device trusts about it is inside the signed manifest. */
export class ArtifactOffer {
  /** HTTP(S) URL of the stream; the agent authenticates with its device credential and resumes with Range */
  @IsString()
  @MaxLength(2048)
  url!: string;

  /** the exact manifest bytes (JSON, docs/protocol.md §8), base64 */
  @IsBase64()
  @MaxLength(16384)
  manifest!: string;

  /** detached ed25519 signature over the manifest bytes, base64 */
  @IsBase64()
  @MaxLength(512)
  signature!: string;
}

export class InstallCommand extends CommandBase {
  override type = CommandType.Install as const;

  // an array passes @ValidateNested (each element is checked), so the object is required explicitly
  @IsObject()
  @ValidateNested()
  @Type(() => ArtifactOffer)
  artifact!: ArtifactOffer;

  /** id for the new snapshot; the agent derives one from the release when absent */
  @IsOptional()
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshotId?: string;

  @IsObject()
  @ValidateNested()
  @Type(() => RebootPolicy)
  reboot!: RebootPolicy;
}

export class SwitchCommand extends CommandBase {
  override type = CommandType.Switch as const;

  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot!: string;

  @IsObject()
  @ValidateNested()
  @Type(() => RebootPolicy)
  reboot!: RebootPolicy;
}

export class CommitCommand extends CommandBase {
  override type = CommandType.Commit as const;

  /** id of the read-only snapshot to make from the workspace */
  @Matches(SNAPSHOT_ID_PATTERN)
  snapshot!: string;

  @IsOptional()
  @IsString()
  @MaxLength(256)
  label?: string;

  @IsObject()
  @ValidateNested()
  @Type(() => RebootPolicy)
  reboot!: RebootPolicy;
}

export class DeleteCommand extends CommandBase {
  override type = CommandType.Delete as const;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(64)
  @Matches(SNAPSHOT_ID_PATTERN, { each: true })
  snapshots!: string[];
}

export class RebootCommand extends CommandBase {
  override type = CommandType.Reboot as const;
}

export class CancelCommand extends CommandBase {
  override type = CommandType.Cancel as const;

  /** the command to cancel: a running download, or a staged trial not yet booted */
  @IsUUID()
  targetCommandId!: string;
}

export type Command = InstallCommand | SwitchCommand | CommitCommand | DeleteCommand | RebootCommand | CancelCommand;

export const COMMAND_CLASSES = {
  [CommandType.Install]: InstallCommand,
  [CommandType.Switch]: SwitchCommand,
  [CommandType.Commit]: CommitCommand,
  [CommandType.Delete]: DeleteCommand,
  [CommandType.Reboot]: RebootCommand,
  [CommandType.Cancel]: CancelCommand,
} as const;

/** @returns the string `type` field, for error reporting only */
export function commandTypeOf(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'type' in value) {
    const type = (value as { type: unknown }).type;
    return typeof type === 'string' ? type : undefined;
  }
  return undefined;
}
