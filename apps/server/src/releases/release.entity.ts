import { Column, CreateDateColumn, Entity, OneToMany, PrimaryGeneratedColumn } from 'typeorm';
import { ReleaseArtifact } from './release-artifact.entity';

/** A named rootfs version. Its artifacts are the btrfs send streams that produce it on a device. */
@Entity({ name: 'releases' })
export class Release {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'text' })
  version!: string;

  @Column({ type: 'text', nullable: true })
  description!: string | null;

  /**
   * The release's read-only snapshot uuid on the build host, i.e. the received_uuid a device's snapshot
   * of this release carries. Null until the first artifact arrives; every artifact must agree with it.
   */
  @Column({ name: 'snapshot_uuid', type: 'text', nullable: true })
  snapshotUuid!: string | null;

  @Column({ name: 'created_by', type: 'text' })
  createdBy!: string;

  @Column({ name: 'created_by_name', type: 'text' })
  createdByName!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @OneToMany(() => ReleaseArtifact, (artifact) => artifact.release)
  artifacts?: ReleaseArtifact[];
}
