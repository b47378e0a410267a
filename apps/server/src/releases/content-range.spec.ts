import { parseUploadContentRange } from './content-range';

describe('parseUploadContentRange', () => {
  it('is null without a header', () => {
    expect(parseUploadContentRange(undefined)).toBeNull();
  });

  it('reads first, last and total', () => {
    expect(parseUploadContentRange('bytes 0-99/1000')).toEqual({ start: 0, end: 99, total: 1000 });
    expect(parseUploadContentRange('bytes 900-999/1000')).toEqual({ start: 900, end: 999, total: 1000 });
  });

  it.each(['bytes */1000', 'bytes 5-4/1000', 'bytes 0-1000/1000', 'items 0-1/2', 'bytes 0-1/*', 'bytes=0-1/2'])(
    'rejects %s',
    (header) => {
      expect(() => parseUploadContentRange(header)).toThrow('Content-Range');
    },
  );
});
