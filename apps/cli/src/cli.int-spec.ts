import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { request } from 'node:http';
import { AddressInfo, connect, createServer } from 'node:net';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
// The real server through its own test harness (test-only; nothing of the server is bundled into the CLI).
import { startTestServer, TestServer } from '../../server/test/start-test-server';
import { writeFakeRelease } from '../test/fake-release';
import { runCliInProcess } from '../test/run-cli';
import { ExitCode } from './exit-codes';

const run = promisify(execFile);

/** A loopback port nobody listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('cowroot CLI against the real server (in-process runCli; one bundle run via node)', () => {
  let server: TestServer;
  let dir: string;
  let env: Record<string, string>;
  const cli = (...argv: string[]) => runCliInProcess(argv, env);
  const api = async (method: string, path: string, body?: unknown, token = server.adminToken) => {
    const response = await fetch(`${server.httpUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as Record<string, unknown>;
  };

  beforeAll(async () => {
    server = await startTestServer();
    dir = await mkdtemp(join(tmpdir(), 'cowroot-cli-int-'));
    env = { COWROOT_CONFIG: join(dir, 'config.json') };
  });

  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('login', () => {
    it('exits 3 when not logged in, 6 when the server is unreachable', async () => {
      const notLoggedIn = await cli('devices', 'list');
      expect(notLoggedIn.code).toBe(ExitCode.Auth);
      expect(notLoggedIn.stderr).toContain('not logged in');

      const port = await closedPort();
      const unreachable = await cli('login', '--server', `http://127.0.0.1:${port}`, '--token', 'x');
      expect(unreachable.code).toBe(ExitCode.Unreachable);
      expect(unreachable.stderr).toMatch(/cannot reach the server.*ECONNREFUSED/);
    });

    it('refuses a wrong token with exit 3, quoting the server error, and stores nothing', async () => {
      const result = await cli('login', '--server', server.httpUrl, '--token', 'not-a-token');
      expect(result.code).toBe(ExitCode.Auth);
      expect(result.stderr).toMatch(/UNAUTHORIZED \(HTTP 401\): token refused .*\[correlation id cli-[0-9a-f-]+\]/);
      await expect(stat(env.COWROOT_CONFIG)).rejects.toThrow();
    });

    it('checks and stores a good token (mode 0600)', async () => {
      const result = await cli('--json', 'login', '--server', `${server.httpUrl}/`, '--token', server.adminToken);
      expect(result.code).toBe(ExitCode.Ok);
      expect(JSON.parse(result.stdout)).toEqual({ server: server.httpUrl, config: env.COWROOT_CONFIG });
      expect((await stat(env.COWROOT_CONFIG)).mode & 0o777).toBe(0o600);
      expect(JSON.parse(await readFile(env.COWROOT_CONFIG, 'utf8'))).toEqual({
        server: server.httpUrl,
        token: server.adminToken,
      });
    });

    it('a stored token that was revoked exits 3', async () => {
      const created = await api('POST', '/api/v1/tokens', { name: 'short-lived', role: 'viewer' });
      const other = { COWROOT_CONFIG: join(dir, 'revoked.json') };
      expect(
        (await runCliInProcess(['login', '--server', server.httpUrl, '--token', String(created.token)], other)).code,
      ).toBe(ExitCode.Ok);
      await api('DELETE', `/api/v1/tokens/${String(created.id)}`);
      const result = await runCliInProcess(['devices', 'list'], other);
      expect(result.code).toBe(ExitCode.Auth);
      expect(result.stderr).toContain('UNAUTHORIZED');
    });
  });

  describe('devices', () => {
    it('provisions one device and prints its credential once', async () => {
      const result = await cli('--json', 'devices', 'provision', 'gw-0001', '--tag', 'canary', '--tag', 'site=berlin');
      expect(result.code).toBe(ExitCode.Ok);
      const body = JSON.parse(result.stdout);
      expect(body.device).toMatchObject({
        id: 'gw-0001',
        tags: ['canary', 'site=berlin'],
        status: 'active',
        online: false,
      });
      expect(body.credential).toEqual(expect.any(String));

      const plain = await cli('devices', 'provision', 'gw-0002');
      expect(plain.code).toBe(ExitCode.Ok);
      expect(plain.stdout).toMatch(/^gw-0002 \S{20,}\n$/);
      expect(plain.stderr).toContain('shown only now');
    });

    it('exits 5 for a device id that exists, 2 for an id the server rejects', async () => {
      const again = await cli('devices', 'provision', 'gw-0001');
      expect(again.code).toBe(ExitCode.Conflict);
      expect(again.stderr).toMatch(/DEVICE_EXISTS \(HTTP 409\)/);
      const invalid = await cli('devices', 'provision', 'bad id!');
      expect(invalid.code).toBe(ExitCode.Usage);
    });

    it('bulk-provisions from CSV and JSON files; a bad row refuses the whole file with exit 5 and names the line', async () => {
      const csv = join(dir, 'devices.csv');
      await writeFile(
        csv,
        'id,tags,credential\ngw-0100,canary;line-a,\ngw-0101,line-a,factory-credential-0123456789abcdef\n',
      );
      const fromCsv = await cli('--json', 'devices', 'provision', '--file', csv);
      expect(fromCsv.code).toBe(ExitCode.Ok);
      const csvResult = JSON.parse(fromCsv.stdout);
      expect(csvResult.created).toBe(2);
      expect(csvResult.devices.find((d: { id: string }) => d.id === 'gw-0100').credential).toEqual(expect.any(String));

      const json = join(dir, 'devices.json');
      await writeFile(json, JSON.stringify([{ id: 'gw-0200', tags: ['line-b'] }, { id: 'gw-0201' }]));
      const fromJson = await cli('devices', 'provision', '--file', json);
      expect(fromJson.code).toBe(ExitCode.Ok);
      expect(fromJson.stdout.split('\n')[0]).toMatch(/^ID\s+CREDENTIAL$/);
      expect(fromJson.stderr).toContain('provisioned 2 devices');

      const bad = join(dir, 'bad.csv');
      await writeFile(bad, 'id,tags,credential\ngw-0300,,\nnot valid!,,\n');
      const refused = await cli('devices', 'provision', '--file', bad);
      expect(refused.code).toBe(ExitCode.Conflict);
      expect(refused.stderr).toMatch(/bad\.csv:3 /);
      expect((await cli('devices', 'show', 'gw-0300')).code).toBe(ExitCode.NotFound);
    });

    it('lists with filters and follows cursors (--all), tables for people and --json for scripts', async () => {
      const all = await cli('--json', 'devices', 'list', '--all');
      expect(all.code).toBe(ExitCode.Ok);
      const ids = (JSON.parse(all.stdout) as { id: string }[]).map((d) => d.id);
      expect(ids).toEqual(['gw-0001', 'gw-0002', 'gw-0100', 'gw-0101', 'gw-0200', 'gw-0201']);

      const limited = await cli('--json', 'devices', 'list', '--limit', '4');
      expect(JSON.parse(limited.stdout)).toHaveLength(4);
      const table = await cli('devices', 'list', '--limit', '4');
      expect(table.stderr).toContain('more match');

      const canary = await cli('--json', 'devices', 'list', '--tag', 'canary', '--offline');
      expect((JSON.parse(canary.stdout) as { id: string }[]).map((d) => d.id)).toEqual(['gw-0001', 'gw-0100']);
      const query = await cli('devices', 'list', '--query', '020');
      const lines = query.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^ID\s+STATUS\s+ONLINE\s+RELEASE\s+TRIAL\s+TAGS\s+LAST SEEN$/);
      expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual(['gw-0200', 'gw-0201']);
      // the columns line up: every row has its status where the header has STATUS
      const statusColumn = lines[0].indexOf('STATUS');
      expect(lines.slice(1).every((line) => line.slice(statusColumn).startsWith('active'))).toBe(true);
    });

    it('shows, tags and decommissions', async () => {
      const tagged = await cli('--json', 'devices', 'tag', 'gw-0001', '--add', 'wave-1', '--remove', 'site=berlin');
      expect(tagged.code).toBe(ExitCode.Ok);
      expect(JSON.parse(tagged.stdout).tags).toEqual(['canary', 'wave-1']);

      const shown = await cli('devices', 'show', 'gw-0001');
      expect(shown.code).toBe(ExitCode.Ok);
      expect(shown.stdout).toMatch(/^id:\s+gw-0001$/m);
      expect(shown.stdout).toMatch(/^tags:\s+canary,wave-1$/m);

      const missing = await cli('devices', 'show', 'gw-9999');
      expect(missing.code).toBe(ExitCode.NotFound);
      expect(missing.stderr).toMatch(/NOT_FOUND \(HTTP 404\): .*\[correlation id cli-/);

      const usage = await cli('devices', 'decommission', 'gw-0002');
      expect(usage.code).toBe(ExitCode.Usage);
      const gone = await cli('--json', 'devices', 'decommission', 'gw-0002', '--reason', 'RMA 1234');
      expect(gone.code).toBe(ExitCode.Ok);
      expect(JSON.parse(gone.stdout)).toMatchObject({
        id: 'gw-0002',
        status: 'decommissioned',
        decommissionReason: 'RMA 1234',
      });
      const twice = await cli('devices', 'decommission', 'gw-0002', '--reason', 'again');
      expect(twice.code).toBe(ExitCode.Conflict);
    });

    it('a viewer token may list but not provision (403 → exit 3)', async () => {
      const viewer = await api('POST', '/api/v1/tokens', { name: 'viewer', role: 'viewer' });
      const viewerEnv = {
        COWROOT_SERVER: server.httpUrl,
        COWROOT_TOKEN: String(viewer.token),
        COWROOT_CONFIG: join(dir, 'unused.json'),
      };
      expect((await runCliInProcess(['devices', 'list'], viewerEnv)).code).toBe(ExitCode.Ok);
      const refused = await runCliInProcess(['--json', 'devices', 'provision', 'gw-0400'], viewerEnv);
      expect(refused.code).toBe(ExitCode.Auth);
      expect(JSON.parse(refused.stderr).error).toMatchObject({
        status: 403,
        code: 'FORBIDDEN',
        exitCode: ExitCode.Auth,
        correlationId: expect.any(String),
      });
    });
  });

  describe('audit', () => {
    it('queries with filters', async () => {
      const result = await cli('--json', 'audit', 'query', '--action', 'device.*', '--all');
      expect(result.code).toBe(ExitCode.Ok);
      const entries = JSON.parse(result.stdout) as { action: string; subjectId: string; reason: string | null }[];
      expect(entries.length).toBeGreaterThanOrEqual(8);
      expect(entries.every((entry) => entry.action.startsWith('device.'))).toBe(true);
      expect(entries.find((entry) => entry.subjectId === 'gw-0002' && entry.reason === 'RMA 1234')).toBeDefined();

      const table = await cli('audit', 'query', '--subject', 'gw-0002');
      expect(table.stdout.split('\n')[0]).toMatch(/^AT\s+ACTOR\s+ACTION\s+SUBJECT\s+REASON\s+CORRELATION ID$/);
      expect((await cli('audit', 'query', '--from', 'yesterday')).code).toBe(ExitCode.Usage);
    });

    it('exports CSV and JSON to files, streamed, and JSON to stdout', async () => {
      const csvFile = join(dir, 'audit.csv');
      const csv = await cli('audit', 'export', '--format', 'csv', '--out', csvFile, '--subject-type', 'device');
      expect(csv.code).toBe(ExitCode.Ok);
      const csvText = await readFile(csvFile, 'utf8');
      expect(csvText.split('\r\n')[0]).toBe(
        'id,at,actorType,actorId,actorName,action,subjectType,subjectId,before,after,reason,correlationId',
      );
      expect(csvText).toContain('RMA 1234');
      await expect(stat(`${csvFile}.partial`)).rejects.toThrow();

      const jsonFile = join(dir, 'audit.json');
      expect((await cli('audit', 'export', '--format', 'json', '--out', jsonFile)).code).toBe(ExitCode.Ok);
      const exported = JSON.parse(await readFile(jsonFile, 'utf8')) as { action: string }[];
      expect(exported.some((entry) => entry.action === 'device.decommissioned')).toBe(true);

      const toStdout = await cli('audit', 'export', '--action', 'device.decommissioned');
      expect((JSON.parse(toStdout.stdout) as unknown[]).length).toBe(1);
      expect((await cli('audit', 'export', '--format', 'xml')).code).toBe(ExitCode.Usage);
    });
  });

  describe('releases', () => {
    const key = generateKeyPairSync('ed25519');
    const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

    beforeAll(async () => {
      await api('POST', '/api/v1/signing-keys', {
        name: 'cli-test',
        publicKeyPem: key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      });
    });

    it('publishes a full release (creating it), then a release with full + incremental streams in chunks', async () => {
      const base = await writeFakeRelease(join(dir, 'base-1.0'), {
        name: 'base',
        version: '1.0',
        key: key.privateKey,
        size: 200_000,
      });
      const first = await cli('--json', 'releases', 'publish', base.dir, '--chunk-size', '64K');
      expect(first.code).toBe(ExitCode.Ok);
      expect(JSON.parse(first.stdout)).toMatchObject({
        name: 'base',
        version: '1.0',
        releaseCreated: true,
        artifacts: [{ kind: 'full', outcome: 'uploaded', size: 200_000 }],
      });
      expect(first.stderr).toContain('created release base@1.0');
      expect(first.stderr).toMatch(/base-1\.0\.full\.btrfs\.zst\s+\[#+\] 100%/);

      const next = await writeFakeRelease(join(dir, 'base-1.1'), {
        name: 'base',
        version: '1.1',
        key: key.privateKey,
        size: 150_000,
        deltaFrom: { name: 'base', version: '1.0', snapshotUuid: base.snapshotUuid, size: 30_000 },
      });
      const second = await cli('releases', 'publish', next.dir, '--chunk-size', '16K');
      expect(second.code).toBe(ExitCode.Ok);
      expect(second.stdout).toMatch(/^FILE\s+KIND\s+SIZE\s+OUTCOME$/m);
      expect(second.stdout).toContain('published base@1.1 (release created)');

      const shown = await cli('--json', 'releases', 'show', 'base@1.1');
      const release = JSON.parse(shown.stdout) as {
        snapshotUuid: string;
        artifacts: { file: string; kind: string; sha256: string; parent: unknown }[];
      };
      expect(release.snapshotUuid).toBe(next.snapshotUuid);
      expect(release.artifacts.map((a) => [a.kind, a.sha256]).sort()).toEqual(
        Object.entries(next.files)
          .map(([file, data]) => [file.includes('.from-') ? 'incremental' : 'full', sha(data)])
          .sort(),
      );

      const again = await cli('--json', 'releases', 'publish', next.dir);
      expect(again.code).toBe(ExitCode.Ok);
      expect((JSON.parse(again.stdout).artifacts as { outcome: string }[]).map((a) => a.outcome)).toEqual([
        'already-stored',
        'already-stored',
      ]);

      const list = await cli('releases', 'list');
      expect(list.stdout).toMatch(/^NAME\s+VERSION\s+SNAPSHOT UUID\s+CREATED\s+BY\s+DESCRIPTION$/m);
      expect(list.stdout.split('\n').filter((line) => line.startsWith('base ')).length).toBe(2);
      expect((await cli('releases', 'show', 'base', '9.9')).code).toBe(ExitCode.NotFound);
      expect((await cli('releases', 'show', 'no-version')).code).toBe(ExitCode.Usage);
    });

    it('resumes an upload that was cut off, sending only the rest', async () => {
      const release = await writeFakeRelease(join(dir, 'resume-2.0'), {
        name: 'resume',
        version: '2.0',
        key: key.privateKey,
        size: 400_000,
      });
      const file = Object.keys(release.files)[0];
      const data = release.files[file];
      await api('POST', '/api/v1/releases', { name: 'resume', version: '2.0' });
      const path = `/api/v1/releases/resume/2.0/artifacts/${file}`;
      const manifest = await readFile(join(release.dir, `${file}.manifest.json`));
      const signature = (await readFile(join(release.dir, `${file}.manifest.sig`), 'utf8')).trim();

      // a client that dies after 150,000 bytes of a resumable upload: it sends them, waits until the server
      // has written them all to the partial file, and then drops the connection
      const cut = 150_000;
      const serverOffset = async () => Number((await api('GET', `${path}/upload`).catch(() => ({ offset: 0 }))).offset);
      const req = request(`${server.httpUrl}${path}`, {
        method: 'PUT',
        headers: {
          Authorization: `Bearer ${server.adminToken}`,
          'Content-Type': 'application/octet-stream',
          'Content-Length': String(data.length),
          'Content-Range': `bytes 0-${data.length - 1}/${data.length}`,
          'X-Cowroot-Manifest': manifest.toString('base64'),
          'X-Cowroot-Signature': signature,
        },
      });
      const ended = new Promise<void>((resolve) => {
        req.on('error', () => resolve());
        req.on('close', () => resolve());
      });
      req.write(data.subarray(0, cut));
      let offset = 0;
      for (let i = 0; i < 100 && offset !== cut; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        offset = await serverOffset();
      }
      req.destroy();
      await ended;
      expect(offset).toBe(cut);

      const result = await cli('--json', 'releases', 'publish', release.dir, '--chunk-size', '100K');
      expect(result.code).toBe(ExitCode.Ok);
      expect(result.stderr).toContain(`resuming the interrupted upload at byte ${cut} of ${data.length}`);
      expect(JSON.parse(result.stdout).artifacts).toEqual([
        { file, kind: 'full', size: data.length, outcome: 'resumed', resumedAt: cut, bytesSent: data.length - cut },
      ]);

      const download = await fetch(`${server.httpUrl}${path}`, {
        headers: { Authorization: `Bearer ${server.adminToken}` },
      });
      expect(sha(Buffer.from(await download.arrayBuffer()))).toBe(sha(data));
    });

    it('retries a chunk whose connection was cut and continues from the offset the server holds', async () => {
      const release = await writeFakeRelease(join(dir, 'cut-3.0'), {
        name: 'cut',
        version: '3.0',
        key: key.privateKey,
        size: 600_000,
      });
      const data = Object.values(release.files)[0];
      // a loopback TCP relay to the real server that cuts the first artifact upload after 250 kB
      const target = new URL(server.httpUrl);
      let cut = false;
      const relay = createServer((client) => {
        const upstream = connect(Number(target.port), target.hostname);
        let forwarded = 0;
        let isPut: boolean | null = null;
        client.on('data', (chunk: Buffer) => {
          isPut ??= chunk.subarray(0, 4).toString() === 'PUT ';
          forwarded += chunk.length;
          upstream.write(chunk);
          if (isPut && !cut && forwarded > 250_000) {
            cut = true;
            client.destroy();
            upstream.destroy();
          }
        });
        upstream.on('data', (chunk: Buffer) => client.write(chunk));
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
      try {
        const viaRelay = {
          ...env,
          COWROOT_SERVER: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
          COWROOT_TOKEN: server.adminToken,
        };
        const result = await runCliInProcess(
          ['--json', 'releases', 'publish', release.dir, '--chunk-size', '1M'],
          viaRelay,
        );
        expect(cut).toBe(true);
        expect(result.code).toBe(ExitCode.Ok);
        expect(result.stderr).toMatch(/connection lost .*; retrying in/);
        const [artifact] = JSON.parse(result.stdout).artifacts;
        expect(artifact).toMatchObject({ kind: 'full', size: data.length, outcome: 'uploaded' });
        // the retry sent only what the server did not have
        expect(artifact.bytesSent).toBeLessThan(data.length);
      } finally {
        await new Promise<void>((resolve) => relay.close(() => resolve()));
      }
      const download = await fetch(
        `${server.httpUrl}/api/v1/releases/cut/3.0/artifacts/${Object.keys(release.files)[0]}`,
        { headers: { Authorization: `Bearer ${server.adminToken}` } },
      );
      expect(sha(Buffer.from(await download.arrayBuffer()))).toBe(sha(data));
    });

    it('refuses artifacts signed by an unregistered key with exit 5 and a missing directory with exit 2', async () => {
      const stranger = generateKeyPairSync('ed25519');
      const release = await writeFakeRelease(join(dir, 'unsigned-1.0'), {
        name: 'unsigned',
        version: '1.0',
        key: stranger.privateKey,
        size: 1000,
      });
      const refused = await cli('releases', 'publish', release.dir);
      expect(refused.code).toBe(ExitCode.Conflict);
      expect(refused.stderr).toMatch(/SIGNATURE_NOT_VERIFIED \(HTTP 422\): the manifest signature does not verify/);
      expect((await cli('releases', 'publish', join(dir, 'nowhere'))).code).toBe(ExitCode.Usage);
    });
  });

  it("every endpoint the CLI calls is in the server's OpenAPI document (/docs-json)", async () => {
    const document = (await (await fetch(`${server.httpUrl}/docs-json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const used: [string, string][] = [
      ['get', '/api/v1/audit'],
      ['get', '/api/v1/audit/export'],
      ['get', '/api/v1/devices'],
      ['post', '/api/v1/devices'],
      ['post', '/api/v1/devices/bulk'],
      ['get', '/api/v1/devices/{id}'],
      ['patch', '/api/v1/devices/{id}'],
      ['post', '/api/v1/devices/{id}/decommission'],
      ['get', '/api/v1/releases'],
      ['post', '/api/v1/releases'],
      ['get', '/api/v1/releases/{name}/{version}'],
      ['put', '/api/v1/releases/{name}/{version}/artifacts/{file}'],
      ['get', '/api/v1/releases/{name}/{version}/artifacts/{file}/upload'],
      ['get', '/api/v1/rollouts'],
      ['post', '/api/v1/rollouts'],
      ['get', '/api/v1/rollouts/{id}'],
      ['get', '/api/v1/rollouts/{id}/executions'],
      ['get', '/api/v1/rollouts/{id}/timeline'],
      ...(['pause', 'resume', 'cancel', 'approve', 'retry-failed'] as const).map((action): [string, string] => [
        'post',
        `/api/v1/rollouts/{id}/${action}`,
      ]),
      ['post', '/api/v1/rollbacks'],
      ['get', '/api/v1/rollbacks/{id}'],
    ];
    const missing = used
      .filter(([method, path]) => !document.paths[path]?.[method])
      .map(([method, path]) => `${method.toUpperCase()} ${path}`);
    expect(missing).toEqual([]);
  });

  it('the bundle (dist/cowroot.js built by tools/bundle.mjs) runs with plain node and keeps the exit codes', async () => {
    const outfile = join(dir, 'bundle', 'cowroot.js');
    await run(process.execPath, [
      join(__dirname, '../../../tools/bundle.mjs'),
      join(__dirname, 'main.ts'),
      outfile,
      '--executable',
    ]);
    const bundleEnv = { ...process.env, COWROOT_CONFIG: env.COWROOT_CONFIG };
    const { stdout } = await run(process.execPath, [outfile, '--json', 'devices', 'list', '--tag', 'canary'], {
      env: bundleEnv,
    });
    expect((JSON.parse(stdout) as { id: string }[]).map((d) => d.id)).toEqual(['gw-0001', 'gw-0100']);
    const failed = await run(process.execPath, [outfile, 'devices', 'show', 'gw-nope'], { env: bundleEnv }).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect(failed).toMatchObject({ code: ExitCode.NotFound });
    expect((failed as { stderr: string }).stderr).toContain('NOT_FOUND');
  });
});
