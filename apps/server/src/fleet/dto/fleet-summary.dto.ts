import { ApiProperty } from '@nestjs/swagger';

export class DeviceCountDto {
  @ApiProperty({ enum: ['active', 'decommissioned'] }) status!: 'active' | 'decommissioned';
  @ApiProperty() online!: boolean;
  @ApiProperty() count!: number;
}

export class BootedReleaseCountDto {
  @ApiProperty({ type: String, nullable: true, description: 'name@version; null = no report yet' })
  release!: string | null;
  @ApiProperty() count!: number;
}

export class RunningRolloutDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['running', 'paused', 'aborted'] }) status!: string;
  @ApiProperty({ type: String, nullable: true }) statusReason!: string | null;
  @ApiProperty({ description: 'name@version' }) release!: string;
  @ApiProperty() currentWave!: number;
  @ApiProperty() waves!: number;
  @ApiProperty() total!: number;
  @ApiProperty() confirmed!: number;
  @ApiProperty({ description: 'rejected, rolled back, failed or timed out' }) failed!: number;
}

export const ATTENTION_REASONS = ['rolled-back', 'failed', 'offline', 'pending-trial'] as const;
export type AttentionReason = (typeof ATTENTION_REASONS)[number];

export class AttentionItemDto {
  @ApiProperty() deviceId!: string;
  @ApiProperty({ enum: ATTENTION_REASONS }) reason!: AttentionReason;
  @ApiProperty({ description: 'what happened: the trial outcome and check, the failure, the last contact' })
  detail!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) since!: string | null;
}

export class FleetSummaryDto {
  @ApiProperty() total!: number;
  @ApiProperty({ type: [DeviceCountDto], description: 'devices by status and online state' })
  devices!: DeviceCountDto[];
  @ApiProperty({ type: [BootedReleaseCountDto], description: 'active devices by booted release, most first (top 20)' })
  bootedReleases!: BootedReleaseCountDto[];
  @ApiProperty({ type: [RunningRolloutDto], description: 'rollouts that are running, paused or aborted' })
  rollouts!: RunningRolloutDto[];
  @ApiProperty({ type: [AttentionItemDto], description: 'up to 25 devices per reason, newest first' })
  needsAttention!: AttentionItemDto[];
}

export class ReleaseDeviceCountDto {
  @ApiProperty({ description: 'name@version' }) release!: string;
  @ApiProperty({ description: 'active devices booted into it' }) running!: number;
  @ApiProperty({ description: 'active devices holding a snapshot of it (booted or not)' }) holding!: number;
}
