const MINUTES_PER_DAY = 24 * 60;

export interface WindowSpec {
  /** HH:MM */
  start: string;
  /** HH:MM; before start = the window wraps past midnight; equal to start = all day */
  end: string;
}

function minutesOf(hhmm: string): number {
  const match = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!match) throw new Error(`not HH:MM: ${JSON.stringify(hhmm)}`);
  return Number(match[1]) * 60 + Number(match[2]);
}

/** Wall-clock time of `at` in `timeZone` ('local' = the process's zone) as minutes and seconds of the day. */
export function wallClock(at: Date, timeZone: string): { minutes: number; seconds: number; ms: number } {
  if (timeZone === 'local') {
    return { minutes: at.getHours() * 60 + at.getMinutes(), seconds: at.getSeconds(), ms: at.getMilliseconds() };
  }
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value ?? 0);
  return { minutes: get('hour') * 60 + get('minute'), seconds: get('second'), ms: at.getMilliseconds() };
}

/** Whether `minute` of the day falls in the window [start, end). */
export function isInWindow(minute: number, window: WindowSpec): boolean {
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  if (start === end) return true;
  return start < end ? minute >= start && minute < end : minute >= start || minute < end;
}

/**
 * Milliseconds from `now` until the window is open: 0 inside it, else until the next start. Computed on
 * the wall clock of `timeZone`; on a DST change day the wait can be off by the shift, which only moves
 * the reboot within the same night.
 */
export function msUntilWindow(now: Date, window: WindowSpec, timeZone = 'local'): number {
  const clock = wallClock(now, timeZone);
  if (isInWindow(clock.minutes, window)) return 0;
  const start = minutesOf(window.start);
  const minutesAhead = (start - clock.minutes + MINUTES_PER_DAY) % MINUTES_PER_DAY;
  return Math.max(0, minutesAhead * 60_000 - clock.seconds * 1000 - clock.ms);
}
