import { IsEnum, IsIn, IsOptional, IsUUID } from 'class-validator';
import { RejectionReason } from '../rejection-reason';
import { DeviceChannel } from '../topics';
import { VersionedMessage } from './common';
import { INT32_MAX, Text, Timestamp, Uint } from './storable';

/**
 * server → device on `…/rejections` (docs/protocol.md §7.1): a message of this device was acknowledged but
 * not applied, and sending it again will not change that. Identifies the message by whatever of `seq`,
 * `eventId` and `commandId` could be read from it.
 */
export class MessageRejectedMessage extends VersionedMessage {
  @IsEnum(RejectionReason)
  reason!: RejectionReason;

  /** the channel the rejected message was published on */
  @IsIn([DeviceChannel.State, DeviceChannel.Events, DeviceChannel.Presence])
  channel!: DeviceChannel;

  /** what was wrong, for the device's log */
  @Text(1024)
  message!: string;

  @Timestamp()
  at!: string;

  @IsOptional()
  @Uint(INT32_MAX)
  seq?: number;

  @IsOptional()
  @IsUUID()
  eventId?: string;

  @IsOptional()
  @IsUUID()
  commandId?: string;

  /** notices suppressed since the last one sent (at most a few per second go to one device) */
  @IsOptional()
  @Uint(INT32_MAX)
  suppressed?: number;
}
