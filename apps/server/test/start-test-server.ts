import { INestApplication } from '@nestjs/common';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { createApp } from '../src/bootstrap';
import { ServerConfig } from '../src/config/server-config';
import { MqttBrokerService } from '../src/mqtt/mqtt-broker.service';
import { freePort } from '@cowroot/testing/free-port';
import { createTestDatabase, TestDatabase } from './test-database';

export interface TestServer {
  app: INestApplication;
  config: ServerConfig;
  httpUrl: string;
  adminToken: string;
  mqttPort: number;
  dataSource: DataSource;
  dataDir: string;
  /** the database this server uses; pass the server as `reuse` to start another one on it */
  database: TestDatabase;
  /** `keepData`: leave the database and data dir for a server started with `reuse` (which cleans up) */
  close(options?: { keepData?: boolean }): Promise<void>;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  /**
   * Start on the database, data dir and admin token of an earlier server (a restart: close that one with
   * `keepData: true` first; with PostgreSQL it may also still run, as a second replica).
   */
  reuse?: Pick<TestServer, 'database' | 'dataDir' | 'adminToken'>;
  /** embedded PGlite even when TEST_DATABASE_URL names a PostgreSQL (the README's zero-setup default) */
  embedded?: boolean;
}

/**
 * The real server (same bootstrap as main.ts) on loopback with ephemeral ports, a fresh database and a
 * temp data dir. Always `await server.close()` in afterAll/afterEach.
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = options.reuse?.dataDir ?? (await mkdtemp(join(tmpdir(), 'cowroot-server-')));
  const database =
    options.reuse?.database ??
    (options.embedded ? { url: null, drop: async () => undefined } : await createTestDatabase());
  const adminToken = options.reuse?.adminToken ?? `test-admin-${Math.random().toString(36).slice(2)}-token`;
  // the port is fixed before boot so that PUBLIC_URL (artifact URLs in install commands) names it
  const httpPort = await freePort();
  const config = ServerConfig.fromEnv({
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(httpPort),
    PUBLIC_URL: `http://127.0.0.1:${httpPort}`,
    MQTT_HOST: '127.0.0.1',
    MQTT_PORT: '0',
    DATA_DIR: dataDir,
    COWROOT_ADMIN_TOKEN: adminToken,
    LOG_LEVEL: 'warn',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
    ...options.env,
  });
  let handle: Awaited<ReturnType<typeof createApp>> | null = null;
  try {
    handle = await createApp(config);
    await handle.app.listen(httpPort, '127.0.0.1');
    // BROKER=nats: devices connect to the NATS nodes, the server has no MQTT port of its own
    const mqttPort = config.broker === 'embedded' ? handle.app.get(MqttBrokerService).port : -1;
    const server = handle;
    return {
      app: handle.app,
      config,
      httpUrl: `http://127.0.0.1:${httpPort}`,
      adminToken,
      mqttPort,
      dataSource: handle.app.get(DataSource),
      dataDir,
      database,
      async close(closeOptions: { keepData?: boolean } = {}) {
        try {
          await server.close();
        } finally {
          if (closeOptions.keepData) return;
          await database.drop();
          await rm(dataDir, { recursive: true, force: true });
        }
      },
    };
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await database.drop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
