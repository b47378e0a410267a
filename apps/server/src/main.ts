import { Logger } from '@nestjs/common';
import { createApp, listenHttp } from './bootstrap';
import { ConfigError, ServerConfig } from './config/server-config';

async function main(): Promise<void> {
  const config = ServerConfig.fromEnv(process.env);
  const server = await createApp(config);
  const logger = new Logger('cowroot');
  try {
    await listenHttp(server.app, config);
  } catch (error) {
    await server.close();
    throw error;
  }
  const { port } = server.app.getHttpServer().address() as { port: number };
  logger.log(`REST API on http://${config.httpHost}:${port} (docs at /docs)`);
  let closing = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      if (closing) return;
      closing = true;
      logger.log(`${signal}: shutting down`);
      server.close().then(
        () => process.exit(0),
        (error: Error) => {
          logger.error(`shutdown failed: ${error.message}`);
          process.exit(1);
        },
      );
    });
  }
}

main().catch((error: unknown) => {
  console.error(
    error instanceof ConfigError ? error.message : `cowroot server failed to start: ${(error as Error).message}`,
  );
  process.exit(1);
});
