/**
 * HTTP Range requests for artifact downloads (RFC 9110 §14.1.2, §14.4, §15.5.17).
 *
 * Only a single byte range is served: that is what a device resuming a download sends. A header we
 * cannot or choose not to serve (another unit, bad syntax, several ranges) is ignored and the whole
 * representation is sent (RFC 9110 §14.2 lets a server ignore Range); a well-formed range that lies
 * wholly past the end is answered 416.
 */
export type RangeResolution =
  | { type: 'full' }
  /** inclusive byte positions, as in Content-Range */
  | { type: 'partial'; start: number; end: number }
  | { type: 'unsatisfiable' };

const SINGLE_RANGE = /^(\d*)-(\d*)$/;

export function resolveByteRange(header: string | undefined, size: number): RangeResolution {
  if (header === undefined) return { type: 'full' };
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!match) return { type: 'full' };
  const specs = match[1]
    .split(',')
    .map((spec) => spec.trim())
    .filter((spec) => spec !== '');
  if (specs.length !== 1) return { type: 'full' };
  const parts = SINGLE_RANGE.exec(specs[0]);
  if (!parts || (parts[1] === '' && parts[2] === '')) return { type: 'full' };
  const first = parts[1] === '' ? null : Number(parts[1]);
  const last = parts[2] === '' ? null : Number(parts[2]);
  if ((first !== null && !Number.isSafeInteger(first)) || (last !== null && !Number.isSafeInteger(last))) {
    return { type: 'full' };
  }

  if (first === null) {
    // suffix range: the last N bytes (§14.1.2); "-0" selects nothing
    const length = last as number;
    if (length === 0 || size === 0) return { type: 'unsatisfiable' };
    return { type: 'partial', start: Math.max(0, size - length), end: size - 1 };
  }
  if (last !== null && last < first) return { type: 'full' }; // invalid range-spec: ignore the header
  if (first >= size) return { type: 'unsatisfiable' };
  return { type: 'partial', start: first, end: last === null ? size - 1 : Math.min(last, size - 1) };
}

/**
 * If-Range (RFC 9110 §13.1.5): a range is served only while the client's validator still names the
 * same bytes. We compare strong ETags only; a date validator never matches, which is always safe.
 */
export function ifRangeAllowsPartial(ifRange: string | undefined, etag: string): boolean {
  return ifRange === undefined || ifRange.trim() === etag;
}
