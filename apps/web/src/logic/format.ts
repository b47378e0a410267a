/** 1536 → "1.5 KiB": binary units, one decimal. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** "5 s ago", "3 min ago", "2 h ago", "4 d ago"; "–" for no time. */
export function ago(iso: string | null | undefined, now: Date): string {
  if (!iso) return '–';
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '–';
  return new Date(iso).toISOString().replace('T', ' ').slice(0, 19);
}
