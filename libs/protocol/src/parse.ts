import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import { ErrorCode } from './error-codes';
import { MAX_JSON_DEPTH, exceedsJsonDepth } from './json-depth';
import { MAX_MESSAGE_BYTES, PROTOCOL_VERSION } from './version';
import { acceptsByPlan } from './validation-plan';
import { COMMAND_CLASSES, Command, CommandType, commandTypeOf } from './messages/command.message';
import { DeviceStateMessage } from './messages/device-state.message';
import { JobEventMessage } from './messages/job-event.message';
import { MessageRejectedMessage } from './messages/message-rejected.message';
import { ReportReceiptMessage } from './messages/report-receipt.message';
import { PresenceMessage } from './messages/presence.message';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string };

type MessageClass<T> = new () => T;

/** Flattens nested class-validator errors into `path: constraint` lines. */
export function describeValidationErrors(errors: ValidationError[], parent = ''): string[] {
  const lines: string[] = [];
  for (const error of errors) {
    const path = parent ? `${parent}.${error.property}` : error.property;
    for (const text of Object.values(error.constraints ?? {})) lines.push(`${path}: ${text}`);
    if (error.children?.length) lines.push(...describeValidationErrors(error.children, path));
  }
  return lines;
}

/** JSON → plain object, with the size and version checks that every message gets (docs/protocol.md §2). */
export function decodeJson(payload: Buffer | string): ParseResult<Record<string, unknown>> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > MAX_MESSAGE_BYTES) {
    return {
      ok: false,
      code: ErrorCode.MessageTooLarge,
      message: `message of ${size} bytes exceeds ${MAX_MESSAGE_BYTES}`,
    };
  }
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (exceedsJsonDepth(bytes)) {
    return { ok: false, code: ErrorCode.MalformedMessage, message: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` };
  }
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { ok: false, code: ErrorCode.MalformedMessage, message: `invalid JSON: ${(error as Error).message}` };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, code: ErrorCode.MalformedMessage, message: 'message must be a JSON object' };
  }
  const record = data as Record<string, unknown>;
  if (record.v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      code: ErrorCode.UnsupportedProtocolVersion,
      message: `protocol version ${JSON.stringify(record.v)} is not supported (expected ${PROTOCOL_VERSION})`,
    };
  }
  return { ok: true, value: record };
}

/**
 * Validates a plain object as an instance of `cls`; unknown properties are refused. A message the compiled plan
 * accepts is returned as it was parsed (validation-plan.ts); anything else goes through class-transformer and
 * class-validator, which decide, and word every rejection.
 */
export function validateAs<T extends object>(cls: MessageClass<T>, plain: Record<string, unknown>): ParseResult<T> {
  if (acceptsByPlan(cls, plain)) return { ok: true, value: plain as unknown as T };
  let instance: T;
  let errors: ValidationError[];
  try {
    instance = plainToInstance(cls, plain);
    errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true });
  } catch (error) {
    // a value the transformer cannot walk (decodeJson bounds depth; this keeps any other shape a rejection)
    return { ok: false, code: ErrorCode.MalformedMessage, message: `unreadable message: ${(error as Error).message}` };
  }
  if (errors.length > 0) {
    return { ok: false, code: ErrorCode.MalformedMessage, message: describeValidationErrors(errors).join('; ') };
  }
  return { ok: true, value: instance };
}

function parseAs<T extends object>(cls: MessageClass<T>, payload: Buffer | string): ParseResult<T> {
  const decoded = decodeJson(payload);
  return decoded.ok ? validateAs(cls, decoded.value) : decoded;
}

export function parseDeviceState(payload: Buffer | string): ParseResult<DeviceStateMessage> {
  return parseAs(DeviceStateMessage, payload);
}

export function parseJobEvent(payload: Buffer | string): ParseResult<JobEventMessage> {
  return parseAs(JobEventMessage, payload);
}

export function parsePresence(payload: Buffer | string): ParseResult<PresenceMessage> {
  return parseAs(PresenceMessage, payload);
}

export function parseMessageRejected(payload: Buffer | string): ParseResult<MessageRejectedMessage> {
  return parseAs(MessageRejectedMessage, payload);
}

export function parseReportReceipt(payload: Buffer | string): ParseResult<ReportReceiptMessage> {
  return parseAs(ReportReceiptMessage, payload);
}

export function parseCommand(payload: Buffer | string): ParseResult<Command> {
  const decoded = decodeJson(payload);
  if (!decoded.ok) return decoded;
  const type = commandTypeOf(decoded.value);
  if (type === undefined || !(type in COMMAND_CLASSES)) {
    return { ok: false, code: ErrorCode.UnknownCommand, message: `unknown command type ${JSON.stringify(type)}` };
  }
  return validateAs<Command>(COMMAND_CLASSES[type as CommandType] as MessageClass<Command>, decoded.value);
}

/** Serialises a message for the wire. Kept here so both sides write the same JSON. */
export function encodeMessage(message: object): Buffer {
  return Buffer.from(JSON.stringify(message));
}
