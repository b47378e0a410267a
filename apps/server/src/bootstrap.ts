import 'reflect-metadata';
import { INestApplication, Logger, LogLevel, ValidationPipe } from '@nestjs/common';
import { NestFactory, Reflector } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module';
import { DomainErrorFilter } from './common/domain-error.filter';
import { RequestInputInterceptor } from './common/request-input.interceptor';
import { LOG_LEVELS, ServerConfig } from './config/server-config';
import { EmbeddedPostgres, startEmbeddedPostgres } from './database/embedded-postgres';
import { buildOpenApiDocument } from './openapi/openapi-document';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootstrapTokenBanner } from './auth/bootstrap-token-banner';
import { TokensService } from './auth/tokens.service';
import { dashboardMiddleware } from './web/dashboard-static';

export interface ServerHandle {
  app: INestApplication;
  /** closes the app (HTTP, MQTT, database pool), then the embedded database if one was started */
  close(): Promise<void>;
}

/** Every level up to and including the configured one. */
function logLevels(config: ServerConfig): LogLevel[] {
  return LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(config.logLevel) + 1) as LogLevel[];
}

/** Builds the fully configured app without listening on HTTP: main.ts and the tests share it. */
export async function createApp(config: ServerConfig): Promise<ServerHandle> {
  let embedded: EmbeddedPostgres | null = null;
  if (!config.databaseUrl) embedded = await startEmbeddedPostgres(join(config.dataDir, 'pglite'));
  let app: NestExpressApplication | null = null;
  try {
    const httpsOptions = config.httpTlsEnabled
      ? { key: await readFile(config.httpTlsKeyFile!), cert: await readFile(config.httpTlsCertFile!) }
      : undefined;
    app = await NestFactory.create<NestExpressApplication>(
      AppModule.forRoot(config, config.databaseUrl ?? embedded!.url),
      // No body-parser middleware: middleware runs before the auth guard, so an unauthenticated client could
      // make the server buffer bodies. RequestInputInterceptor reads them after the guards, per route limit.
      { logger: logLevels(config), bodyParser: false, httpsOptions, abortOnError: false },
    );
    // before Nest's routes: the dashboard's files and its SPA fallback (API paths pass through)
    const dashboard = dashboardMiddleware(config.webDir);
    if (dashboard) app.use(dashboard);
    app.useGlobalInterceptors(new RequestInputInterceptor(app.get(Reflector)));
    app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
    app.useGlobalFilters(new DomainErrorFilter());
    app.enableShutdownHooks();
    const document = buildOpenApiDocument(app);
    SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
    await app.init();
    const ready = app;
    return {
      app: ready,
      async close() {
        await ready.close();
        await embedded?.stop();
      },
    };
  } catch (error) {
    await app?.close().catch(() => undefined);
    await embedded?.stop();
    throw error;
  }
}

/** app.listen with an error that names the variable to change when the port is taken. */
export async function listenHttp(app: INestApplication, config: ServerConfig): Promise<void> {
  // A whole-file artifact upload over a slow link takes longer than Node's 300 s default for a request
  // body; headers still have to arrive within headersTimeout.
  app.getHttpServer().requestTimeout = 0;
  try {
    await app.listen(config.httpPort, config.httpHost);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(
        `HTTP_PORT ${config.httpPort} on ${config.httpHost} is already in use: set HTTP_PORT to a free port`,
      );
    }
    throw error;
  }
}

/**
 * What main.ts runs: build, listen, then, only once the server really is up, make the bootstrap admin token
 * if no admin exists and print it as the very last output (a start that fails on a taken port generates
 * none, so no token is ever lost in a failed start's log).
 */
export async function startServer(
  config: ServerConfig,
  print: (text: string) => void = (text) => process.stdout.write(text),
): Promise<ServerHandle> {
  const server = await createApp(config);
  try {
    await listenHttp(server.app, config);
  } catch (error) {
    await server.close();
    throw error;
  }
  const { port } = server.app.getHttpServer().address() as { port: number };
  const scheme = config.httpTlsEnabled ? 'https' : 'http';
  new Logger('cowroot').log(`REST API on ${scheme}://${config.httpHost}:${port} (docs at /docs)`);
  const token = await server.app.get(TokensService).ensureBootstrapAdmin();
  if (token) print(bootstrapTokenBanner(token));
  return server;
}
