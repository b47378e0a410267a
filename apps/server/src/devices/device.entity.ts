import type { HealthReport, LastTrialResult, PendingTrial, SnapshotInfo } from '@cowroot/protocol';
import { Column, Entity, PrimaryColumn } from 'typeorm';

export enum DeviceStatus {
  Active = 'active',
  Decommissioned = 'decommissioned',
}

/** pg returns bigint as a string; free bytes stay far below 2^53. */
const bigintAsNumber = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

/**
 * A provisioned device: identity, credential hash, tags and the state it last reported over MQTT.
 * The state columns are written by DeviceStateWriter and DevicePresenceService only.
 */
@Entity({ name: 'devices' })
export class Device {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ type: 'text', array: true, default: () => `'{}'` })
  tags!: string[];

  @Column({ type: 'text', default: DeviceStatus.Active })
  status!: DeviceStatus;

  /** sha256 of the device credential (auth/secrets.ts); null once decommissioned */
  @Column({ name: 'credential_hash', type: 'text', nullable: true, select: false })
  credentialHash!: string | null;

  @Column({ name: 'provisioned_by', type: 'text' })
  provisionedBy!: string;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;

  @Column({ name: 'decommissioned_at', type: 'timestamptz', nullable: true })
  decommissionedAt!: Date | null;

  @Column({ name: 'decommission_reason', type: 'text', nullable: true })
  decommissionReason!: string | null;

  @Column({ type: 'boolean', default: false })
  online!: boolean;

  @Column({ name: 'last_seen_at', type: 'timestamptz', nullable: true })
  lastSeenAt!: Date | null;

  @Column({ name: 'last_connected_at', type: 'timestamptz', nullable: true })
  lastConnectedAt!: Date | null;

  @Column({ name: 'agent_version', type: 'text', nullable: true })
  agentVersion!: string | null;

  @Column({ name: 'booted_snapshot', type: 'text', nullable: true })
  bootedSnapshot!: string | null;

  /** `name@version` of the booted snapshot's release, null for committed or unknown snapshots */
  @Column({ name: 'booted_release', type: 'text', nullable: true })
  bootedRelease!: string | null;

  @Column({ name: 'trial_boot', type: 'boolean', nullable: true })
  trialBoot!: boolean | null;

  @Column({ name: 'fallback_snapshot', type: 'text', nullable: true })
  fallbackSnapshot!: string | null;

  @Column({ name: 'pending_trial', type: 'jsonb', nullable: true })
  pendingTrial!: PendingTrial | null;

  @Column({ name: 'last_trial_result', type: 'jsonb', nullable: true })
  lastTrialResult!: LastTrialResult | null;

  @Column({ type: 'jsonb', default: () => `'[]'` })
  snapshots!: SnapshotInfo[];

  /** the delta formats the agent reports it reads; null when it never said (an agent older than the field) */
  @Column({ name: 'delta_formats', type: 'integer', array: true, nullable: true })
  deltaFormats!: number[] | null;

  @Column({ name: 'free_bytes', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  freeBytes!: number | null;

  @Column({ type: 'jsonb', nullable: true })
  health!: HealthReport | null;

  @Column({ name: 'state_seq', type: 'integer', nullable: true })
  stateSeq!: number | null;

  @Column({ name: 'state_sent_at', type: 'timestamptz', nullable: true })
  stateSentAt!: Date | null;

  @Column({ name: 'state_received_at', type: 'timestamptz', nullable: true })
  stateReceivedAt!: Date | null;
}
