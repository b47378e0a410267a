import { JobEventMessage, PROTOCOL_VERSION, RejectionReason } from '@cowroot/protocol';
import { parseDeviceMessage } from './device-message-parse';

describe(parseDeviceMessage.name, () => {
  const commandId = '6f1c1b7e-3f9a-4c5e-9d2b-1a2b3c4d5e6f';
  const eventId = '0b9d7c6a-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
  const event = {
    v: PROTOCOL_VERSION,
    commandId,
    eventId,
    type: 'accepted',
    at: '2026-12-03T06:00:00.000Z',
  };
  const buffer = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

  it('refuses a payload over the bound before reading it', () => {
    const payload = buffer(event);
    expect(parseDeviceMessage(payload, JobEventMessage, payload.length - 1)).toEqual({
      ok: false,
      rejection: { reason: RejectionReason.MessageTooLarge, detail: `${payload.length} bytes` },
    });
  });

  it('refuses what is not JSON, without refs', () => {
    const result = parseDeviceMessage(buffer('{"commandId":'), JobEventMessage, 1024);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.rejection.reason).toBe(RejectionReason.MalformedMessage);
      expect(result.rejection.refs).toBeUndefined();
    }
  });

  it('refuses an invalid message with the identifying fields it carried', () => {
    const result = parseDeviceMessage(buffer({ ...event, type: 42, extra: 'x' }), JobEventMessage, 1024);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.rejection.reason).toBe(RejectionReason.MalformedMessage);
      expect(result.rejection.refs).toEqual({ commandId, eventId });
    }
  });

  it('gives the validated message and its refs', () => {
    const result = parseDeviceMessage(buffer(event), JobEventMessage, 1024);
    expect(result).toMatchObject({ ok: true, refs: { commandId, eventId } });
    // the validated message as parsed (libs/protocol validation-plan.ts), not a class instance
    if (result.ok) expect(result.value).toEqual(event);
  });
});
