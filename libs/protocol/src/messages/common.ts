// class-transformer's @Type reads design-time metadata
import 'reflect-metadata';
import { IsInt, IsString, Matches, Max, Min } from 'class-validator';
import { PROTOCOL_VERSION } from '../version';
import { RELEASE_NAME_PATTERN, RELEASE_VERSION_PATTERN } from '../identifiers';

/** Every message carries the protocol version it was written for (docs/protocol.md §1). */
export abstract class VersionedMessage {
  @IsInt()
  @Min(PROTOCOL_VERSION)
  @Max(PROTOCOL_VERSION)
  v!: number;
}

export class ReleaseRef {
  @IsString()
  @Matches(RELEASE_NAME_PATTERN)
  name!: string;

  @IsString()
  @Matches(RELEASE_VERSION_PATTERN)
  version!: string;
}
