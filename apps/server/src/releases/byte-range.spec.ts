import { ifRangeAllowsPartial, resolveByteRange } from './byte-range';

describe('resolveByteRange', () => {
  const size = 1000;

  it('serves everything without a Range header', () => {
    expect(resolveByteRange(undefined, size)).toEqual({ type: 'full' });
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=500-', 500, 999],
    ['bytes=990-5000', 990, 999],
    ['bytes=-10', 990, 999],
    ['bytes=-5000', 0, 999],
    ['BYTES = 7-7', 7, 7],
    ['bytes=999-999', 999, 999],
  ])('%s → %i-%i', (header, start, end) => {
    expect(resolveByteRange(header, size)).toEqual({ type: 'partial', start, end });
  });

  it.each(['bytes=1000-', 'bytes=1000-1001', 'bytes=-0', 'bytes=5000-6000'])('%s is unsatisfiable', (header) => {
    expect(resolveByteRange(header, size)).toEqual({ type: 'unsatisfiable' });
  });

  it.each(['items=0-5', 'bytes=', 'bytes=-', 'bytes=abc', 'bytes=5-2', 'bytes=0-1,5-9', 'bytes=99999999999999999999-'])(
    'ignores %s and serves everything',
    (header) => {
      expect(resolveByteRange(header, size)).toEqual({ type: 'full' });
    },
  );
});

describe('ifRangeAllowsPartial', () => {
  it('allows a range when If-Range is absent or names the current ETag', () => {
    expect(ifRangeAllowsPartial(undefined, '"abc"')).toBe(true);
    expect(ifRangeAllowsPartial('"abc"', '"abc"')).toBe(true);
  });

  it('refuses a range for another ETag or a date', () => {
    expect(ifRangeAllowsPartial('"old"', '"abc"')).toBe(false);
    expect(ifRangeAllowsPartial('Wed, 21 Oct 2015 07:28:00 GMT', '"abc"')).toBe(false);
  });
});
