import { ApiProperty } from '@nestjs/swagger';
import { ArtifactKind } from '@cowroot/protocol';
import { ReleaseArtifact } from '../release-artifact.entity';

export class ArtifactParentDto {
  @ApiProperty() name!: string;
  @ApiProperty() version!: string;
  @ApiProperty({ description: 'received_uuid a device must hold to apply this incremental stream' })
  snapshotUuid!: string;
}

export class ArtifactDto {
  @ApiProperty() file!: string;
  @ApiProperty({ enum: ArtifactKind }) kind!: ArtifactKind;
  @ApiProperty() size!: number;
  @ApiProperty() sha256!: string;
  @ApiProperty() compression!: string;
  @ApiProperty({ description: 'received_uuid of the snapshot this stream produces' }) snapshotUuid!: string;
  @ApiProperty({ type: ArtifactParentDto, nullable: true }) parent!: ArtifactParentDto | null;
  @ApiProperty({
    type: Number,
    nullable: true,
    description:
      'delta kind: the format its signed manifest names (deltaFormat); null for other kinds and for a delta whose manifest names none',
  })
  deltaFormat!: number | null;
  @ApiProperty() signingKeyId!: string;
  @ApiProperty() uploadedBy!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ description: 'download URL (operators: Bearer; devices: HTTP Basic deviceId:credential)' })
  url!: string;

  static from(artifact: ReleaseArtifact, url: string): ArtifactDto {
    return {
      file: artifact.file,
      kind: artifact.kind,
      size: artifact.size,
      sha256: artifact.sha256,
      compression: artifact.compression,
      snapshotUuid: artifact.snapshotUuid,
      parent:
        artifact.parentSnapshotUuid === null
          ? null
          : {
              name: artifact.parentReleaseName ?? '',
              version: artifact.parentReleaseVersion ?? '',
              snapshotUuid: artifact.parentSnapshotUuid,
            },
      deltaFormat: artifact.deltaFormat,
      signingKeyId: artifact.signingKeyId,
      uploadedBy: artifact.uploadedBy,
      createdAt: artifact.createdAt.toISOString(),
      url,
    };
  }
}
