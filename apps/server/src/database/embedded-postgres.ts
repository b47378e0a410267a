import { Logger } from '@nestjs/common';
import { mkdir } from 'node:fs/promises';

export interface EmbeddedPostgres {
  /** a postgres:// URL for the normal pg driver */
  url: string;
  stop(): Promise<void>;
}

/**
 * The zero-setup default: PGlite (PostgreSQL compiled to WASM) kept in `dataDir`, served on a loopback
 * port through pglite-socket so that TypeORM talks to it with the same pg driver and SQL as to a real
 * PostgreSQL. pglite-socket multiplexes client connections onto PGlite's single session and keeps a
 * transaction's statements together, so a small pool works.
 */
export async function startEmbeddedPostgres(dataDir: string, maxConnections = 8): Promise<EmbeddedPostgres> {
  const logger = new Logger('EmbeddedPostgres');
  await mkdir(dataDir, { recursive: true });
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create(dataDir);
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections });
  await server.start();
  const [, port] = server.getServerConn().split(':');
  logger.log(`embedded PostgreSQL (PGlite) in ${dataDir}, serving 127.0.0.1:${port}`);
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
