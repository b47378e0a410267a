import { IsEnum, IsISO8601, IsOptional } from 'class-validator';
import { VersionedMessage } from './common';
import { Text } from './storable';

export enum PresenceStatus {
  Online = 'online',
  Offline = 'offline',
}

/**
 * device → server on `…/presence` (docs/protocol.md §5.3). The agent sets an `offline` message as
 * its MQTT last will at connect, so `at` is optional: a will is written long before it is sent.
 */
export class PresenceMessage extends VersionedMessage {
  @IsEnum(PresenceStatus)
  status!: PresenceStatus;

  @IsOptional()
  @IsISO8601()
  at?: string;

  @IsOptional()
  @Text(64)
  agentVersion?: string;
}
