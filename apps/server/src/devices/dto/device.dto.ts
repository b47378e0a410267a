import { ApiProperty } from '@nestjs/swagger';
import { Device, DeviceStatus } from '../device.entity';
import { HealthReportDto, LastTrialResultDto, PendingTrialDto, SnapshotInfoDto } from './device-state.dto';

const iso = (date: Date | null) => (date ? date.toISOString() : null);

/** A device as the API shows it. The credential is never part of it. */
export class DeviceDto {
  @ApiProperty({ example: 'gw-0042' }) id!: string;
  @ApiProperty({ type: [String], example: ['canary', 'site=berlin'] }) tags!: string[];
  @ApiProperty({ enum: DeviceStatus }) status!: DeviceStatus;
  @ApiProperty() online!: boolean;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) lastSeenAt!: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) lastConnectedAt!: string | null;
  @ApiProperty({ type: String, nullable: true }) agentVersion!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'the read-only snapshot the device booted' })
  bootedSnapshot!: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'name@version of the booted snapshot' })
  bootedRelease!: string | null;
  @ApiProperty({ type: Boolean, nullable: true, description: 'the current boot is an unconfirmed trial' })
  trialBoot!: boolean | null;
  @ApiProperty({ type: String, nullable: true }) fallbackSnapshot!: string | null;
  @ApiProperty({ type: PendingTrialDto, nullable: true }) pendingTrial!: PendingTrialDto | null;
  @ApiProperty({ type: LastTrialResultDto, nullable: true }) lastTrialResult!: LastTrialResultDto | null;
  @ApiProperty({ type: [SnapshotInfoDto], description: 'snapshot inventory' }) snapshots!: SnapshotInfoDto[];
  @ApiProperty({ type: Number, nullable: true }) freeBytes!: number | null;
  @ApiProperty({
    type: [Number],
    nullable: true,
    description: 'delta formats the agent reads; null when it never reported them (offered format 1 only)',
  })
  deltaFormats!: number[] | null;
  @ApiProperty({ type: HealthReportDto, nullable: true, description: 'last health report' })
  health!: HealthReportDto | null;
  @ApiProperty({ type: Number, nullable: true, description: 'seq of the last accepted state report' })
  stateSeq!: number | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) stateSentAt!: string | null;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) stateReceivedAt!: string | null;
  @ApiProperty() provisionedBy!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ type: String, nullable: true, format: 'date-time' }) decommissionedAt!: string | null;
  @ApiProperty({ type: String, nullable: true }) decommissionReason!: string | null;

  static from(device: Device): DeviceDto {
    return {
      id: device.id,
      tags: device.tags,
      status: device.status,
      online: device.online,
      lastSeenAt: iso(device.lastSeenAt),
      lastConnectedAt: iso(device.lastConnectedAt),
      agentVersion: device.agentVersion,
      bootedSnapshot: device.bootedSnapshot,
      bootedRelease: device.bootedRelease,
      trialBoot: device.trialBoot,
      fallbackSnapshot: device.fallbackSnapshot,
      pendingTrial: device.pendingTrial,
      lastTrialResult: device.lastTrialResult,
      snapshots: device.snapshots,
      freeBytes: device.freeBytes,
      deltaFormats: device.deltaFormats,
      health: device.health,
      stateSeq: device.stateSeq,
      stateSentAt: iso(device.stateSentAt),
      stateReceivedAt: iso(device.stateReceivedAt),
      provisionedBy: device.provisionedBy,
      createdAt: device.createdAt.toISOString(),
      updatedAt: device.updatedAt.toISOString(),
      decommissionedAt: iso(device.decommissionedAt),
      decommissionReason: device.decommissionReason,
    };
  }
}

export class DevicePageDto {
  @ApiProperty({ type: [DeviceDto] }) items!: DeviceDto[];
  @ApiProperty({ type: String, nullable: true, description: 'pass as ?cursor= for the next page; null on the last' })
  nextCursor!: string | null;
}

export class ProvisionedDeviceDto {
  @ApiProperty({ type: DeviceDto }) device!: DeviceDto;
  @ApiProperty({ description: 'the device credential (MQTT password, HTTP Basic secret); shown only in this response' })
  credential!: string;
}
