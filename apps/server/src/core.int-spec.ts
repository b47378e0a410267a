import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { startTestServer, TestServer } from '../test/start-test-server';

describe('server core', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  const http = () => request(server.httpUrl);
  const admin = () => ({ Authorization: `Bearer ${server.adminToken}` });

  it('answers liveness without a token', async () => {
    await http().get('/healthz').expect(200, { status: 'ok' });
  });

  it('serves the OpenAPI document', async () => {
    const res = await http().get('/docs-json').expect(200);
    expect(res.body.openapi).toMatch(/^3\./);
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/api/v1/tokens', '/api/v1/audit']));
    // the running server's document is the one the client was generated from (built without a database)
    const committed = JSON.parse(await readFile(join(__dirname, '../../../libs/api-client/openapi.json'), 'utf8'));
    expect(res.body).toEqual(committed);
  });

  it('refuses requests without, or with an unknown, token', async () => {
    const missing = await http().get('/api/v1/audit').expect(401);
    expect(missing.body.error).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(missing.body.error.correlationId).toEqual(expect.any(String));
    await http().get('/api/v1/audit').set('Authorization', 'Bearer nope').expect(401);
  });

  it('issues role tokens, enforces roles and audits who did it', async () => {
    const created = await http()
      .post('/api/v1/tokens')
      .set(admin())
      .send({ name: 'viewer-1', role: 'viewer' })
      .expect(201);
    expect(created.body.token).toMatch(/^cwr_[A-Za-z0-9_-]{43}$/); // the pattern CreatedTokenDto documents
    const viewer = { Authorization: `Bearer ${created.body.token}` };
    await http().get('/api/v1/audit').set(viewer).expect(200);
    const forbidden = await http().post('/api/v1/tokens').set(viewer).send({ name: 'x', role: 'admin' }).expect(403);
    expect(forbidden.body.error.code).toBe('FORBIDDEN');

    const listed = await http().get('/api/v1/tokens').set(admin()).expect(200);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.token);

    await http().delete(`/api/v1/tokens/${created.body.id}`).set(admin()).expect(200);
    await http().get('/api/v1/audit').set(viewer).expect(401);

    const audit = await http().get('/api/v1/audit').query({ action: 'token.*' }).set(admin()).expect(200);
    const actions = audit.body.items.map((e: { action: string }) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['token.created', 'token.revoked']));
    const revoked = audit.body.items.find((e: { action: string }) => e.action === 'token.revoked');
    expect(revoked).toMatchObject({ actorType: 'operator', actorName: 'bootstrap-admin', subjectId: created.body.id });
  });

  it('validates bodies with a clear 400', async () => {
    const res = await http()
      .post('/api/v1/tokens')
      .set(admin())
      .send({ name: 'x', role: 'root', extra: 1 })
      .expect(400);
    expect(res.body.error.message).toMatch(/role/);
    expect(res.body.error.message).toMatch(/extra/);
    expect(res.body.error.code).toBe('INVALID');

    // what Nest and the body parser refuse before a controller runs answers the same envelope
    const malformed = await http()
      .post('/api/v1/tokens')
      .set(admin())
      .set('Content-Type', 'application/json')
      .send('{"name":')
      .expect(400);
    expect(malformed.body.error).toMatchObject({ code: 'INVALID', correlationId: expect.any(String) });
    const unknown = await http().get('/api/v1/nothing-here').set(admin()).expect(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
  });

  it('keeps the audit log append-only in the database itself', async () => {
    await expect(server.dataSource.query(`UPDATE audit_log SET action = 'forged'`)).rejects.toThrow(/append-only/);
    await expect(server.dataSource.query(`DELETE FROM audit_log`)).rejects.toThrow(/append-only/);
  });

  it('pages the audit log with a cursor and exports it as CSV and JSON', async () => {
    for (let i = 0; i < 5; i++) {
      await http()
        .post('/api/v1/tokens')
        .set(admin())
        .send({ name: `t${i}`, role: 'viewer' })
        .expect(201);
    }
    const first = await http().get('/api/v1/audit').query({ limit: 2 }).set(admin()).expect(200);
    expect(first.body.items).toHaveLength(2);
    const second = await http()
      .get('/api/v1/audit')
      .query({ limit: 2, cursor: first.body.nextCursor })
      .set(admin())
      .expect(200);
    expect(Number(second.body.items[0].id)).toBeLessThan(Number(first.body.items[1].id));
    await http().get('/api/v1/audit').query({ cursor: 'garbage' }).set(admin()).expect(400);

    const json = await http()
      .get('/api/v1/audit/export')
      .query({ format: 'json', action: 'token.created' })
      .set(admin())
      .expect(200);
    const rows = JSON.parse(json.text);
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(rows.every((r: { action: string }) => r.action === 'token.created')).toBe(true);

    const csv = await http().get('/api/v1/audit/export').query({ format: 'csv' }).set(admin()).expect(200);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe(
      'id,at,actorType,actorId,actorName,action,subjectType,subjectId,before,after,reason,correlationId',
    );
    expect(lines.length).toBeGreaterThan(6);
  });

  it('exposes Prometheus metrics including HTTP latency', async () => {
    const res = await http().get('/metrics').expect(200);
    expect(res.text).toContain('cowroot_http_request_duration_seconds');
  });
});
