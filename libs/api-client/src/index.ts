import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, operations, paths } from './schema';

// The typed REST client of the fleet server (docs/api.md §Client). schema.ts is generated from
// openapi.json, which is generated from the server's controllers and DTOs: `npm run api:generate`.
export type { components, operations, paths };

export type Schemas = components['schemas'];
/** Every `error.code` the API answers with (apps/server/src/common/domain-error.ts). */
export type ErrorCode = Schemas['ErrorCode'];
/** The body of every error answer. */
export type ErrorResponse = Schemas['ErrorResponseDto'];
export type ApiClient = Client<paths>;

/** An openapi-fetch client whose paths, parameters, bodies and answers are the server's. */
export function createApiClient(options: ClientOptions): ApiClient {
  return createClient<paths>(options);
}
