import { CliError } from '../cli-error';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90" (seconds), "30s", "15m", "2h", "1d", "1h30m" → seconds. */
export function parseDuration(text: string, what: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const parts = [...trimmed.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== trimmed) {
    throw CliError.usage(`${what} must be a duration like 90s, 15m, 2h, 1d or 1h30m, got ${JSON.stringify(text)}`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * UNIT_SECONDS[unit], 0);
}

/** 5400 → "1h30m"; 0 → "0s". */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return '0s';
  let rest = Math.round(seconds);
  let text = '';
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text;
}
