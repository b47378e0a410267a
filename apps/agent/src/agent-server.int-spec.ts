import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { TrialOutcome } from '@cowroot/protocol';
import { readSwitchEnv } from '@cowroot/device';
import { describePrivileged, pollUntil, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { startTestServer, TestServer } from '../../server/test/start-test-server';
import { FleetSimulator } from '../../../tools/fleet-sim/src/fleet-simulator';
import { AgentRig, Artifact, BuiltRelease } from './testing/agent-rig';
import { adminApi } from '../../server/test/admin-api';

jest.setTimeout(180_000);

const requirements = [
  requireRoot,
  requireLoopDevices,
  requireCommand('btrfs'),
  requireCommand('fw_setenv'),
  requireCommand('mkenvimage'),
  requireCommand('zstd'),
];

/**
 * End to end against the REAL fleet server (same bootstrap as main.ts): the device is provisioned over
 * the REST API, the agent connects to the server's embedded broker with the issued credential, releases
 * are uploaded with their signed manifests, a rollout sends the install command, and the agent
 * downloads from the server's artifact endpoint with HTTP Basic auth.
 */
describePrivileged('Agent end to end with the real fleet server', requirements, () => {
  let server: TestServer;
  const rig = new AgentRig();
  const deviceId = 'agent-e2e-1';
  let r1: BuiltRelease;
  let r2: BuiltRelease;
  let r3: BuiltRelease;
  let full2: Artifact;
  let full3: Artifact;
  let incr3: Artifact;

  const api = adminApi(() => server);

  async function upload(artifact: Artifact, version: string): Promise<void> {
    const file = artifact.file.split('/').pop()!;
    const response = await fetch(`${server.httpUrl}/api/v1/releases/base/${version}/artifacts/${file}`, {
      method: 'PUT',
      headers: {
        Authorization: `Bearer ${server.adminToken}`,
        'Content-Type': 'application/octet-stream',
        'X-Cowroot-Manifest': artifact.manifest.toString('base64'),
        'X-Cowroot-Signature': artifact.signature,
      },
      body: await readFile(artifact.file),
    });
    if (response.status !== 201) throw new Error(`upload ${file}: HTTP ${response.status} ${await response.text()}`);
  }

  const until = <T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> =>
    pollUntil(what, probe, {
      timeoutMs,
      intervalMs: 100,
      context: () => `agent log tail:\n${rig.logs.slice(-8).join('\n')}`,
    });

  const deviceEvents = async () =>
    ((await api<{ items: Array<Record<string, unknown>> }>('GET', `/devices/${deviceId}/events?limit=200`)).items ??
      []) as Array<Record<string, unknown>>;

  beforeAll(async () => {
    server = await startTestServer();
    const provisioned = await api<{ credential: string }>('POST', '/devices', { id: deviceId, tags: ['agent-e2e'] });
    await rig.setUp({
      server: {
        mqttUrl: `mqtt://127.0.0.1:${server.mqttPort}`,
        httpUrl: server.httpUrl,
        deviceId,
        credential: provisioned.credential,
      },
    });
    await api('POST', '/signing-keys', {
      name: 'agent-e2e',
      publicKeyPem: rig.releaseKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    r1 = await rig.builder.build('r1', { 'boot/uImage': 'k1\n', 'etc/os-release': 'VERSION=1\n' });
    r2 = await rig.builder.build(
      'r2',
      { 'boot/uImage': 'k2\n', 'etc/os-release': 'VERSION=2\n', 'usr/lib/blob': randomBytes(1024 * 1024) },
      r1,
    );
    r3 = await rig.builder.build('r3', { 'etc/os-release': 'VERSION=3\n' }, r2);
    await rig.provision(r1, 'r1');
    full2 = await rig.artifact(r2);
    full3 = await rig.artifact(r3);
    incr3 = await rig.artifact(r3, { parent: r2 });
    for (const [version, artifacts] of [
      ['r2', [full2]],
      ['r3', [full3, incr3]],
    ] as const) {
      await api('POST', '/releases', { name: 'base', version });
      for (const artifact of artifacts) await upload(artifact, version);
    }
    await rig.startAgent();
  });

  afterAll(async () => {
    await rig.tearDown();
    await server?.close();
  });

  async function rollOut(version: string): Promise<string> {
    await until('the device online with its state', async () => {
      const device = await api<{ online?: boolean; bootedSnapshot?: string | null }>('GET', `/devices/${deviceId}`);
      return device.online && device.bootedSnapshot ? device : null;
    });
    const rollout = await api<{ id: string }>('POST', '/rollouts', {
      name: `agent e2e ${version}`,
      release: { name: 'base', version },
      selector: { deviceIds: [deviceId] },
      waves: [{ count: 1, successPercent: 100, timeoutSeconds: 120 }],
    });
    return rollout.id;
  }

  async function playUpdate(rolloutId: string, snapshot: string): Promise<Record<string, unknown>> {
    const reboots = await rig.rebootCount();
    await until('the agent to stage and reboot', async () => (await rig.rebootCount()) > reboots);
    expect(readSwitchEnv(await rig.env.readAll())).toMatchObject({ trial: snapshot, state: 'requested' });
    expect(await rig.reboot()).toEqual({ boot: snapshot, trial: true });
    const done = await until('the rollout to complete', async () => {
      const rollout = await api<{ status: string; counts: Record<string, number> }>('GET', `/rollouts/${rolloutId}`);
      return rollout.status === 'completed' ? rollout : null;
    });
    expect(done.counts).toEqual({ confirmed: 1 });
    await rig.reboot();
    expect(readSwitchEnv(await rig.env.readAll())).toMatchObject({ current: snapshot, result: 'accepted' });
    const executions = (
      await api<{ items: Array<Record<string, unknown>> }>('GET', `/rollouts/${rolloutId}/executions`)
    ).items;
    return executions[0];
  }

  it('rolls out a full release: download from the server, trial, confirmed in the server', async () => {
    const rolloutId = await rollOut('r2');
    const execution = await playUpdate(rolloutId, 'base-r2');
    expect(execution).toMatchObject({ state: 'confirmed', artifact: expect.objectContaining({ kind: 'full' }) });
    // the server recorded the command's whole story, in order: staged with what came over the network
    const events = await deviceEvents();
    const staged = events.find((event) => event.type === 'staged');
    expect(staged?.payload).toMatchObject({ snapshot: 'base-r2', bytesDownloaded: full2.size });
    const story = events
      .filter((event) => event.commandId === staged!.commandId && event.type !== 'progress')
      .sort((a, b) => Number(BigInt(a.seq as string) - BigInt(b.seq as string)))
      .map((event) => event.type);
    expect(story).toEqual(['accepted', 'staged', 'rebooting', 'confirmed']);
    // the snapshot on the device is the published release: its received_uuid is the build host's uuid
    expect(await rig.store.get('base-r2')).toMatchObject({ receivedUuid: r2.uuid, readOnly: true, origin: 'received' });
    // and the server's view after the accepting boot says so (waiting for the report, asserting its content)
    const device = await until('the state after the accepting boot', async () => {
      const value = await api<{
        bootedSnapshot: string;
        trialBoot: boolean;
        fallbackSnapshot: string | null;
        lastTrialResult: unknown;
        snapshots: Array<{ id: string; receivedUuid: string | null }>;
        deltaFormats: number[] | null;
      }>('GET', `/devices/${deviceId}`);
      return value.bootedSnapshot === 'base-r2' && value.trialBoot === false ? value : null;
    });
    // what the server plans delta artifacts by (docs/rollouts.md "Dispatch")
    expect(device.deltaFormats).toEqual([1, 2, 3]);
    expect(device.fallbackSnapshot).toBe('base-r2');
    expect(device.lastTrialResult).toEqual({ snapshot: 'base-r2', outcome: TrialOutcome.Accepted });
    expect(device.snapshots.find((snapshot) => snapshot.id === 'base-r2')).toMatchObject({ receivedUuid: r2.uuid });
  });

  it('rolls out the next release as a delta on the parent the device holds', async () => {
    const requestsBefore = rig.logs.length;
    const rolloutId = await rollOut('r3');
    const execution = await playUpdate(rolloutId, 'base-r3');
    expect(execution).toMatchObject({ state: 'confirmed', artifact: expect.objectContaining({ kind: 'incremental' }) });
    const staged = rig.logs
      .slice(requestsBefore)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.msg === 'event staged');
    expect(staged).toMatchObject({ snapshot: 'base-r3', bytesDownloaded: incr3.size });
    expect(await readFile(`${rig.pool}/snapshots/base-r3/etc/os-release`, 'utf8')).toBe('VERSION=3\n');
    expect(await readFile(`${rig.pool}/snapshots/base-r3/usr/lib/blob`)).toHaveLength(1024 * 1024);
  });

  it('rolls out beside simulated devices: the real agent takes the delta, the simulated ones the full stream', async () => {
    const r4 = await rig.builder.build('r4', { 'etc/os-release': 'VERSION=4\n' }, r3);
    const full4 = await rig.artifact(r4);
    const incr4 = await rig.artifact(r4, { parent: r3 });
    await api('POST', '/releases', { name: 'base', version: 'r4' });
    await upload(full4, 'r4');
    await upload(incr4, 'r4');
    await api('PATCH', `/devices/${deviceId}`, { tags: ['agent-e2e', 'mixed'] });
    // simulated devices really download their stream from the server and check its sha256
    const fleet = new FleetSimulator({
      httpUrl: server.httpUrl,
      token: server.adminToken,
      mqttUrl: `mqtt://127.0.0.1:${server.mqttPort}`,
      count: 3,
      idPrefix: 'mixed-sim',
      tags: ['mixed'],
      device: { rebootMs: 50, realDownload: true },
    });
    await fleet.provision();
    await fleet.connectAll();
    try {
      await until('the real device online at base-r3', async () => {
        const device = await api<{ online?: boolean; bootedSnapshot?: string | null }>('GET', `/devices/${deviceId}`);
        return device.online && device.bootedSnapshot === 'base-r3' ? device : null;
      });
      const rollout = await api<{ id: string }>('POST', '/rollouts', {
        name: 'agent beside simulated devices',
        release: { name: 'base', version: 'r4' },
        selector: { tags: ['mixed'] },
        waves: [{ percent: 100, successPercent: 100, timeoutSeconds: 120 }],
      });
      const reboots = await rig.rebootCount();
      await until('the real agent to stage and reboot', async () => (await rig.rebootCount()) > reboots);
      expect(await rig.reboot()).toEqual({ boot: 'base-r4', trial: true });
      const done = await until('the mixed rollout to complete', async () => {
        const value = await api<{ status: string; counts: Record<string, number> }>('GET', `/rollouts/${rollout.id}`);
        return value.status === 'completed' ? value : null;
      });
      expect(done.counts).toEqual({ confirmed: 4 });
      const executions = (
        await api<{ items: Array<{ deviceId: string; artifact: { kind: string } | null }> }>(
          'GET',
          `/rollouts/${rollout.id}/executions`,
        )
      ).items;
      expect(executions.find((e) => e.deviceId === deviceId)?.artifact?.kind).toBe('incremental');
      expect(executions.filter((e) => e.deviceId !== deviceId).map((e) => e.artifact?.kind)).toEqual([
        'full',
        'full',
        'full',
      ]);
      expect(fleet.devices.map((d) => d.bootedSnapshot)).toEqual(['base-r4', 'base-r4', 'base-r4']);
    } finally {
      await fleet.stopAll();
    }
  });
});
