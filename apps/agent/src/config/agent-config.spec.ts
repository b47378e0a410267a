import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentConfigError, loadAgentConfig, validateAgentConfig } from './agent-config';

describe('agent config', () => {
  let dir: string;
  let valid: Record<string, unknown>;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-config-'));
    for (const sub of ['pool', 'state', 'required.d', 'wanted.d']) await mkdir(join(dir, sub));
    const { publicKey } = generateKeyPairSync('ed25519');
    await writeFile(join(dir, 'release.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(join(dir, 'fw_env.config'), '/dev/null 0x0 0x4000\n');
    await writeFile(join(dir, 'credential'), 'a-long-device-credential\n');
    await writeFile(join(dir, 'cmdline'), 'cowroot.snapshot=r-1 cowroot.trial=0\n');
    valid = {
      deviceId: 'dev-1',
      credentialFile: join(dir, 'credential'),
      server: { mqttUrl: 'mqtt://127.0.0.1:1883', httpUrl: 'http://127.0.0.1:3000' },
      poolPath: join(dir, 'pool'),
      fwEnvConfig: join(dir, 'fw_env.config'),
      releasePublicKeyFile: join(dir, 'release.pub.pem'),
      stateDir: join(dir, 'state'),
      health: { requiredDir: join(dir, 'required.d'), wantedDir: join(dir, 'wanted.d') },
      kernelCmdlinePath: join(dir, 'cmdline'),
    };
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function problemsOf(plain: unknown): string[] {
    try {
      validateAgentConfig(plain);
    } catch (error) {
      expect(error).toBeInstanceOf(AgentConfigError);
      return (error as AgentConfigError).problems;
    }
    throw new Error('expected the config to be refused');
  }

  it('accepts a valid config, reads the credential file and fills the defaults', () => {
    const config = validateAgentConfig(valid);
    expect(config.credential).toBe('a-long-device-credential');
    expect(config.releasePublicKey.asymmetricKeyType).toBe('ed25519');
    expect(config.rebootCommand).toEqual(['systemctl', 'reboot']);
    expect(config.retention).toBe(3);
    expect(config.maintenanceTimezone).toBe('local');
    expect(config.health.checkTimeoutMs).toBe(60_000);
    expect(config.health.mqttConfirmTimeoutMs).toBe(120_000);
    expect(config.download.retries).toBe(5);
  });

  it('lists every problem at once', () => {
    const problems = problemsOf({
      ...valid,
      deviceId: 'bad/id',
      credential: 'inline-credential',
      server: { mqttUrl: 'http://example', httpUrl: 'ftp://example' },
      poolPath: 'relative/pool',
      stateDir: join(dir, 'credential'),
      retention: 0,
      rebootCommand: [],
      maintenanceTimezone: 'Mars/Olympus',
      unexpected: true,
    });
    const text = problems.join('\n');
    for (const expected of [
      'deviceId',
      'exactly one of credential and credentialFile',
      'server.mqttUrl',
      'server.httpUrl',
      'poolPath: must be an absolute path',
      'stateDir',
      'retention',
      'rebootCommand',
      'maintenanceTimezone',
      'unexpected',
    ]) {
      expect(text).toContain(expected);
    }
    expect(problems.length).toBeGreaterThanOrEqual(10);
  });

  it('refuses a release key that is not ed25519', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'release.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    expect(problemsOf(valid).join('\n')).toMatch(/must be ed25519/);
    await writeFile(join(dir, 'release.pub.pem'), 'not a key');
    expect(problemsOf(valid).join('\n')).toMatch(/not a PEM public key/);
  });

  it('accepts mqtts with a CA file and refuses a missing one', async () => {
    await writeFile(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    expect(
      validateAgentConfig({
        ...valid,
        server: {
          mqttUrl: 'mqtts://fleet.example:8883',
          httpUrl: 'https://fleet.example',
          caFile: join(dir, 'ca.pem'),
        },
      }).ca,
    ).not.toBeNull();
    expect(
      problemsOf({
        ...valid,
        server: {
          mqttUrl: 'mqtts://fleet.example:8883',
          httpUrl: 'https://fleet.example',
          caFile: join(dir, 'nope.pem'),
        },
      }).join(),
    ).toMatch(/server.caFile/);
  });

  it('reports a file that is not JSON', async () => {
    await writeFile(join(dir, 'agent.json'), '{ nope');
    expect(() => loadAgentConfig(join(dir, 'agent.json'))).toThrow(/not JSON/);
    await writeFile(join(dir, 'agent.json'), JSON.stringify(valid));
    expect(loadAgentConfig(join(dir, 'agent.json')).deviceId).toBe('dev-1');
  });

  it('pins artifact downloads to the origin of server.httpUrl and requires it', () => {
    const config = validateAgentConfig({
      ...valid,
      server: { mqttUrl: 'mqtts://fleet.example:8883', httpUrl: 'https://fleet.example:443/cowroot/' },
    });
    expect(config.artifactOrigin).toBe('https://fleet.example');
    expect(problemsOf({ ...valid, server: { mqttUrl: 'mqtt://127.0.0.1:1883' } }).join()).toMatch(/server.httpUrl/);
  });
});
