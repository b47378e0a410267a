import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { startTestServer, TestServer } from '../../test/start-test-server';

const run = promisify(execFile);

/**
 * README "Using the API": the line that provisions gw-0042 sets $DEVICE_CREDENTIAL, which later lines use
 * (the Range download as the device). Runs the README's AUTH/JSON line and that line exactly as written
 * (COWROOT and TOKEN set as its first line asks), and checks the credential it leaves is the device's.
 */
describe('README: where $DEVICE_CREDENTIAL comes from', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  afterAll(async () => {
    await server?.close();
  });

  it('sets it from the provisioning answer, and it is the credential gw-0042 connects with', async () => {
    const readme = readFileSync(resolve(__dirname, '../../../../README.md'), 'utf8');
    const lines = readme.split('\n');
    const auth = lines.find((line) => line.startsWith('AUTH="Authorization: Bearer $TOKEN"'));
    const provision = lines.find((line) => line.startsWith('DEVICE_CREDENTIAL=$(curl'));
    expect(auth).toBeDefined();
    expect(provision).toContain('/api/v1/devices');
    expect(readme).toContain('-u gw-0042:$DEVICE_CREDENTIAL');
    const script = `${auth}\n${provision}\nprintf %s "$DEVICE_CREDENTIAL"`;
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], {
      env: { ...process.env, COWROOT: server.httpUrl, TOKEN: server.adminToken },
    });
    expect(stdout.length).toBeGreaterThanOrEqual(24);
    expect(stdout).not.toBe('null');
    const client = mqtt.connect(`mqtt://127.0.0.1:${server.mqttPort}`, {
      clientId: 'gw-0042',
      username: 'gw-0042',
      password: stdout,
      reconnectPeriod: 0,
    });
    try {
      await new Promise<void>((connected, failed) => {
        client.once('connect', () => connected());
        client.once('error', failed);
      });
    } finally {
      await client.endAsync(true);
    }
  });
});
