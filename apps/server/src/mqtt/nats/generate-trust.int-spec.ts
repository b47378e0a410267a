import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NATS_SERVER_BINARY, natsServerVersion } from '../../../../../tools/nats/nats-server-process';
import { freePort } from '@cowroot/testing/free-port';
import { tempDir } from '../../../../../tools/nats/nats-fixture';
import { startTestServer } from '../../../test/start-test-server';

jest.setTimeout(90_000);

const SCRIPT = resolve(__dirname, '../../../../../deploy/docker/nats/generate-trust.mjs');

/**
 * docs/scale-out.md "Run it": the trust generator, run exactly as documented, writes files that a real
 * nats-server and a BROKER=nats server accept. The node config is the compose one with its container paths and
 * cluster routes swapped for loopback ones (one node here; docker compose itself is not run).
 */
describe('deploy/docker/nats/generate-trust.mjs', () => {
  it('writes a trust chain and node configs that nats-server and the server accept', async () => {
    const tmp = tempDir('cowroot-trust-');
    const nats: { kill(signal: NodeJS.Signals): void }[] = [];
    try {
      mkdirSync(join(tmp.dir, 'deploy/docker/nats'), { recursive: true });
      symlinkSync(SCRIPT, join(tmp.dir, 'deploy/docker/nats/generate-trust.mjs'));
      const command = 'node deploy/docker/nats/generate-trust.mjs deploy/docker/nats/secrets';
      const [bin, ...args] = command.split(' ');
      execFileSync(bin, args, { cwd: tmp.dir, stdio: 'pipe' });
      const secrets = join(tmp.dir, 'deploy/docker/nats/secrets');
      // a second run must not replace the chain the devices' JWTs hang on
      expect(() => execFileSync(bin, args, { cwd: tmp.dir, stdio: 'pipe' })).toThrow(/already holds/);

      const [client, mqtt, http] = [await freePort(), await freePort(), await freePort()];
      const config = readFileSync(join(secrets, 'nats-1.conf'), 'utf8')
        .replace('0.0.0.0:4222', `127.0.0.1:${client}`)
        .replace('0.0.0.0:8222', `127.0.0.1:${http}`)
        .replace('0.0.0.0:1883, stream_replicas: 3', `127.0.0.1:${mqtt}`)
        .replaceAll('/data/', `${tmp.dir}/data/`)
        .replace(/cluster \{[\s\S]*?\n\}\n/, '');
      expect(config).not.toMatch(/0\.0\.0\.0|nats-route/);
      writeFileSync(join(tmp.dir, 'node.conf'), config);
      natsServerVersion();
      const node = spawn(NATS_SERVER_BINARY, ['-c', join(tmp.dir, 'node.conf')], { stdio: 'ignore' });
      nats.push(node);
      for (let i = 0; i < 100; i++) {
        const ok = await fetch(`http://127.0.0.1:${http}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const server = await startTestServer({
        env: {
          BROKER: 'nats',
          NATS_URLS: `nats://127.0.0.1:${client}`,
          NATS_CREDS_FILE: join(secrets, 'server.creds'),
          NATS_SYSTEM_CREDS_FILE: join(secrets, 'system.creds'),
          NATS_ACCOUNT_SEED_FILE: join(secrets, 'account.seed'),
          NATS_ACCOUNT_JWT_FILE: join(secrets, 'account.jwt'),
          NATS_OPERATOR_SEED_FILE: join(secrets, 'operator.seed'),
        },
      });
      try {
        expect((await fetch(`${server.httpUrl}/readyz`)).status).toBe(200);
      } finally {
        await server.close();
      }
    } finally {
      for (const node of nats) node.kill('SIGTERM');
      tmp.remove();
    }
  });
});
