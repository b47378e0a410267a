import { ago, formatBytes } from './format';
import { auditExportPath, deviceFiltersFromSearch, deviceQuery, NO_AUDIT_FILTERS } from './list-filters';
import { emptyForm, fieldErrors, formSelector, releaseRef, toCreateRollout } from './rollout-form';
import { matchRoute, routePath } from './routes';

describe('rollout form', () => {
  it('builds the create request: counts and percentages, rules, selector parts combined', () => {
    const form = {
      ...emptyForm(),
      name: ' canary ',
      release: 'gateway-os@2026.11.1',
      tags: 'lab, edge',
      online: 'true' as const,
      dispatchPerMinute: '30',
    };
    const body = toCreateRollout(form);
    expect(body).toMatchObject({
      name: 'canary',
      release: { name: 'gateway-os', version: '2026.11.1' },
      selector: { tags: ['lab', 'edge'], filter: { online: true } },
      dispatchPerMinute: 30,
      continuous: false,
    });
    expect(body.waves.map((w) => [w.count, w.percent, w.timeoutSeconds])).toEqual([
      [1, undefined, 600],
      [undefined, 25, 1800],
      [undefined, 100, 3600],
    ]);
    expect(body.abortRules).toEqual([{ kind: 'any', thresholdPercent: 20, minExecuted: 1, action: 'pause' }]);
  });

  it('sends an empty selector as empty (the server answers ROLLOUT_SELECTOR_EMPTY)', () => {
    expect(formSelector(emptyForm())).toEqual({});
    expect(formSelector({ ...emptyForm(), deviceIds: 'a b,c', all: true })).toEqual({
      all: true,
      deviceIds: ['a', 'b', 'c'],
    });
  });

  it('reads name@version, the version after the last @', () => {
    expect(releaseRef('os@1.2')).toEqual({ name: 'os', version: '1.2' });
    expect(releaseRef('os')).toBeNull();
    expect(releaseRef('os@')).toBeNull();
  });

  it("puts the server's validation problems on their fields", () => {
    const errors = fieldErrors({
      code: 'INVALID',
      message: 'x',
      details: {
        problems: [
          'waves.1.timeoutSeconds must not be less than 1',
          'release.version must match /^[a-z]+$/',
          'name must be a string',
          'abortRules.0.thresholdPercent must not be greater than 100',
          'something else entirely',
        ],
      },
    });
    expect(Object.keys(errors).sort()).toEqual(['abortRules.0', 'form', 'name', 'release', 'waves.1']);
    expect(fieldErrors({ code: 'ROLLOUT_SELECTOR_EMPTY', message: 'empty' })).toEqual({ selector: ['empty'] });
    expect(fieldErrors({ code: 'RELEASE_NOT_FOUND', message: 'no' })).toEqual({ release: ['no'] });
    expect(fieldErrors({ code: 'FORBIDDEN', message: 'role' })).toEqual({ form: ['role'] });
  });
});

describe('list filters', () => {
  it('reads device filters from the URL, dropping values the API would refuse', () => {
    expect(deviceFiltersFromSearch('?q=gw&online=maybe&status=decommissioned&tag=a')).toEqual({
      q: 'gw',
      tag: 'a',
      release: '',
      online: '',
      status: 'decommissioned',
    });
  });

  it('turns them into the API query', () => {
    const filters = { ...deviceFiltersFromSearch('?online=false&tag=a,%20b&release=os@1'), q: ' ' };
    expect(deviceQuery(filters, 'c1', 50)).toEqual({
      online: false,
      tag: ['a', 'b'],
      release: 'os@1',
      cursor: 'c1',
      limit: 50,
    });
  });

  it('exports the filtered audit log without any credential in the URL', () => {
    const path = auditExportPath({ ...NO_AUDIT_FILTERS, action: 'rollout.', from: '2026-01-02T03:04' }, 'csv');
    expect(path.startsWith('/api/v1/audit/export?')).toBe(true);
    const params = new URLSearchParams(path.split('?')[1]);
    expect(params.get('action')).toBe('rollout.');
    expect(params.get('format')).toBe('csv');
    expect(new Date(params.get('from')!).getTime()).toBe(new Date('2026-01-02T03:04').getTime());
    expect(path).not.toMatch(/token|cwr_/i);
  });
});

describe('routes', () => {
  it('maps paths to pages and back', () => {
    expect(matchRoute('/')).toEqual({ page: 'fleet' });
    expect(matchRoute('/rollouts/new')).toEqual({ page: 'rollout-new' });
    expect(matchRoute('/rollouts/abc')).toEqual({ page: 'rollout', id: 'abc' });
    expect(matchRoute('/devices/gw%2F1')).toEqual({ page: 'device', id: 'gw/1' });
    expect(matchRoute('/admin/x')).toEqual({ page: 'not-found', path: '/admin/x' });
    expect(routePath({ page: 'device', id: 'gw/1' })).toBe('/devices/gw%2F1');
    for (const path of ['/', '/rollouts', '/rollouts/new', '/rollouts/r1', '/devices', '/releases', '/audit', '/admin'])
      expect(routePath(matchRoute(path))).toBe(path);
  });
});

describe('format', () => {
  it('writes sizes and ages', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(null)).toBe('–');
    const now = new Date('2026-01-01T01:00:00Z');
    expect(ago('2026-01-01T00:59:30Z', now)).toBe('30 s ago');
    expect(ago('2026-01-01T00:00:00Z', now)).toBe('1 h ago');
    expect(ago(null, now)).toBe('–');
  });
});
