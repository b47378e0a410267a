import { ArrayMaxSize, ArrayMinSize, IsArray, IsUUID } from 'class-validator';
import { VersionedMessage } from './common';

/** Event ids one receipt may name: the server sends one per event today; room for batching. */
export const RECEIPT_MAX_EVENT_IDS = 100;

/**
 * server → device on `…/receipts` (docs/protocol.md §5.4, cluster mode): the server is done with these job
 * events — stored, or refused for good (§7.1) — so the device may drop them from its outbox. Until then
 * the device sends them again; the server keeps each event id once.
 */
export class ReportReceiptMessage extends VersionedMessage {
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(RECEIPT_MAX_EVENT_IDS)
  @IsUUID(undefined, { each: true })
  eventIds!: string[];
}
