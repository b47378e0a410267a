import { ApiProperty } from '@nestjs/swagger';
import { Release } from '../release.entity';
import { ArtifactDto } from './artifact.dto';

export class ReleaseDto {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() version!: string;
  @ApiProperty({ nullable: true, type: String }) description!: string | null;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'received_uuid of snapshots made from this release; set by the first artifact',
  })
  snapshotUuid!: string | null;
  @ApiProperty({ description: 'id of the actor (API token) that created it' }) createdBy!: string;
  @ApiProperty() createdByName!: string;
  @ApiProperty() createdAt!: string;

  static from(release: Release): ReleaseDto {
    return {
      id: release.id,
      name: release.name,
      version: release.version,
      description: release.description,
      snapshotUuid: release.snapshotUuid,
      createdBy: release.createdBy,
      createdByName: release.createdByName,
      createdAt: release.createdAt.toISOString(),
    };
  }
}

export class ReleaseWithArtifactsDto extends ReleaseDto {
  @ApiProperty({ type: [ArtifactDto] }) artifacts!: ArtifactDto[];
}

export class ReleasePageDto {
  @ApiProperty({ type: [ReleaseDto] }) items!: ReleaseDto[];
  @ApiProperty({ nullable: true, type: String }) nextCursor!: string | null;
}
