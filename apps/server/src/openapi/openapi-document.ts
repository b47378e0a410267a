import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, getSchemaPath, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from '../app.module';
import { DomainErrorCode } from '../common/domain-error';
import { ERROR_CODES } from '../common/error-codes';
import { ErrorResponseDto } from '../common/error-response.dto';
import { ServerConfig } from '../config/server-config';

/** The server's OpenAPI document, as /docs-json serves it and libs/api-client/openapi.json commits it. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('cowroot fleet server')
      .setDescription('Devices, rootfs releases, rollouts and audit. Operators authenticate with Bearer tokens.')
      .setVersion('1')
      .addBearerAuth({
        type: 'http',
        scheme: 'bearer',
        // API tokens are opaque random secrets (`cwr_` + base64url), looked up by hash; not JWTs
        bearerFormat: 'opaque',
        description: 'an API token `cwr_…` (POST /api/v1/tokens, or the bootstrap admin token)',
      })
      .addCookieAuth(
        'cowroot_session',
        { type: 'apiKey', in: 'cookie', description: 'the dashboard session (POST /api/v1/session)' },
        'cookie',
      )
      .addBasicAuth({ type: 'http', scheme: 'basic', description: 'device id and device credential' }, 'device')
      .build(),
  );
  // Any route can fail unexpectedly; the filter answers that as INTERNAL in the same envelope. Added here
  // once rather than on every controller.
  const internal = ERROR_CODES[DomainErrorCode.Internal];
  const csrf = ERROR_CODES[DomainErrorCode.CsrfCheckFailed];
  for (const operations of Object.values(document.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch'] as const) {
      const operation = operations[method];
      if (!operation) continue;
      // Every authenticated route also takes the dashboard's session cookie (auth.guard.ts), and with it
      // every state-changing one can answer CSRF_CHECK_FAILED.
      if (operation.security?.length) {
        if (!operation.security.some((entry) => 'cookie' in entry)) operation.security.push({ cookie: [] });
        if (method !== 'get') {
          const line = `${DomainErrorCode.CsrfCheckFailed}: ${csrf.meaning}`;
          const existing = operation.responses[String(csrf.status)] as { description?: string } | undefined;
          if (existing && !existing.description?.includes(line)) existing.description += `\n\n${line}`;
          operation.responses[String(csrf.status)] ??= {
            description: line,
            content: { 'application/json': { schema: { $ref: getSchemaPath(ErrorResponseDto) } } },
          };
        }
      }
      operation.responses[String(internal.status)] ??= {
        description: `${DomainErrorCode.Internal}: ${internal.meaning}`,
        content: { 'application/json': { schema: { $ref: getSchemaPath(ErrorResponseDto) } } },
      };
    }
  }
  return document;
}

/**
 * The document without a running server: Nest's preview mode builds the module graph (controllers and
 * their decorators, which is all the document is made of) without instantiating a provider, so nothing
 * connects to a database or opens a port (https://docs.nestjs.com/standalone-applications).
 */
export async function previewOpenApiDocument(): Promise<OpenAPIObject> {
  const app = await createPreviewApp();
  try {
    return buildOpenApiDocument(app);
  } finally {
    await app.close();
  }
}

/** The app in preview mode: controllers and their metadata, no provider instantiated, nothing connected. */
export async function createPreviewApp(): Promise<INestApplication> {
  const config = ServerConfig.fromEnv({});
  return NestFactory.create(AppModule.forRoot(config, 'postgres://preview.invalid/none'), {
    preview: true,
    logger: false,
  });
}
