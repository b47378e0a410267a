import { CliError } from '../cli-error';

/** commander argParser for repeatable options */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** commander argParser for a positive integer option */
export function positiveInt(what: string): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
      throw CliError.usage(`${what} must be a whole number of at least 1, got ${JSON.stringify(value)}`);
    }
    return Number(value);
  };
}

/** `--all` vs `--limit n` vs the default page: how many list items to collect (null = all). */
export function listMax(options: { all?: boolean; limit?: number }, fallback: number): number | null {
  if (options.all && options.limit !== undefined) throw CliError.usage('--all and --limit exclude each other');
  if (options.all) return null;
  return options.limit ?? fallback;
}

/** `name@version` or `name version` → parts. */
export function releaseRef(first: string, second?: string): { name: string; version: string } {
  if (second !== undefined) return { name: first, version: second };
  const at = first.lastIndexOf('@');
  if (at <= 0 || at === first.length - 1)
    throw CliError.usage(
      `give the release as <name>@<version> (e.g. gateway-os@2026.11.1), got ${JSON.stringify(first)}`,
    );
  return { name: first.slice(0, at), version: first.slice(at + 1) };
}

/** `/api/v1/releases/<name>/<version>` with both parts escaped. */
export function releasePath(ref: { name: string; version: string }): string {
  return `/api/v1/releases/${encodeURIComponent(ref.name)}/${encodeURIComponent(ref.version)}`;
}

/** "2026-11-26T01:02:03.456Z" → "2026-11-26 01:02:03" (UTC, second precision) for tables. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** commander argParser for a byte size: "65536", "512K", "64M", "1G" (binary units). */
export function byteSize(what: string): (value: string) => number {
  return (value: string) => {
    const match = /^(\d+)([kmg])?i?b?$/i.exec(value.trim());
    const bytes = match ? Number(match[1]) * SIZE_UNITS[(match[2] ?? '').toLowerCase()] : NaN;
    if (!Number.isSafeInteger(bytes) || bytes < 1)
      throw CliError.usage(`${what} must be a size like 65536, 512K, 64M or 1G, got ${JSON.stringify(value)}`);
    return bytes;
  };
}
