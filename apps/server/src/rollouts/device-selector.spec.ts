import { isEmptySelector } from './device-selector';

// what the selector's SQL picks is asserted against a real database in device-selector.int-spec.ts
describe('isEmptySelector', () => {
  it('refuses to read an empty selector as the whole fleet', () => {
    expect(isEmptySelector({})).toBe(true);
    expect(isEmptySelector({ tags: [] })).toBe(true);
    expect(isEmptySelector({ all: true })).toBe(false);
    expect(isEmptySelector({ deviceIds: [] })).toBe(false);
  });
});
