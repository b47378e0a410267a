import { ApiProperty } from '@nestjs/swagger';

export class RollbackTargetDto {
  @ApiProperty({ enum: ['device', 'tag', 'rollout'] }) type!: string;
  @ApiProperty({ description: 'device id, tag or rollout id' }) value!: string;
}

export class RollbackDeviceDto {
  @ApiProperty() deviceId!: string;
  @ApiProperty({ type: String, nullable: true, description: 'the snapshot it is switched to' })
  snapshot!: string | null;
  @ApiProperty({
    description:
      '`skipped` when nothing was sent; else an execution state (notified … confirmed, failed kinds), moved forward by the device',
  })
  state!: string;
  @ApiProperty({ type: String, nullable: true, description: 'why it was skipped or failed' }) detail!: string | null;
  @ApiProperty({ type: String, nullable: true }) commandId!: string | null;
}

export class RollbackDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ type: RollbackTargetDto }) target!: RollbackTargetDto;
  @ApiProperty({ type: String, nullable: true, description: 'null: where each device came from' })
  snapshot!: string | null;
  @ApiProperty({ type: String, nullable: true }) reason!: string | null;
  @ApiProperty({ description: 'name of the actor' }) createdBy!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: [RollbackDeviceDto] }) devices!: RollbackDeviceDto[];
}
