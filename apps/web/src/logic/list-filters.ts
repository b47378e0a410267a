/** Filters of the device list, as the URL keeps them (so a filtered page can be reloaded and shared). */
export interface DeviceFilters {
  q: string;
  tag: string;
  release: string;
  online: '' | 'true' | 'false';
  status: '' | 'active' | 'decommissioned';
}

export const NO_DEVICE_FILTERS: DeviceFilters = { q: '', tag: '', release: '', online: '', status: '' };

export function deviceFiltersFromSearch(search: string): DeviceFilters {
  const params = new URLSearchParams(search);
  const pick = <T extends string>(name: string, allowed: readonly T[]): T | '' => {
    const value = params.get(name) ?? '';
    return (allowed as readonly string[]).includes(value) ? (value as T) : '';
  };
  return {
    q: params.get('q') ?? '',
    tag: params.get('tag') ?? '',
    release: params.get('release') ?? '',
    online: pick('online', ['true', 'false'] as const),
    status: pick('status', ['active', 'decommissioned'] as const),
  };
}

/** Only the filters that are set, for the URL and for GET /api/v1/devices. */
export function filterParams(filters: object): Record<string, string> {
  return Object.fromEntries(
    Object.entries(filters).filter(([, value]) => typeof value === 'string' && value.trim() !== ''),
  ) as Record<string, string>;
}

/** The device list's API query: online as a boolean, everything else as typed. */
export function deviceQuery(filters: DeviceFilters, cursor: string | null, limit = 50) {
  const set = filterParams(filters);
  return {
    ...set,
    ...(set.online ? { online: set.online === 'true' } : {}),
    // several tags (comma separated) narrow further: every one must be present
    ...(set.tag
      ? {
          tag: set.tag
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean),
        }
      : {}),
    ...(cursor ? { cursor } : {}),
    limit,
  } as {
    q?: string;
    tag?: string[];
    release?: string;
    online?: boolean;
    status?: 'active' | 'decommissioned';
    cursor?: string;
    limit: number;
  };
}

/** Audit filters: actor, action, subject and a time range (datetime-local values, read as local time). */
export interface AuditFilters {
  actorId: string;
  action: string;
  subjectType: string;
  subjectId: string;
  from: string;
  to: string;
}

export const NO_AUDIT_FILTERS: AuditFilters = {
  actorId: '',
  action: '',
  subjectType: '',
  subjectId: '',
  from: '',
  to: '',
};

export function auditQuery(filters: AuditFilters): Record<string, string> {
  const set = filterParams(filters);
  for (const key of ['from', 'to'] as const) if (set[key]) set[key] = new Date(set[key]).toISOString();
  return set;
}

/** The export URL of the filtered audit log (a download of the server's CSV or JSON, same filters). */
export function auditExportPath(filters: AuditFilters, format: 'csv' | 'json'): string {
  return `/api/v1/audit/export?${new URLSearchParams({ ...auditQuery(filters), format })}`;
}
