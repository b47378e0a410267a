import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { CommandType } from '@cowroot/protocol';
import { IsArray, IsIn, IsObject, IsOptional, IsString } from 'class-validator';

/** Commands an operator may send directly; `install` needs a release artifact and comes from rollouts. */
export const OPERATOR_COMMAND_TYPES = [
  CommandType.Switch,
  CommandType.Commit,
  CommandType.Delete,
  CommandType.Reboot,
  CommandType.Cancel,
] as const;
export type OperatorCommandType = (typeof OPERATOR_COMMAND_TYPES)[number];

/**
 * The command without its envelope (v, commandId, issuedAt: the server adds them). Only the shape is checked
 * here; the fields are validated against the protocol's own command classes (docs/protocol.md §6).
 */
export class SendCommandDto {
  @ApiProperty({ enum: OPERATOR_COMMAND_TYPES })
  @IsIn(OPERATOR_COMMAND_TYPES)
  type!: OperatorCommandType;

  @ApiPropertyOptional({ description: 'switch: snapshot to try; commit: id of the new snapshot' })
  @IsOptional()
  @IsString()
  snapshot?: string;

  @ApiPropertyOptional({
    description:
      'switch, commit: { mode: now | window | never, window?: { start: "HH:MM", end: "HH:MM" } }; default now',
    type: 'object',
    additionalProperties: true,
  })
  @IsOptional()
  @IsObject()
  reboot?: Record<string, unknown>;

  @ApiPropertyOptional({ type: [String], description: 'delete: snapshots to delete' })
  @IsOptional()
  @IsArray()
  snapshots?: string[];

  @ApiPropertyOptional({ description: 'commit: a label for the new snapshot' })
  @IsOptional()
  @IsString()
  label?: string;

  @ApiPropertyOptional({ description: 'cancel: the command to cancel' })
  @IsOptional()
  @IsString()
  targetCommandId?: string;
}
