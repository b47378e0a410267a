import { request as httpRequest } from 'node:http';
import request from 'supertest';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { DEFAULT_JSON_BODY_BYTES } from './body-limit.decorator';
import { BULK_BODY_MAX_BYTES } from '../devices/read-bulk-body';

/** Sends only the headers of a POST that announces `declared` bytes; resolves with the answer, if any. */
function headersOnlyPost(
  url: string,
  path: string,
  headers: Record<string, string>,
  declared: number,
): Promise<{ status: number; body: string; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': String(declared), ...headers },
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error('no answer within 3 s: the server is waiting for the body'));
    }, 3000);
    req.on('response', (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode!, body, connection: res.headers.connection });
      });
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.flushHeaders();
    req.write('{"id":');
  });
}

const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('hostile HTTP input', () => {
  let server: TestServer;
  const http = () => request(server.httpUrl);
  const admin = () => ({ Authorization: `Bearer ${server.adminToken}` });

  beforeAll(async () => {
    server = await startTestServer();
    await http().post('/api/v1/devices').set(admin()).send({ id: 'gw-hostile-1' }).expect(201);
  });

  afterAll(async () => {
    await server?.close();
  });

  const expectEnvelope = (
    body: { error?: { code?: string; message?: string; correlationId?: string } },
    code: string,
  ) => {
    expect(body.error).toMatchObject({ code, message: expect.any(String), correlationId: expect.any(String) });
  };

  describe('bodies are read after authentication, within a per-route limit', () => {
    it('answers an unauthenticated POST before its body arrives, and closes the connection', async () => {
      const answer = await headersOnlyPost(server.httpUrl, '/api/v1/devices', {}, 9_900_000);
      expect(answer.status).toBe(401);
      expectEnvelope(JSON.parse(answer.body), 'UNAUTHORIZED');
      expect(answer.connection).toBe('close');
    });

    it('refuses a declared JSON body over the default limit with 413 before reading it', async () => {
      const answer = await headersOnlyPost(server.httpUrl, '/api/v1/devices', admin(), DEFAULT_JSON_BODY_BYTES + 1);
      expect(answer.status).toBe(413);
      expectEnvelope(JSON.parse(answer.body), 'PAYLOAD_TOO_LARGE');
    });

    it('cuts a chunked JSON body off at the limit with 413', async () => {
      const huge = JSON.stringify({ id: 'gw-x', tags: ['a'], pad: 'x'.repeat(DEFAULT_JSON_BODY_BYTES) });
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${server.httpUrl}/api/v1/devices`, {
          method: 'POST',
          headers: { ...admin(), 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
        });
        req.on('response', (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode!, body }));
        });
        req.on('error', reject);
        for (let i = 0; i < huge.length; i += 64 * 1024) req.write(huge.slice(i, i + 64 * 1024));
        req.end();
      });
      expect(res.status).toBe(413);
      expectEnvelope(JSON.parse(res.body), 'PAYLOAD_TOO_LARGE');
    });

    it('refuses bulk provisioning over its own limit with 413, as JSON and as CSV', async () => {
      const rows = Math.ceil(BULK_BODY_MAX_BYTES / 20);
      const json = JSON.stringify({
        devices: Array.from({ length: rows }, (_, i) => ({ id: `gw-bulk-${i}`, tags: ['lab'] })),
      });
      const asJson = await http()
        .post('/api/v1/devices/bulk')
        .set(admin())
        .set('Content-Type', 'application/json')
        .send(json);
      expect(json.length).toBeGreaterThan(BULK_BODY_MAX_BYTES);
      expect(asJson.status).toBe(413);
      expectEnvelope(asJson.body, 'PAYLOAD_TOO_LARGE');
      const csv = 'id,tags\n' + Array.from({ length: rows }, (_, i) => `gw-bulk-${i},lab;field`).join('\n');
      const asCsv = await http().post('/api/v1/devices/bulk').set(admin()).set('Content-Type', 'text/csv').send(csv);
      expect(asCsv.status).toBe(413);
      expectEnvelope(asCsv.body, 'PAYLOAD_TOO_LARGE');
    });

    it('still takes a bulk list under the limit', async () => {
      const res = await http()
        .post('/api/v1/devices/bulk')
        .set(admin())
        .send({ devices: [{ id: 'gw-bulk-ok-1' }, { id: 'gw-bulk-ok-2', tags: ['lab'] }] })
        .expect(201);
      expect(res.body.created).toBe(2);
    });

    it('reads a rollout naming 100,000 device ids (about 3 MB, over the default limit) to its validation', async () => {
      const ids = Array.from({ length: 100_000 }, (_, i) => `gw-none-${String(i).padStart(6, '0')}`);
      const res = await http()
        .post('/api/v1/rollouts')
        .set(admin())
        .send({
          name: 'big',
          release: { name: 'none', version: '1' },
          selector: { deviceIds: ids },
          waves: [{ percent: 100, timeoutSeconds: 600 }],
        });
      expect(JSON.stringify({ ids }).length).toBeGreaterThan(DEFAULT_JSON_BODY_BYTES);
      // past the body limit: the release lookup answers, not a 413
      expect(res.status).not.toBe(413);
      expect(res.body.error.code).toBe('RELEASE_NOT_FOUND');
    });

    it('refuses JSON nested deeper than any DTO with 400', async () => {
      const deep = '['.repeat(100_000) + ']'.repeat(100_000);
      const res = await http().post('/api/v1/tokens').set(admin()).set('Content-Type', 'application/json').send(deep);
      expect(res.status).toBe(400);
      expectEnvelope(res.body, 'INVALID');
    });
  });

  describe('forged cursors, out-of-range numbers and NUL answer 400, never 500', () => {
    // a forged cursor is INVALID_CURSOR (docs/api.md), any other bad value INVALID
    const expect400 = async (path: string) => {
      const res = await http().get(path).set(admin());
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      expectEnvelope(res.body, path.includes('cursor=') ? 'INVALID_CURSOR' : 'INVALID');
    };

    it('releases', async () => {
      await expect400(
        `/api/v1/releases?cursor=${cursor({ createdAt: '2020-01-01T00:00:00.000Z', id: '-'.repeat(36) })}`,
      );
      await expect400(`/api/v1/releases?cursor=${cursor({ createdAt: 'Tue, 01 Dec 99999', id: '0'.repeat(36) })}`);
      await expect400('/api/v1/releases?name=a%00b');
    });

    it('device commands and events', async () => {
      await expect400(
        `/api/v1/devices/gw-hostile-1/commands?cursor=${cursor({ createdAt: '2020-01-01T00:00:00.000Z', id: 'nope' })}`,
      );
      await expect400(`/api/v1/devices/gw-hostile-1/events?cursor=${cursor({ seq: '9999999999999999999' })}`);
      await expect400(`/api/v1/devices?cursor=${cursor({ id: 'a\u0000' })}`);
      await expect400('/api/v1/devices?q=a%00');
      await expect400('/api/v1/devices/gw%00/events');
    });

    it('rollouts', async () => {
      await expect400(`/api/v1/rollouts?cursor=${cursor({ createdAt: 'x', id: 'y' })}`);
      await expect400(`/api/v1/rollouts?cursor=${cursor({ createdAt: '2020-01-01T00:00:00.000Z', id: 'y' })}`);
    });

    it('audit', async () => {
      await expect400(`/api/v1/audit?cursor=${cursor({ id: '99999999999999999999999' })}`);
      await expect400('/api/v1/audit?actorId=a%00b');
      await expect400('/api/v1/audit?from=2020-02-30');
    });

    it('NUL in JSON bodies (strings and keys)', async () => {
      for (const [path, body] of [
        ['/api/v1/tokens', { name: 'a\u0000', role: 'viewer' }],
        ['/api/v1/rollbacks', { tag: 'x', snapshot: 's', reason: 'a\u0000' }],
        ['/api/v1/devices/gw-hostile-1/decommission', { reason: 'a\u0000' }],
        ['/api/v1/tokens', { name: 'ok', role: 'viewer', ['x\u0000']: 1 }],
      ] as const) {
        const res = await http().post(path).set(admin()).send(body);
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
        expectEnvelope(res.body, 'INVALID');
      }
      const csv = await http()
        .post('/api/v1/devices/bulk')
        .set(admin())
        .set('Content-Type', 'text/csv')
        .send('id,tags\ngw-nul,a\u0000b\n');
      expect(csv.status).toBe(400);
      // the device that survived all of it is still active
      const device = await http().get('/api/v1/devices/gw-hostile-1').set(admin()).expect(200);
      expect(device.body.status).toBe('active');
    });
  });
});
