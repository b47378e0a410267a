import { DomainError } from '../common/domain-error';
import { commandCursor, deviceCursor, eventCursor } from './device-cursors';

describe('device cursors', () => {
  it('round-trip through an opaque url-safe string', () => {
    const encoded = deviceCursor.encode({ id: 'dev-017' });
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(encoded).not.toContain('dev-017');
    expect(deviceCursor.decode(encoded)).toEqual({ id: 'dev-017' });
    const at = new Date().toISOString();
    const id = '0b5c3a3e-7c1a-4c39-9a57-2f0e7f3c9d11';
    expect(commandCursor.decode(commandCursor.encode({ createdAt: at, id }))).toEqual({ createdAt: at, id });
    expect(eventCursor.decode(eventCursor.encode({ seq: '42' }))).toEqual({ seq: '42' });
  });

  it('refuse garbage and cursors of another list with a 400-mapped domain error', () => {
    for (const bad of ['%%%', Buffer.from('not json').toString('base64url'), eventCursor.encode({ seq: '1' })]) {
      expect(() => deviceCursor.decode(bad)).toThrow(DomainError);
    }
    expect(() => eventCursor.decode(eventCursor.encode({ seq: '1; drop table' }))).toThrow('invalid cursor');
    expect(() => commandCursor.decode(deviceCursor.encode({ id: 'x' }))).toThrow('invalid cursor');
  });

  it('refuse forged values the database could not take (uuid, timestamp, bigint range, NUL)', () => {
    const id = '0b5c3a3e-7c1a-4c39-9a57-2f0e7f3c9d11';
    for (const forged of [
      { createdAt: '2026-01-01T00:00:00.000Z', id: 'nope' },
      { createdAt: 'Tue, 01 Dec 99999', id },
      { createdAt: '2026-02-30T00:00:00.000Z', id },
    ]) {
      expect(() => commandCursor.decode(commandCursor.encode(forged))).toThrow('invalid cursor');
    }
    expect(() => eventCursor.decode(eventCursor.encode({ seq: '9223372036854775808' }))).toThrow('invalid cursor');
    expect(eventCursor.decode(eventCursor.encode({ seq: '9223372036854775807' }))).toEqual({
      seq: '9223372036854775807',
    });
    expect(() => deviceCursor.decode(deviceCursor.encode({ id: 'a\u0000' }))).toThrow('invalid cursor');
  });
});
