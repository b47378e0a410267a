/* eslint-disable @typescript-eslint/no-explicit-any -- REST answers are read as loose JSON in these tests */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { DASHBOARD_CSP } from './dashboard-static';

jest.setTimeout(60_000);

/** Reads `change` events of an SSE stream until `match` accepts one; the elapsed time is returned. */
async function nextChange(
  url: string,
  cookie: string,
  trigger: () => Promise<unknown>,
  match: (change: { topic: string; ids: string[] | null }) => boolean,
): Promise<number> {
  const abort = new AbortController();
  const response = await fetch(url, { headers: { Cookie: cookie }, signal: abort.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const started = Date.now();
  await trigger();
  try {
    for (;;) {
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no change event')), 5_000));
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error('stream ended');
      buffer += decoder.decode(value, { stream: true });
      for (const block of buffer.split('\n\n').slice(0, -1)) {
        const data = block.split('\n').find((line) => line.startsWith('data: '));
        if (block.includes('event: change') && data && match(JSON.parse(data.slice(6)))) return Date.now() - started;
      }
      buffer = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
    }
  } finally {
    abort.abort();
  }
}

describe('dashboard server pieces (session, CSRF, SSE, summary, preview, static files)', () => {
  let server: TestServer;
  let webDir: string;

  beforeAll(async () => {
    webDir = await mkdtemp(join(tmpdir(), 'cowroot-web-'));
    await mkdir(join(webDir, 'assets'));
    await writeFile(join(webDir, 'index.html'), '<!doctype html><title>cowroot</title><div id="root"></div>');
    await writeFile(join(webDir, 'assets', 'app-abc123.js'), 'console.log(1)');
    server = await startTestServer({ env: { WEB_DIR: webDir } });
  });

  afterAll(async () => {
    await server?.close();
    await rm(webDir, { recursive: true, force: true });
  });

  const bearer = (path: string, init: RequestInit = {}) =>
    fetch(`${server.httpUrl}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/json', ...init.headers },
    });

  async function login(token: string): Promise<{ cookie: string; csrf: string; role: string }> {
    const response = await fetch(`${server.httpUrl}/api/v1/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }),
    });
    expect(response.status).toBe(201);
    const setCookie = response.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^cowroot_session=cws_[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const body = (await response.json()) as any;
    expect(JSON.stringify(body)).not.toContain(token);
    return { cookie: setCookie.split(';')[0], csrf: body.csrfToken, role: body.role };
  }

  async function tokenFor(role: string): Promise<string> {
    const response = await bearer('/api/v1/tokens', { method: 'POST', body: JSON.stringify({ name: role, role }) });
    return ((await response.json()) as any).token;
  }

  it('logs in with a token, refuses a wrong one, and ends the session on logout', async () => {
    const wrong = await fetch(`${server.httpUrl}/api/v1/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: 'cwr_not-a-token' }),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();

    const session = await login(server.adminToken);
    expect(session.role).toBe('admin');
    const me = await fetch(`${server.httpUrl}/api/v1/session`, { headers: { Cookie: session.cookie } });
    expect(((await me.json()) as any).name).toBe('bootstrap-admin');

    const out = await fetch(`${server.httpUrl}/api/v1/session`, {
      method: 'DELETE',
      headers: { Cookie: session.cookie, Origin: server.httpUrl, 'X-CSRF-Token': session.csrf },
    });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    const after = await fetch(`${server.httpUrl}/api/v1/devices`, { headers: { Cookie: session.cookie } });
    expect(after.status).toBe(401);
  });

  it('refuses a cookie request that changes state without the CSRF header or from another Origin', async () => {
    const session = await login(server.adminToken);
    const preview = (headers: Record<string, string>) =>
      fetch(`${server.httpUrl}/api/v1/rollouts/preview`, {
        method: 'POST',
        headers: { Cookie: session.cookie, 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify({ selector: { all: true } }),
      });
    const noHeader = await preview({ Origin: server.httpUrl });
    expect(noHeader.status).toBe(403);
    expect(((await noHeader.json()) as any).error.code).toBe('CSRF_CHECK_FAILED');
    const foreign = await preview({ Origin: 'https://evil.example', 'X-CSRF-Token': session.csrf });
    expect(((await foreign.json()) as any).error.code).toBe('CSRF_CHECK_FAILED');
    const noOrigin = await preview({ 'X-CSRF-Token': session.csrf });
    expect(((await noOrigin.json()) as any).error.code).toBe('CSRF_CHECK_FAILED');
    const wrongToken = await preview({ Origin: server.httpUrl, 'X-CSRF-Token': `${session.csrf}x` });
    expect(((await wrongToken.json()) as any).error.code).toBe('CSRF_CHECK_FAILED');
    const ok = await preview({ Origin: server.httpUrl, 'X-CSRF-Token': session.csrf });
    expect(ok.status).toBe(200);
  });

  it("gives a viewer's session 403 FORBIDDEN on an action, and a revoked token's session 401", async () => {
    const viewerToken = await tokenFor('viewer');
    const viewer = await login(viewerToken);
    const forced = await fetch(`${server.httpUrl}/api/v1/rollouts/00000000-0000-4000-8000-000000000000/pause`, {
      method: 'POST',
      headers: {
        Cookie: viewer.cookie,
        Origin: server.httpUrl,
        'X-CSRF-Token': viewer.csrf,
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ reason: 'forced' }),
    });
    expect(forced.status).toBe(403);
    expect(((await forced.json()) as any).error.code).toBe('FORBIDDEN');
    const tokens = (await (await bearer('/api/v1/tokens')).json()) as any[];
    const id = tokens.find((t) => t.name === 'viewer').id;
    expect((await bearer(`/api/v1/tokens/${id}`, { method: 'DELETE' })).status).toBe(200);
    const after = await fetch(`${server.httpUrl}/api/v1/session`, { headers: { Cookie: viewer.cookie } });
    expect(after.status).toBe(401);
  });

  it('pushes a device change over SSE within 2 s, and the summary and preview count it', async () => {
    const session = await login(server.adminToken);
    const elapsed = await nextChange(
      `${server.httpUrl}/api/v1/events`,
      session.cookie,
      () =>
        bearer('/api/v1/devices/bulk', {
          method: 'POST',
          body: JSON.stringify({
            devices: [
              { id: 'dash-1', tags: ['lab'] },
              { id: 'dash-2', tags: ['lab', 'edge'] },
            ],
          }),
        }),
      (change) => change.topic === 'device' && (change.ids ?? []).includes('dash-2'),
    );
    expect(elapsed).toBeLessThan(2_000);

    const summary = (await (await bearer('/api/v1/fleet/summary')).json()) as any;
    expect(summary.total).toBe(2);
    expect(summary.devices).toEqual([{ status: 'active', online: false, count: 2 }]);
    expect(summary.bootedReleases).toEqual([{ release: null, count: 2 }]);

    await server.dataSource.query(
      `UPDATE devices SET last_seen_at = now() - interval '2 hours', booted_release = 'os@1',
              snapshots = '[{"id":"s1","release":{"name":"os","version":"1"}},{"id":"s2","release":{"name":"os","version":"2"}}]'
        WHERE id = 'dash-1'`,
    );
    await server.dataSource.query(
      `UPDATE devices SET pending_trial = '{"snapshot":"s9","state":"pending"}',
              last_trial_result = '{"snapshot":"s8","outcome":"health-rejected","check":"network"}' WHERE id = 'dash-2'`,
    );
    const attention = ((await (await bearer('/api/v1/fleet/summary')).json()) as any).needsAttention;
    expect(attention.map((a: any) => [a.deviceId, a.reason, a.detail])).toEqual([
      ['dash-2', 'rolled-back', 'health-rejected (network) of s8'],
      ['dash-1', 'offline', 'not heard from for over an hour'],
      ['dash-2', 'pending-trial', 'trial of s9 pending'],
    ]);
    const usage = (await (await bearer('/api/v1/fleet/releases')).json()) as any;
    expect(usage).toEqual([
      { release: 'os@1', running: 1, holding: 1 },
      { release: 'os@2', running: 0, holding: 1 },
    ]);

    const preview = (await (
      await bearer('/api/v1/rollouts/preview', {
        method: 'POST',
        body: JSON.stringify({ selector: { tags: ['edge'] }, release: { name: 'os', version: '1' } }),
      })
    ).json()) as any;
    expect(preview).toEqual({ targeted: 1, alreadyRunning: 0, sample: ['dash-2'] });
    const running = (await (
      await bearer('/api/v1/rollouts/preview', {
        method: 'POST',
        body: JSON.stringify({ selector: { tags: ['lab'] }, release: { name: 'os', version: '1' } }),
      })
    ).json()) as any;
    expect(running).toMatchObject({ targeted: 2, alreadyRunning: 1 });
    const empty = await bearer('/api/v1/rollouts/preview', { method: 'POST', body: JSON.stringify({ selector: {} }) });
    expect(((await empty.json()) as any).error.code).toBe('ROLLOUT_SELECTOR_EMPTY');
  });

  it('serves the app at / with the strict CSP, falls back to index.html, and leaves the API alone', async () => {
    const index = await fetch(`${server.httpUrl}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    expect(DASHBOARD_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(await index.text()).toContain('<div id="root">');
    const deep = await fetch(`${server.httpUrl}/rollouts/some-id`);
    expect(deep.status).toBe(200);
    expect(deep.headers.get('cache-control')).toBe('no-cache');
    const asset = await fetch(`${server.httpUrl}/assets/app-abc123.js`);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect(asset.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    const api = await fetch(`${server.httpUrl}/api/v1/nothing-here`);
    expect(api.status).toBe(404);
    expect(((await api.json()) as any).error.code).toBe('NOT_FOUND');
  });
});

describe('change feed across replicas (PostgreSQL LISTEN/NOTIFY)', () => {
  const url = process.env.TEST_DATABASE_URL;
  (url ? it : it.skip)('a page on replica B sees a change made through replica A', async () => {
    const a = await startTestServer();
    const b = await startTestServer({ reuse: a });
    try {
      const response = await fetch(`${b.httpUrl}/api/v1/session`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token: a.adminToken }),
      });
      const cookie = response.headers.get('set-cookie')!.split(';')[0];
      const elapsed = await nextChange(
        `${b.httpUrl}/api/v1/events`,
        cookie,
        () =>
          fetch(`${a.httpUrl}/api/v1/devices/bulk`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${a.adminToken}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ devices: [{ id: 'replica-1' }] }),
          }),
        (change) => change.topic === 'device' && (change.ids ?? []).includes('replica-1'),
      );
      // NOTIFY wakes B at once: far below the 300 ms poll of PGlite
      expect(elapsed).toBeLessThan(1_000);
    } finally {
      await b.close({ keepData: true });
      await a.close();
    }
  });
});
