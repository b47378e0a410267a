/** `Content-Range: bytes <first>-<last>/<total>` on a chunk of a resumable upload (RFC 9110 §14.4). */
export interface UploadChunkRange {
  start: number;
  /** inclusive */
  end: number;
  total: number;
}

/** null when the header is absent; throws a message for a malformed one. */
export function parseUploadContentRange(header: string | undefined): UploadChunkRange | null {
  if (header === undefined) return null;
  const match = /^\s*bytes\s+(\d+)-(\d+)\/(\d+)\s*$/i.exec(header);
  if (!match)
    throw new Error(`Content-Range must look like "bytes <first>-<last>/<total>", got ${JSON.stringify(header)}`);
  const [start, end, total] = [match[1], match[2], match[3]].map(Number);
  if (![start, end, total].every(Number.isSafeInteger) || start > end || end >= total) {
    throw new Error(`Content-Range ${JSON.stringify(header)} is not a range inside the total`);
  }
  return { start, end, total };
}
