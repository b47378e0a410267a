import { ApiProperty } from '@nestjs/swagger';
import { CommandStatus } from '../command-status';
import { DeviceCommand } from '../device-command.entity';
import { DeviceJobEvent } from '../device-job-event.entity';

export class DeviceCommandDto {
  @ApiProperty({ format: 'uuid', description: 'the protocol commandId' }) id!: string;
  @ApiProperty() deviceId!: string;
  @ApiProperty() type!: string;
  @ApiProperty({ enum: CommandStatus }) status!: CommandStatus;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'the message as published' })
  payload!: Record<string, unknown>;
  @ApiProperty() createdBy!: string;
  @ApiProperty() createdByType!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ type: 'object', nullable: true, additionalProperties: true }) lastEvent!: Record<
    string,
    unknown
  > | null;

  static from(command: DeviceCommand): DeviceCommandDto {
    return {
      id: command.id,
      deviceId: command.deviceId,
      type: command.type,
      status: command.status,
      payload: command.payload,
      createdBy: command.createdBy,
      createdByType: command.createdByType,
      createdAt: command.createdAt.toISOString(),
      updatedAt: command.updatedAt.toISOString(),
      lastEvent: command.lastEvent,
    };
  }
}

export class DeviceCommandPageDto {
  @ApiProperty({ type: [DeviceCommandDto] }) items!: DeviceCommandDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class DeviceJobEventDto {
  @ApiProperty({ description: 'arrival order' }) seq!: string;
  @ApiProperty({ format: 'uuid' }) eventId!: string;
  @ApiProperty() deviceId!: string;
  @ApiProperty({ format: 'uuid' }) commandId!: string;
  @ApiProperty() type!: string;
  @ApiProperty({ format: 'date-time', description: 'when the device says it happened' }) occurredAt!: string;
  @ApiProperty({ format: 'date-time' }) receivedAt!: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) payload!: Record<string, unknown>;

  static from(event: DeviceJobEvent): DeviceJobEventDto {
    return {
      seq: event.seq,
      eventId: event.eventId,
      deviceId: event.deviceId,
      commandId: event.commandId,
      type: event.type,
      occurredAt: event.occurredAt.toISOString(),
      receivedAt: event.receivedAt.toISOString(),
      payload: event.payload,
    };
  }
}

export class DeviceJobEventPageDto {
  @ApiProperty({ type: [DeviceJobEventDto] }) items!: DeviceJobEventDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
