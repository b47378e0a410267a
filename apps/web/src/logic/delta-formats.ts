import type { Schemas } from '@cowroot/api-client';

/**
 * What the server takes a device to read when its agent never reported `deltaFormats` (an agent older than
 * the field): format 1 only. A copy of the server's UNREPORTED_DELTA_FORMATS
 * (apps/server/src/releases/artifact-picker.ts), which the web app cannot import; the dashboard browser test
 * holds the page's wording to the server's constant.
 */
export const ASSUMED_DELTA_FORMATS: readonly number[] = [1];

/** The device page's "Delta formats": what the agent reported, or what the server assumes when it never did. */
export function deviceDeltaFormats(formats: readonly number[] | null): string {
  if (formats === null) return `never reported: the server assumes format ${ASSUMED_DELTA_FORMATS.join(', ')} only`;
  // an empty list is a report too: the device reads no delta of a named format
  if (formats.length === 0) return 'none';
  return [...formats].sort((a, b) => a - b).join(', ');
}

/**
 * The releases page's "Delta format" cell: a delta's format from its signed manifest; "unspecified" for a manifest
 * written before deltaFormat existed (the server offers such a delta to every device); "–" for other kinds.
 */
export function artifactDeltaFormat(artifact: Pick<Schemas['ArtifactDto'], 'kind' | 'deltaFormat'>): string {
  if (artifact.kind !== 'delta') return '–';
  return artifact.deltaFormat === null ? 'unspecified' : String(artifact.deltaFormat);
}
