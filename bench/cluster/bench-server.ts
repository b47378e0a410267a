import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';
import type { DeviceSpec } from './sim-protocol';

/** One bench database (created fresh, dropped at the end) on the PostgreSQL of BENCH_DATABASE_URL. */
export class BenchDatabase {
  readonly name = `cowroot_cbench_${randomBytes(4).toString('hex')}`;
  readonly url: string;
  private pool: Pool | null = null;

  private constructor(
    private readonly admin: Client,
    adminUrl: string,
  ) {
    const url = new URL(adminUrl);
    url.pathname = `/${this.name}`;
    this.url = url.toString();
  }

  static async create(adminUrl: string): Promise<BenchDatabase> {
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    const db = new BenchDatabase(admin, adminUrl);
    await admin.query(`CREATE DATABASE ${db.name}`);
    return db;
  }

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    if (!this.pool) {
      this.pool = new Pool({ connectionString: this.url, max: 2 });
      // DROP DATABASE … WITH (FORCE) ends the idle sessions: not an error of the run
      this.pool.on('error', () => undefined);
    }
    return (await this.pool.query(sql, params)).rows as T[];
  }

  async drop(): Promise<void> {
    await this.pool?.end().catch(() => undefined);
    await this.admin.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`).catch(() => undefined);
    await this.admin.end();
  }
}

/** A REST call as the admin; throws with the answer's text on any non-2xx. */
export async function api(
  httpUrl: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${httpUrl}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
}

/**
 * Device i of the bench fleet, tagged `upto-<size>` for every measured size above i, so that the wave timed
 * at a size selects exactly the devices connected at that point.
 */
export function benchDevices(from: number, to: number, sizes: number[]): Array<DeviceSpec & { tags: string[] }> {
  return Array.from({ length: to - from }, (_, k) => {
    const index = from + k;
    return {
      index,
      id: `cb-${String(index).padStart(6, '0')}`,
      credential: randomBytes(24).toString('base64url'),
      tags: ['cb', ...sizes.filter((size) => index < size).map((size) => `upto-${size}`)],
    };
  });
}

/** Provisions through the bulk endpoint, 1000 a call, with the credentials chosen above. */
export async function provision(
  httpUrl: string,
  token: string,
  devices: Array<DeviceSpec & { tags: string[] }>,
): Promise<void> {
  for (let i = 0; i < devices.length; i += 1000) {
    const slice = devices.slice(i, i + 1000).map(({ id, tags, credential }) => ({ id, tags, credential }));
    await api(httpUrl, token, 'POST', '/devices/bulk', { devices: slice });
  }
}

export async function until<T>(what: string, probe: () => Promise<T | null>, timeoutMs: number, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
