import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { CommandStatus } from './command-status';

/** A command sent to a device (the protocol Command as published) and where it stands. */
@Entity({ name: 'device_commands' })
export class DeviceCommand {
  /** = the protocol's commandId */
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'device_id', type: 'text' })
  deviceId!: string;

  @Column({ type: 'text' })
  type!: string;

  /** the exact protocol message published to the device */
  @Column({ type: 'jsonb' })
  payload!: Record<string, unknown>;

  @Column({ type: 'text' })
  status!: CommandStatus;

  @Column({ name: 'created_by', type: 'text' })
  createdBy!: string;

  @Column({ name: 'created_by_type', type: 'text' })
  createdByType!: string;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;

  /** the job event that set the current status */
  @Column({ name: 'last_event', type: 'jsonb', nullable: true })
  lastEvent!: Record<string, unknown> | null;
}
