import { isEmptySelector, selectorCondition } from './device-selector';

describe('selectorCondition', () => {
  it('combines tags, ids and filters with AND, numbering parameters from the given offset', () => {
    const fragment = selectorCondition(
      { tags: ['eu', 'canary'], deviceIds: ['a', 'b'], filter: { online: true, idPrefix: 'gw_' } },
      'd',
      3,
    );
    expect(fragment.sql).toBe(
      `d.status = 'active' AND d.tags @> $3::text[] AND d.id = ANY ($4::text[]) AND d.online = $5 AND d.id LIKE $6`,
    );
    expect(fragment.params).toEqual([['eu', 'canary'], ['a', 'b'], true, 'gw\\_%']);
  });

  it('targets only active devices even when selecting all', () => {
    expect(selectorCondition({ all: true }, 'x', 1)).toEqual({ sql: `x.status = 'active'`, params: [] });
  });

  it('refuses to read an empty selector as the whole fleet', () => {
    expect(isEmptySelector({})).toBe(true);
    expect(isEmptySelector({ tags: [] })).toBe(true);
    expect(isEmptySelector({ all: true })).toBe(false);
    expect(isEmptySelector({ deviceIds: [] })).toBe(false);
  });
});
