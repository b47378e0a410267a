import { connectAsync } from 'mqtt';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { AddressInfo, createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import request from 'supertest';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { waitFor } from '../rollouts/testing/rollout-fixtures';
import { MqttBrokerService } from './mqtt-broker.service';

const run = promisify(execFile);

describe('MQTT listeners', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-mqtt-tls-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('serves mqtts with the configured key and certificate, with the same device authentication', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    let server: TestServer | undefined;
    try {
      server = await startTestServer({ env: { MQTT_TLS_KEY_FILE: key, MQTT_TLS_CERT_FILE: cert, MQTTS_PORT: '0' } });
      const tlsPort = server.app.get(MqttBrokerService).tlsPort;
      expect(tlsPort).toBeGreaterThan(0);
      const created = await request(server.httpUrl)
        .post('/api/v1/devices')
        .set({ Authorization: `Bearer ${server.adminToken}` })
        .send({ id: 'tls-1' })
        .expect(201);
      const ca = await readFile(cert);
      const options = { clientId: 'tls-1', username: 'tls-1', reconnectPeriod: 0, ca, rejectUnauthorized: true };
      const client = await connectAsync(`mqtts://127.0.0.1:${tlsPort}`, {
        ...options,
        password: created.body.credential,
      });
      // the session runs over TLS, verified against the configured certificate, and the server took it as tls-1
      const socket = client.stream as TLSSocket;
      expect(socket.encrypted).toBe(true);
      expect(socket.authorized).toBe(true);
      expect(socket.getPeerCertificate().raw.equals(new X509Certificate(ca).raw)).toBe(true);
      await waitFor(
        async () =>
          (
            await request(server!.httpUrl)
              .get('/api/v1/devices/tls-1')
              .set({ Authorization: `Bearer ${server!.adminToken}` })
              .expect(200)
          ).body.online === true,
        5000,
        'tls-1 online after its mqtts connection',
      );
      await client.endAsync();
      await expect(
        connectAsync(`mqtts://127.0.0.1:${tlsPort}`, { ...options, password: 'wrong' }),
      ).rejects.toMatchObject({ code: 4 });
    } finally {
      await server?.close();
    }
  });

  it('fails to start with an error naming MQTT_PORT when the port is taken', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      await expect(startTestServer({ env: { MQTT_PORT: String(port) } })).rejects.toThrow(
        new RegExp(`MQTT_PORT=${port}: port already in use`),
      );
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
