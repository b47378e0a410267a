import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { describePrivileged, requireCommand } from '../../../tools/testing/privileged';
import { freePort } from '@cowroot/testing/free-port';
import { createTestDatabase, TestDatabase } from '../test/test-database';
import { ServerHandle, startServer } from './bootstrap';
import { ServerConfig } from './config/server-config';

const run = promisify(execFile);

/** Everything written to stdout and stderr while `work` runs, in order (Nest's logger writes there). */
async function captureOutput<T>(work: () => Promise<T>): Promise<{ result?: T; error?: Error; output: string }> {
  const chunks: string[] = [];
  const spies = [process.stdout, process.stderr].map((stream) =>
    jest.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      chunks.push(chunk.toString());
      return true;
    }),
  );
  try {
    return { result: await work(), output: chunks.join('') };
  } catch (error) {
    return { error: error as Error, output: chunks.join('') };
  } finally {
    spies.forEach((spy) => spy.mockRestore());
  }
}

describe('server start (main.ts)', () => {
  let dataDir: string;
  let database: TestDatabase;
  const handles: ServerHandle[] = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cowroot-start-'));
    database = await createTestDatabase();
  });

  afterEach(async () => {
    await Promise.all(handles.splice(0).map((handle) => handle.close()));
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const configFor = (port: number, env: Record<string, string> = {}) =>
    ServerConfig.fromEnv({
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: '0',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'log',
      ...(database.url ? { DATABASE_URL: database.url } : {}),
      ...env,
    });

  it('prints the generated admin token last, framed, after every route line; a failed start generates none', async () => {
    // the port is taken: the start fails, and no token was made that nobody saw
    const blocker: Server = createServer();
    const taken = await new Promise<number>((resolve) =>
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port)),
    );
    const failed = await captureOutput(() => startServer(configFor(taken)));
    await new Promise((resolve) => blocker.close(resolve));
    expect(failed.error?.message).toMatch(/HTTP_PORT \d+ on 127\.0\.0\.1 is already in use/);
    expect(failed.output).not.toMatch(/cwr_/);

    const port = await freePort();
    const started = await captureOutput(() => startServer(configFor(port)));
    expect(started.error).toBeUndefined();
    handles.push(started.result!);
    const output = started.output.trimEnd();
    expect(output).toMatch(/Mapped \{\/api\/v1\/devices, POST\} route/);
    const lines = output.split('\n');
    const token = output.match(/cwr_[A-Za-z0-9_-]{43}/)?.[0] ?? '';
    expect(token).not.toBe('');
    // the token appears once, in the banner, and the banner closes the output
    expect(output.split(token).length).toBe(2);
    expect(lines[lines.length - 1]).toBe('='.repeat(78));
    const tokenLine = lines.findIndex((line) => line.includes(token));
    expect(lines.slice(tokenLine - 3, tokenLine).join('\n')).toMatch(/BOOTSTRAP ADMIN TOKEN/);
    expect(lines.slice(tokenLine).join('\n')).toMatch(/COWROOT_ADMIN_TOKEN/);
    expect(lines.findIndex((line) => line.includes('Mapped {'))).toBeLessThan(tokenLine);
    await request(`http://127.0.0.1:${port}`).get('/api/v1/tokens').set('Authorization', `Bearer ${token}`).expect(200);
  });

  it('lets an operator who lost the token set one with COWROOT_ADMIN_TOKEN', async () => {
    const first = await captureOutput(() => startServer(configFor(0)));
    await first.result!.close();
    const own = 'my-own-admin-token-0123456789';
    const port = await freePort();
    const second = await captureOutput(() => startServer(configFor(port, { COWROOT_ADMIN_TOKEN: own })));
    handles.push(second.result!);
    expect(second.output).not.toMatch(/cwr_/);
    await request(`http://127.0.0.1:${port}`).get('/api/v1/tokens').set('Authorization', `Bearer ${own}`).expect(200);
  });
});

describePrivileged('server HTTPS listener (HTTP_TLS_KEY_FILE, HTTP_TLS_CERT_FILE)', [requireCommand('openssl')], () => {
  let dir: string;
  let database: TestDatabase;
  let handle: ServerHandle | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-https-'));
    database = await createTestDatabase();
    const path = (file: string) => join(dir, file);
    await run('openssl', [
      ...['req', '-x509', '-newkey', 'ed25519', '-nodes', '-days', '2', '-subj', '/CN=cowroot test CA'],
      ...['-keyout', path('ca.key'), '-out', path('ca.pem')],
    ]);
    await run('openssl', [
      ...['req', '-newkey', 'ed25519', '-nodes', '-subj', '/CN=127.0.0.1'],
      ...['-keyout', path('server.key'), '-out', path('server.csr')],
    ]);
    await writeFile(path('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    await run('openssl', [
      ...['x509', '-req', '-in', path('server.csr'), '-CA', path('ca.pem'), '-CAkey', path('ca.key')],
      ...['-CAcreateserial', '-days', '2', '-extfile', path('ext.cnf'), '-out', path('server.pem')],
    ]);
  });

  afterAll(async () => {
    await handle?.close();
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the REST API over HTTPS only, with the configured certificate', async () => {
    const port = await freePort();
    const config = ServerConfig.fromEnv({
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
      MQTT_HOST: '127.0.0.1',
      MQTT_PORT: '0',
      DATA_DIR: join(dir, 'data'),
      LOG_LEVEL: 'warn',
      COWROOT_ADMIN_TOKEN: 'https-admin-token-0123456789',
      HTTP_TLS_KEY_FILE: join(dir, 'server.key'),
      HTTP_TLS_CERT_FILE: join(dir, 'server.pem'),
      ...(database.url ? { DATABASE_URL: database.url } : {}),
    });
    expect(config.publicUrl).toBe(`https://localhost:${port}`);
    handle = await startServer(config, () => undefined);
    const ca = await readFile(join(dir, 'ca.pem'));
    const body = await new Promise<string>((resolve, reject) => {
      httpsGet(`https://127.0.0.1:${port}/healthz`, { ca }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${text}`));
      }).on('error', reject);
    });
    expect(body).toBe('200 {"status":"ok"}');
    // a client that does not trust the CA is refused, and plain HTTP gets no answer
    await expect(
      new Promise((resolve, reject) => httpsGet(`https://127.0.0.1:${port}/healthz`, resolve).on('error', reject)),
    ).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    await expect(request(`http://127.0.0.1:${port}`).get('/healthz')).rejects.toThrow();
  });
});
