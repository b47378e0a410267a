import { isInWindow, msUntilWindow, wallClock } from './maintenance-window';

describe('maintenance window', () => {
  const at = (iso: string) => new Date(iso);

  it('is open inside a same-day window and closed at its end', () => {
    const window = { start: '02:00', end: '04:00' };
    expect(isInWindow(2 * 60, window)).toBe(true);
    expect(isInWindow(3 * 60 + 59, window)).toBe(true);
    expect(isInWindow(4 * 60, window)).toBe(false);
    expect(isInWindow(1 * 60 + 59, window)).toBe(false);
  });

  it('wraps past midnight', () => {
    const window = { start: '23:00', end: '01:30' };
    expect(isInWindow(23 * 60 + 30, window)).toBe(true);
    expect(isInWindow(0, window)).toBe(true);
    expect(isInWindow(60 + 29, window)).toBe(true);
    expect(isInWindow(60 + 30, window)).toBe(false);
    expect(isInWindow(12 * 60, window)).toBe(false);
  });

  it('treats start == end as always open', () => {
    expect(isInWindow(17 * 60, { start: '03:00', end: '03:00' })).toBe(true);
  });

  it('waits until the next start, on the wall clock of the zone', () => {
    // 01:15:30 UTC, window 02:00-04:00 UTC: 44.5 minutes to go
    expect(msUntilWindow(at('2026-11-26T01:15:30.000Z'), { start: '02:00', end: '04:00' }, 'UTC')).toBe(44.5 * 60_000);
    // inside: now
    expect(msUntilWindow(at('2026-11-26T03:00:00.000Z'), { start: '02:00', end: '04:00' }, 'UTC')).toBe(0);
    // after the end: tomorrow's start
    expect(msUntilWindow(at('2026-11-26T04:00:00.000Z'), { start: '02:00', end: '04:00' }, 'UTC')).toBe(22 * 3_600_000);
    // wrapping window seen from the afternoon
    expect(msUntilWindow(at('2026-11-26T15:00:00.000Z'), { start: '23:00', end: '01:00' }, 'UTC')).toBe(8 * 3_600_000);
  });

  it('uses the configured zone, not UTC', () => {
    // 01:00 UTC is 02:00 in Berlin (CET, UTC+1 in November): inside a 02:00-03:00 Berlin window
    expect(wallClock(at('2026-11-26T01:00:00.000Z'), 'Europe/Berlin').minutes).toBe(120);
    expect(msUntilWindow(at('2026-11-26T01:00:00.000Z'), { start: '02:00', end: '03:00' }, 'Europe/Berlin')).toBe(0);
    expect(msUntilWindow(at('2026-11-26T01:00:00.000Z'), { start: '02:00', end: '03:00' }, 'UTC')).toBe(3_600_000);
  });

  it('reads the process zone for "local"', () => {
    const now = new Date();
    expect(wallClock(now, 'local').minutes).toBe(now.getHours() * 60 + now.getMinutes());
  });
});
