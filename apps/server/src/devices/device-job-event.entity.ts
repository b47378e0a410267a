import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A job event reported by a device, stored once per eventId (QoS 1 redeliveries are dropped). */
@Entity({ name: 'device_job_events' })
export class DeviceJobEvent {
  /** arrival order; bigint comes back from pg as a string */
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  seq!: string;

  @Column({ name: 'event_id', type: 'uuid' })
  eventId!: string;

  @Column({ name: 'device_id', type: 'text' })
  deviceId!: string;

  @Column({ name: 'command_id', type: 'uuid' })
  commandId!: string;

  @Column({ type: 'text' })
  type!: string;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ name: 'received_at', type: 'timestamptz', default: () => 'now()' })
  receivedAt!: Date;

  /** the validated protocol message */
  @Column({ type: 'jsonb' })
  payload!: Record<string, unknown>;
}
