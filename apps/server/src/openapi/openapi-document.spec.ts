import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { OpenAPIObject } from '@nestjs/swagger';
import { DomainErrorCode } from '../common/domain-error';
import { ModulesContainer } from '@nestjs/core';
import { MIN_ROLE_KEY } from '../auth/roles.decorator';
import { PUBLIC_KEY } from '../auth/public.decorator';
import { ALLOW_DEVICES_KEY } from '../auth/allow-devices.decorator';
import { Role } from '../auth/role.enum';
import { buildOpenApiDocument, createPreviewApp } from './openapi-document';
import { serializeOpenApiDocument } from './write-openapi';

const ROOT = resolve(__dirname, '../../../..');
const COMMITTED_DOCUMENT = join(ROOT, 'libs/api-client/openapi.json');
const COMMITTED_SCHEMA = join(ROOT, 'libs/api-client/src/schema.ts');
const REGENERATE = 'the committed API client is stale: run `npm run api:generate` and commit libs/api-client';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** JSON pointers where two documents differ (the first few), so a failure says what changed. */
function differences(a: unknown, b: unknown, path = '', out: string[] = []): string[] {
  if (out.length >= 10) return out;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path || '/');
    return out;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys)
    differences((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${path}/${key}`, out);
  return out;
}

function operations(document: OpenAPIObject) {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method]).map((method) => ({ name: `${method} ${path}`, op: item[method]! })),
  );
}

describe('OpenAPI document', () => {
  let document: OpenAPIObject;
  /** operationId (`<Controller>_<method>`) → the guard's view of the route */
  const routes = new Map<string, { public: boolean; role: Role; devices: boolean }>();
  beforeAll(async () => {
    const app = await createPreviewApp();
    try {
      document = buildOpenApiDocument(app);
      for (const module of app.get(ModulesContainer).values()) {
        for (const { metatype } of module.controllers.values()) {
          const controller = metatype as { name: string; prototype: Record<string, unknown> };
          for (const name of Object.getOwnPropertyNames(controller.prototype)) {
            const handler = controller.prototype[name];
            if (name === 'constructor' || typeof handler !== 'function') continue;
            const meta = <T>(key: string) =>
              (Reflect.getMetadata(key, handler) ?? Reflect.getMetadata(key, controller)) as T | undefined;
            routes.set(`${controller.name}_${name}`, {
              public: meta<boolean>(PUBLIC_KEY) ?? false,
              role: meta<Role>(MIN_ROLE_KEY) ?? Role.Viewer,
              devices: meta<boolean>(ALLOW_DEVICES_KEY) ?? false,
            });
          }
        }
      }
    } finally {
      await app.close();
    }
  });

  it('is the one committed in libs/api-client/openapi.json', async () => {
    const committed = await readFile(COMMITTED_DOCUMENT, 'utf8');
    const changed = differences(JSON.parse(committed), JSON.parse(serializeOpenApiDocument(document)));
    if (changed.length > 0) throw new Error(`${REGENERATE}\ndiffering at: ${changed.join(', ')}`);
    expect(committed).toBe(serializeOpenApiDocument(document));
  });

  it('is what libs/api-client/src/schema.ts was generated from', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cowroot-api-'));
    try {
      const out = join(dir, 'schema.ts');
      // exactly the openapi-typescript step of `npm run api:generate`, written elsewhere
      const script = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).scripts['api:generate'] as string;
      const step = script.split('&&').map((part) => part.trim().split(/\s+/));
      const args = step.find(([command]) => command === 'openapi-typescript')!.slice(1);
      args[args.indexOf('-o') + 1] = out;
      const cli = join(ROOT, 'node_modules/openapi-typescript/bin/cli.js');
      await promisify(execFile)(process.execPath, [cli, ...args], { cwd: ROOT });
      const [expected, committed] = await Promise.all([readFile(out, 'utf8'), readFile(COMMITTED_SCHEMA, 'utf8')]);
      if (expected !== committed) throw new Error(REGENERATE);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('documents a success answer with its schema on every route', () => {
    const missing = operations(document).filter(({ op }) => {
      const success = Object.entries(op.responses).filter(([status]) => status.startsWith('2'));
      if (success.length === 0) return true;
      // 204 has no body; every other success names what it answers
      return success.some(
        ([status, response]) => status !== '204' && !(response && 'content' in response && response.content),
      );
    });
    expect(missing.map(({ name }) => name)).toEqual([]);
  });

  it('documents the error envelope on every error status of every route', () => {
    const wrong: string[] = [];
    for (const { name, op } of operations(document)) {
      const errors = Object.entries(op.responses).filter(([status]) => Number(status) >= 400);
      if (!errors.some(([status]) => status === '500')) wrong.push(`${name}: no 500`);
      const route = routes.get(op.operationId ?? '');
      if (!route) wrong.push(`${name}: no controller method ${op.operationId}`);
      const has = (status: string) => errors.some(([documented]) => documented === status);
      if (route && !route.public && !(has('401') && op.security?.length)) wrong.push(`${name}: no 401 / security`);
      if (route && route.role !== Role.Viewer && !has('403')) wrong.push(`${name}: needs ${route.role}, no 403`);
      // a viewer's cookie session can still be refused 403 CSRF_CHECK_FAILED on a state-changing route
      const onlyCsrf = (op.responses['403'] as { description?: string } | undefined)?.description?.startsWith(
        'CSRF_CHECK_FAILED',
      );
      // a route devices call refuses a device another device's resource (403), whatever the role
      if (
        route &&
        route.role === Role.Viewer &&
        !route.devices &&
        has('403') &&
        !(name.startsWith('get ') ? false : onlyCsrf)
      )
        wrong.push(`${name}: any role may call it, yet 403`);
      for (const [status, response] of errors) {
        const schema = response && 'content' in response ? response.content?.['application/json']?.schema : undefined;
        if (!schema || !('$ref' in schema) || schema.$ref !== '#/components/schemas/ErrorResponseDto')
          wrong.push(`${name}: ${status} without the error envelope`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('lists every domain error code in the ErrorCode schema', () => {
    const schema = document.components?.schemas?.ErrorCode as { enum?: string[] };
    expect(schema.enum).toEqual(Object.values(DomainErrorCode));
  });

  it('describes API tokens as the opaque bearer tokens they are, not JWTs', () => {
    const bearer = document.components?.securitySchemes?.bearer as { scheme: string; bearerFormat?: string };
    expect(bearer.scheme).toBe('bearer');
    expect(bearer.bearerFormat).not.toBe('JWT');
  });
});
