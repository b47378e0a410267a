import { ArtifactKind } from '@cowroot/protocol';
import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Release } from './release.entity';

/** bigint comes back from pg as a string; artifact sizes stay far below 2^53. */
const bigintAsNumber = {
  to: (value: number) => value,
  from: (value: string | null) => (value === null ? value : Number(value)),
};

/**
 * One stored btrfs send stream of a release. The manifest bytes and signature are kept verbatim so
 * install commands can hand them to devices exactly as the release tool signed them.
 */
@Entity({ name: 'release_artifacts' })
export class ReleaseArtifact {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'release_id', type: 'uuid' })
  releaseId!: string;

  @ManyToOne(() => Release, (release) => release.artifacts, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'release_id' })
  release?: Release;

  @Column({ type: 'text' })
  file!: string;

  @Column({ type: 'text' })
  kind!: ArtifactKind;

  @Column({ type: 'bigint', transformer: bigintAsNumber })
  size!: number;

  @Column({ type: 'text' })
  sha256!: string;

  @Column({ type: 'text' })
  compression!: string;

  /** received_uuid of the snapshot a device gets from this stream (= the release's snapshot uuid) */
  @Column({ name: 'snapshot_uuid', type: 'text' })
  snapshotUuid!: string;

  @Column({ name: 'parent_release_name', type: 'text', nullable: true })
  parentReleaseName!: string | null;

  @Column({ name: 'parent_release_version', type: 'text', nullable: true })
  parentReleaseVersion!: string | null;

  /** received_uuid the device must hold for this incremental stream; null for a full stream */
  @Column({ name: 'parent_snapshot_uuid', type: 'text', nullable: true })
  parentSnapshotUuid!: string | null;

  /** delta kind: the format its manifest names (deltaFormat); null when the manifest does not say */
  @Column({ name: 'delta_format', type: 'integer', nullable: true })
  deltaFormat!: number | null;

  @Column({ type: 'bytea' })
  manifest!: Buffer;

  /** detached ed25519 signature over `manifest`, base64 */
  @Column({ type: 'text' })
  signature!: string;

  @Column({ name: 'signing_key_id', type: 'uuid' })
  signingKeyId!: string;

  @Column({ name: 'uploaded_by', type: 'text' })
  uploadedBy!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
