import { SetMetadata } from '@nestjs/common';

export const BODY_LIMIT_KEY = 'cowroot:body-limit';

/** What a route does with its request body: a JSON body up to `maxBytes`, or the raw stream (uploads). */
export type BodyPolicy = { kind: 'json'; maxBytes: number } | { kind: 'stream' };

/**
 * JSON bodies of routes without @BodyLimit: every operator request that is not a bulk list or an upload
 * (a rollout selector of 20,000 explicit device ids is about 600 KB).
 */
export const DEFAULT_JSON_BODY_BYTES = 1024 * 1024;

/** A JSON body limit of its own for this route (read after authentication, 413 past it). */
export const BodyLimit = (maxBytes: number) => SetMetadata(BODY_LIMIT_KEY, { kind: 'json', maxBytes } as BodyPolicy);

/** The handler reads the request stream itself (with its own limit); nothing is parsed for it. */
export const StreamedBody = () => SetMetadata(BODY_LIMIT_KEY, { kind: 'stream' } as BodyPolicy);
