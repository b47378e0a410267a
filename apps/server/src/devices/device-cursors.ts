import { isDeviceId } from '@cowroot/protocol';
import { decodeCursor, encodeCursor, isBigintText, isIsoTimestamp, isUuid } from '../common/cursor';
import { DomainError, DomainErrorCode } from '../common/domain-error';

/** Devices are listed by id, ascending: the cursor is the last id of the page. */
export interface DeviceCursor {
  id: string;
}

/** Commands and events are listed newest first. */
export interface CommandCursor {
  createdAt: string;
  id: string;
}

export interface EventCursor {
  seq: string;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

const isDeviceCursor = (value: unknown): value is DeviceCursor =>
  isObject(value) && typeof value.id === 'string' && isDeviceId(value.id);

const isCommandCursor = (value: unknown): value is CommandCursor =>
  isObject(value) && isUuid(value.id) && isIsoTimestamp(value.createdAt);

const isEventCursor = (value: unknown): value is EventCursor => isObject(value) && isBigintText(value.seq);

function decodeOrThrow<T>(cursor: string, isValid: (value: unknown) => value is T): T {
  const value = decodeCursor(cursor, isValid);
  if (!value) throw new DomainError(DomainErrorCode.InvalidCursor, 'invalid cursor');
  return value;
}

export const deviceCursor = {
  encode: (value: DeviceCursor) => encodeCursor(value),
  decode: (cursor: string) => decodeOrThrow(cursor, isDeviceCursor),
};

export const commandCursor = {
  encode: (value: CommandCursor) => encodeCursor(value),
  decode: (cursor: string) => decodeOrThrow(cursor, isCommandCursor),
};

export const eventCursor = {
  encode: (value: EventCursor) => encodeCursor(value),
  decode: (cursor: string) => decodeOrThrow(cursor, isEventCursor),
};
