import { Logger } from '@nestjs/common';
import { startServer } from './bootstrap';
import { ConfigError, ServerConfig } from './config/server-config';

async function main(): Promise<void> {
  const config = ServerConfig.fromEnv(process.env);
  const server = await startServer(config);
  const logger = new Logger('cowroot');
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
