import { ApiProperty } from '@nestjs/swagger';
import { AuditEntry } from '../audit-entry.entity';

export class AuditEntryDto {
  @ApiProperty() id!: string;
  @ApiProperty() at!: string;
  @ApiProperty({ description: 'operator, device or system' }) actorType!: string;
  @ApiProperty() actorId!: string;
  @ApiProperty() actorName!: string;
  @ApiProperty() action!: string;
  @ApiProperty() subjectType!: string;
  @ApiProperty() subjectId!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, description: 'state before the action' })
  before!: unknown;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, description: 'state after the action' })
  after!: unknown;
  @ApiProperty({ nullable: true, type: String }) reason!: string | null;
  @ApiProperty({ nullable: true, type: String }) correlationId!: string | null;

  static from(entry: AuditEntry): AuditEntryDto {
    return {
      id: String(entry.id),
      at: entry.at.toISOString(),
      actorType: entry.actorType,
      actorId: entry.actorId,
      actorName: entry.actorName,
      action: entry.action,
      subjectType: entry.subjectType,
      subjectId: entry.subjectId,
      before: entry.before ?? null,
      after: entry.after ?? null,
      reason: entry.reason,
      correlationId: entry.correlationId,
    };
  }
}

export class AuditPageDto {
  @ApiProperty({ type: [AuditEntryDto] }) items!: AuditEntryDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}
