import { DomainError } from '../common/domain-error';
import { commandCursor, deviceCursor, eventCursor } from './device-cursors';

describe('device cursors', () => {
  it('round-trip through an opaque url-safe string', () => {
    const encoded = deviceCursor.encode({ id: 'dev-017' });
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(encoded).not.toContain('dev-017');
    expect(deviceCursor.decode(encoded)).toEqual({ id: 'dev-017' });
    const at = new Date().toISOString();
    expect(commandCursor.decode(commandCursor.encode({ createdAt: at, id: 'x' }))).toEqual({ createdAt: at, id: 'x' });
    expect(eventCursor.decode(eventCursor.encode({ seq: '42' }))).toEqual({ seq: '42' });
  });

  it('refuse garbage and cursors of another list with a 400-mapped domain error', () => {
    for (const bad of ['%%%', Buffer.from('not json').toString('base64url'), eventCursor.encode({ seq: '1' })]) {
      expect(() => deviceCursor.decode(bad)).toThrow(DomainError);
    }
    expect(() => eventCursor.decode(eventCursor.encode({ seq: '1; drop table' }))).toThrow('invalid cursor');
    expect(() => commandCursor.decode(deviceCursor.encode({ id: 'x' }))).toThrow('invalid cursor');
  });
});
