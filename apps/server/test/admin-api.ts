/* eslint-disable @typescript-eslint/no-explicit-any -- REST answers are read as loose JSON in the tests */

/** Where an admin's REST calls go: a test server, or a replica with the cluster's admin token. */
export interface AdminTarget {
  httpUrl: string;
  adminToken: string;
}

/** `expected`: the statuses that count as an answer (default: any 2xx); anything else throws with the body. */
export type AdminApi = <T = Record<string, any>>(
  method: string,
  path: string,
  body?: unknown,
  expected?: number[],
) => Promise<T>;

/**
 * An operator's JSON calls to `/api/v1` under the admin token, as the integration and cluster tests make
 * them. `target` is read at each call, so a test whose replicas come and go passes a function.
 */
export function adminApi(target: AdminTarget | (() => AdminTarget)): AdminApi {
  return async <T>(method: string, path: string, body?: unknown, expected?: number[]): Promise<T> => {
    const { httpUrl, adminToken } = typeof target === 'function' ? target() : target;
    const response = await fetch(`${httpUrl}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const ok = expected ? expected.includes(response.status) : response.status >= 200 && response.status < 300;
    if (!ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as T;
  };
}
