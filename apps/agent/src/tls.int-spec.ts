import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, Server as TlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { describePrivileged, requireCommand } from '@cowroot/testing';
import { ArtifactDownloader } from './download/artifact-downloader';
import { AgentLogger } from './logger';
import { MqttLink } from './mqtt/mqtt-link';

const run = promisify(execFile);

/** A CA and a server certificate for 127.0.0.1 signed by it (openssl, as an operator would make them). */
async function makeCertificates(dir: string, name: string): Promise<{ ca: Buffer; key: Buffer; cert: Buffer }> {
  const path = (file: string) => join(dir, `${name}-${file}`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ed25519',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name} test CA`,
    '-keyout',
    path('ca.key'),
    '-out',
    path('ca.pem'),
  ]);
  await run('openssl', [
    'req',
    '-newkey',
    'ed25519',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    path('server.key'),
    '-out',
    path('server.csr'),
  ]);
  await writeFile(path('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    path('server.csr'),
    '-CA',
    path('ca.pem'),
    '-CAkey',
    path('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    path('ext.cnf'),
    '-out',
    path('server.pem'),
  ]);
  return {
    ca: await readFile(path('ca.pem')),
    key: await readFile(path('server.key')),
    cert: await readFile(path('server.pem')),
  };
}

/**
 * The agent's two TLS clients with the CA file of its config (`server.caFile`): the MQTT link over
 * mqtts:// and the artifact download over https://. A server whose certificate another CA signed is refused.
 */
describePrivileged('agent TLS: mqtts:// and https:// with the configured CA', [requireCommand('openssl')], () => {
  let dir: string;
  let trusted: { ca: Buffer; key: Buffer; cert: Buffer };
  let stranger: { ca: Buffer };
  let mqttServer: TlsServer;
  let mqttPort: number;
  let closeBroker: () => Promise<void>;
  let https: HttpsServer;
  let httpsPort: number;
  const body = randomBytes(512 * 1024);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-tls-'));
    trusted = await makeCertificates(dir, 'fleet');
    stranger = await makeCertificates(dir, 'stranger');
    const { Aedes } = await import('aedes');
    const broker = await Aedes.createBroker({
      authenticate: (_client, username, password, done) =>
        done(null, username === 'dev-tls' && password?.toString() === 'tls-credential'),
    });
    mqttServer = createTlsServer({ key: trusted.key, cert: trusted.cert }, (socket) => broker.handle(socket));
    await new Promise<void>((resolve) => mqttServer.listen(0, '127.0.0.1', resolve));
    mqttPort = (mqttServer.address() as AddressInfo).port;
    closeBroker = () => new Promise<void>((resolve) => broker.close(() => resolve()));
    https = createHttpsServer({ key: trusted.key, cert: trusted.cert }, (_req, res) => {
      res.writeHead(200, { 'Content-Length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    httpsPort = (https.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await closeBroker?.();
    await new Promise<void>((resolve) => mqttServer?.close(() => resolve()));
    await new Promise<void>((resolve) => https?.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  function link(ca: Buffer, logs: string[]): MqttLink {
    return new MqttLink(
      {
        deviceId: 'dev-tls',
        credential: 'tls-credential',
        url: `mqtts://127.0.0.1:${mqttPort}`,
        ca,
        initialReconnectMs: 200,
      },
      new AgentLogger('dev-tls', (line) => logs.push(line)),
    );
  }

  it('connects over mqtts:// when the configured CA signed the broker certificate', async () => {
    const logs: string[] = [];
    const mqtt = link(trusted.ca, logs);
    mqtt.start();
    try {
      expect(await mqtt.waitForServer(10_000, async () => ({ probe: true }))).toBe(true);
      expect(mqtt.hasConnected).toBe(true);
    } finally {
      await mqtt.stop(true);
    }
  });

  it('refuses a broker whose certificate another CA signed, and keeps retrying', async () => {
    const logs: string[] = [];
    const mqtt = link(stranger.ca, logs);
    mqtt.start();
    try {
      expect(await mqtt.waitForServer(1500, async () => ({ probe: true }))).toBe(false);
      expect(mqtt.hasConnected).toBe(false);
      expect(logs.join('\n')).toMatch(/certificate/i);
    } finally {
      await mqtt.stop(false);
    }
  });

  it('downloads an artifact over https:// with the configured CA, and refuses a stranger', async () => {
    const downloader = new ArtifactDownloader({
      retries: 1,
      initialBackoffMs: 20,
      maxBackoffMs: 50,
      idleTimeoutMs: 2000,
    });
    const request = {
      url: `https://127.0.0.1:${httpsPort}/artifacts/a.zst`,
      allowedOrigin: `https://127.0.0.1:${httpsPort}`,
      expectedSize: body.length,
      username: 'dev-tls',
      password: 'x',
    };
    const result = await downloader.download({ ...request, destination: join(dir, 'ok.part'), ca: trusted.ca });
    expect(result.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    await expect(
      downloader.download({ ...request, destination: join(dir, 'no.part'), ca: stranger.ca }),
    ).rejects.toMatchObject({
      code: 'DOWNLOAD_FAILED',
      message: expect.stringMatching(/certificate/i),
    });
  });
});
