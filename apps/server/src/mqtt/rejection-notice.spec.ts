import { DeviceChannel, PROTOCOL_VERSION, RejectionReason } from '@cowroot/protocol';
import { rejectionNotice } from './rejection-notice';

describe(rejectionNotice.name, () => {
  const at = new Date('2026-01-02T03:04:05.000Z');
  const EVENT_ID = '6f1c2f4e-2b7a-4c51-9a43-1d2f3e4a5b6c';

  it('says why, on which channel and when, with the refs of the refused message', () => {
    const notice = rejectionNotice(
      DeviceChannel.Events,
      { reason: RejectionReason.MalformedMessage, detail: 'bad field', refs: { eventId: EVENT_ID } },
      0,
      at,
    );
    expect(notice).toEqual({
      v: PROTOCOL_VERSION,
      reason: RejectionReason.MalformedMessage,
      channel: DeviceChannel.Events,
      message: 'bad field',
      at: '2026-01-02T03:04:05.000Z',
      eventId: EVENT_ID,
    });
  });

  it('counts the notices the budget dropped, and leaves the field out when none were', () => {
    const rejection = { reason: RejectionReason.MalformedMessage, detail: 'x' };
    expect(rejectionNotice(DeviceChannel.State, rejection, 3, at).suppressed).toBe(3);
    expect('suppressed' in rejectionNotice(DeviceChannel.State, rejection, 0, at)).toBe(false);
  });

  it('makes the detail printable and caps it at 1024 characters', () => {
    const notice = rejectionNotice(
      DeviceChannel.Events,
      { reason: RejectionReason.MalformedMessage, detail: `a\u0000b${'z'.repeat(5000)}` },
      0,
      at,
    );
    expect(notice.message.startsWith('a\\u0000b')).toBe(true);
    expect(notice.message).toHaveLength(1024);
  });
});
