import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { HealthCheckKind, HealthStatus, SnapshotOrigin, TrialOutcome, TrialState } from '@cowroot/protocol';

// The device-reported parts of a device (libs/protocol device-state.message.ts, docs/protocol.md §5.1) as
// the REST API documents them. DeviceDto.from assigns the protocol classes to these, so tsc keeps the
// two in step.

export class SnapshotReleaseDto {
  @ApiProperty() name!: string;
  @ApiProperty() version!: string;
}

export class SnapshotInfoDto {
  @ApiProperty() id!: string;
  @ApiProperty() uuid!: string;
  @ApiProperty({ type: String, nullable: true, description: 'null when the subvolume was not received' })
  receivedUuid!: string | null;
  @ApiProperty({ type: String, nullable: true }) parentUuid!: string | null;
  @ApiProperty() readOnly!: boolean;
  @ApiProperty({ enum: SnapshotOrigin, enumName: 'SnapshotOrigin' }) origin!: SnapshotOrigin;
  @ApiProperty({ type: SnapshotReleaseDto, nullable: true }) release!: SnapshotReleaseDto | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
}

export class PendingTrialDto {
  @ApiProperty() snapshot!: string;
  @ApiProperty({ enum: TrialState, enumName: 'TrialState' }) state!: TrialState;
}

export class LastTrialResultDto {
  @ApiProperty() snapshot!: string;
  @ApiProperty({ enum: TrialOutcome, enumName: 'TrialOutcome' }) outcome!: TrialOutcome;
  @ApiPropertyOptional({ description: 'name of the failed health check, when a check rejected it' }) check?: string;
  @ApiPropertyOptional({ description: 'last output of that check' }) outputTail?: string;
}

export class HealthCheckResultDto {
  @ApiProperty() name!: string;
  @ApiProperty({ enum: HealthCheckKind, enumName: 'HealthCheckKind' }) kind!: HealthCheckKind;
  @ApiProperty() passed!: boolean;
  @ApiProperty() durationMs!: number;
  @ApiPropertyOptional() outputTail?: string;
}

export class HealthReportDto {
  @ApiProperty({ enum: HealthStatus, enumName: 'HealthStatus' }) status!: HealthStatus;
  @ApiProperty({ format: 'date-time' }) checkedAt!: string;
  @ApiProperty({ type: [HealthCheckResultDto] }) checks!: HealthCheckResultDto[];
}
