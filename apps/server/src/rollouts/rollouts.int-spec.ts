import { JobEventType, PROTOCOL_VERSION, DeviceChannel, deviceTopic, encodeMessage } from '@cowroot/protocol';
import { randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import { startTestServer, TestServer } from '../../test/start-test-server';

import { SimOutcome } from '../../../../tools/fleet-sim/src/sim-outcome';

import { SimulatedDevice } from '../../../../tools/fleet-sim/src/simulated-device';
import {
  committedSnapshot,
  provisionDevices,
  receivedSnapshot,
  seedRelease,
  waitFor,
} from './testing/rollout-fixtures';
import { adminApi } from '../../test/admin-api';
import { describeOnBrokers } from '../../test/fleet-brokers';

jest.setTimeout(90_000);

describeOnBrokers('rollouts (real server, simulated devices over real MQTT)', (broker) => {
  let server: TestServer;
  const devices: SimulatedDevice[] = [];

  beforeAll(async () => {
    server = await startTestServer({ env: broker().serverEnv });
  });

  const provision = (specs: Parameters<typeof provisionDevices>[1], rebootMs = 100) =>
    provisionDevices(server, specs, rebootMs, (id, credential) => broker().connection(server, id, credential));

  afterAll(async () => {
    await Promise.all(devices.map((device) => device.stop()));
    await server?.close();
  });

  const api = adminApi(() => server);

  async function fleet(specs: Parameters<typeof provisionDevices>[1], rebootMs = 100): Promise<SimulatedDevice[]> {
    const created = await provision(specs, rebootMs);
    devices.push(...created);
    // a fresh NATS cluster refuses the first MQTT connects while it places the account's $MQTT_ streams
    await Promise.all(
      created.map((device) => (broker().name === 'embedded' ? device.connect() : device.connectRetrying())),
    );
    // the state reports must be stored before a rollout plans with them
    await waitFor(
      async () => {
        const rows = (await server.dataSource.query(
          `SELECT count(*)::int AS n FROM devices WHERE id = ANY ($1) AND booted_snapshot IS NOT NULL`,
          [created.map((d) => d.id)],
        )) as { n: number }[];
        return rows[0].n === created.length;
      },
      10_000,
      'state reports',
    );
    return created;
  }

  const rolloutStatus = (id: string, status: string) =>
    waitFor(
      async () => {
        const rollout = await api('GET', `/rollouts/${id}`);
        return rollout.status === status ? rollout : null;
      },
      45_000,
      `rollout ${id} ${status}`,
    );

  it('advances a canary that meets its criterion wave by wave to completion', async () => {
    await seedRelease(server.dataSource, { name: 'canary-os', version: '2' });
    await fleet(Array.from({ length: 6 }, (_, i) => ({ id: `canary-${i}`, tags: ['canary-fleet'] })));
    const created = await api('POST', '/rollouts', {
      name: 'canary ok',
      release: { name: 'canary-os', version: '2' },
      selector: { tags: ['canary-fleet'] },
      waves: [
        { count: 1, successPercent: 100, timeoutSeconds: 20, soakSeconds: 1 },
        { percent: 50, successPercent: 100, timeoutSeconds: 20 },
        { percent: 100, successPercent: 80, timeoutSeconds: 20 },
      ],
    });
    expect(created.waves.map((w: { total: number }) => w.total)).toEqual([1, 2, 3]);
    expect(created.counts).toEqual({ queued: 6 });

    const done = await rolloutStatus(created.id, 'completed');
    expect(done.counts).toEqual({ confirmed: 6 });
    expect(done.waves.map((w: { status: string }) => w.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);

    // wave by wave: nobody of a later wave got a command before the earlier wave had all its outcomes
    const executions = (await api('GET', `/rollouts/${created.id}/executions`)).items as {
      wave: number;
      dispatchedAt: string;
      finishedAt: string;
      artifact: { kind: string };
    }[];
    for (const later of executions) {
      for (const earlier of executions.filter((e) => e.wave < later.wave)) {
        expect(Date.parse(later.dispatchedAt)).toBeGreaterThanOrEqual(Date.parse(earlier.finishedAt));
      }
    }
    expect(executions.every((e) => e.artifact.kind === 'full')).toBe(true);

    const timeline = await api<Array<{ action: string; subjectType: string }>>(
      'GET',
      `/rollouts/${created.id}/timeline`,
    );
    const actions = timeline.map((entry) => entry.action);
    expect(actions.filter((a) => a === 'rollout.wave.started')).toHaveLength(3);
    expect(actions.filter((a) => a === 'rollout.execution.dispatched')).toHaveLength(6);
    expect(actions.filter((a) => a === 'rollout.execution.confirmed')).toHaveLength(6);
    expect(actions[0]).toBe('rollout.created');
    expect(actions[actions.length - 1]).toBe('rollout.completed');

    // a remote rollback of the rollout: each confirmed device back to the snapshot it came from
    const rollback = await api('POST', '/rollbacks', { rolloutId: created.id, reason: 'back out canary' });
    expect(rollback.devices).toHaveLength(6);
    expect(
      rollback.devices.every(
        (d: { state: string; snapshot: string }) => d.state === 'notified' && d.snapshot === 'factory',
      ),
    ).toBe(true);
    await waitFor(
      async () =>
        (await api('GET', `/rollbacks/${rollback.id}`)).devices.every(
          (d: { state: string }) => d.state === 'confirmed',
        ),
      30_000,
      'rollout rolled back',
    );
    const missing = await api('POST', '/rollbacks', { rolloutId: randomUUID() }, [404]);
    expect(missing.error.code).toBe('ROLLOUT_NOT_FOUND');
  });

  it('stops a failing canary at the abort threshold with exact counts and switches confirmed devices back', async () => {
    await seedRelease(server.dataSource, { name: 'bad-os', version: '2' });
    const outcomes = [SimOutcome.Confirm, SimOutcome.HealthReject, SimOutcome.Confirm, SimOutcome.HealthReject];
    const sims = await fleet(
      Array.from({ length: 8 }, (_, i) => ({
        id: `bad-${i}`,
        tags: ['bad-fleet'],
        outcome: outcomes[i] ?? SimOutcome.Confirm,
      })),
    );
    const created = await api('POST', '/rollouts', {
      name: 'canary bad',
      release: { name: 'bad-os', version: '2' },
      selector: { tags: ['bad-fleet'] },
      randomize: false,
      waves: [
        { count: 4, successPercent: 100, timeoutSeconds: 20 },
        { percent: 100, timeoutSeconds: 20 },
      ],
      abortRules: [{ kind: 'health-check', thresholdPercent: 50, minExecuted: 4, action: 'revert' }],
    });
    const aborted = await rolloutStatus(created.id, 'aborted');
    expect(aborted.counts).toEqual({ confirmed: 2, 'rejected-by-health-check': 2, canceled: 4 });
    expect(aborted.statusReason).toContain('2 of 4');

    // the two devices that confirmed get a switch back to where they came from, without a download
    await waitFor(
      async () => {
        const page = await api('GET', `/rollouts/${created.id}/executions?state=confirmed`);
        return page.items.every((e: { revert: { state: string } | null }) => e.revert?.state === 'confirmed')
          ? page
          : null;
      },
      30_000,
      'reverts confirmed',
    );
    for (const id of ['bad-0', 'bad-2']) {
      expect(sims.find((d) => d.id === id)!.bootedSnapshot).toBe('factory');
      const [{ types }] = (await server.dataSource.query(
        `SELECT array_agg(type ORDER BY created_at) AS types FROM device_commands WHERE device_id = $1`,
        [id],
      )) as { types: string[] }[];
      expect(types).toEqual(['install', 'switch']);
    }
    const untouched = (await server.dataSource.query(
      `SELECT count(*)::int AS n FROM device_commands WHERE device_id = ANY ($1)`,
      [['bad-4', 'bad-5', 'bad-6', 'bad-7']],
    )) as { n: number }[];
    expect(untouched[0].n).toBe(0);
    const rejected = await api('GET', `/rollouts/${created.id}/executions/bad-1`);
    expect(rejected.state).toBe('rejected-by-health-check');
    expect(rejected.history.map((h: { to: string }) => h.to)).toEqual(
      expect.arrayContaining(['queued', 'notified', 'rejected-by-health-check']),
    );
    const audit = await api(
      'GET',
      `/audit?subjectType=device&subjectId=bad-1&action=rollout.execution.rejected-by-health-check`,
    );
    expect(audit.items).toHaveLength(1);
    expect(audit.items[0].after).toMatchObject({ rolloutId: created.id, error: { code: 'HEALTH_CHECK_FAILED' } });
  });

  it('pauses on a pause rule and resumes to completion', async () => {
    await seedRelease(server.dataSource, { name: 'pause-os', version: '2' });
    await fleet(
      Array.from({ length: 4 }, (_, i) => ({
        id: `pause-${i}`,
        tags: ['pause-fleet'],
        outcome: i === 0 ? SimOutcome.BootloaderFallback : SimOutcome.Confirm,
      })),
    );
    const created = await api('POST', '/rollouts', {
      name: 'pause rule',
      release: { name: 'pause-os', version: '2' },
      selector: { tags: ['pause-fleet'] },
      randomize: false,
      waves: [
        { count: 2, successPercent: 50, timeoutSeconds: 20 },
        { percent: 100, timeoutSeconds: 20 },
      ],
      abortRules: [{ kind: 'bootloader', thresholdPercent: 50, minExecuted: 2, action: 'pause' }],
    });
    const paused = await rolloutStatus(created.id, 'paused');
    expect(paused.counts).toEqual({ 'rolled-back-by-bootloader': 1, confirmed: 1, queued: 2 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await api('GET', `/rollouts/${created.id}`)).counts.queued).toBe(2);

    expect((await api('POST', `/rollouts/${created.id}/pause`, {}, [422])).error).toMatchObject({
      code: 'ROLLOUT_NOT_RUNNING',
      details: { status: 'paused' },
    });
    await api('POST', `/rollouts/${created.id}/resume`, { reason: 'known flaky canary' });
    const done = await rolloutStatus(created.id, 'completed');
    expect(done.counts).toEqual({ 'rolled-back-by-bootloader': 1, confirmed: 3 });

    // retry failed devices only: the fallen-back device is offered the release again
    const retried = await api('POST', `/rollouts/${created.id}/retry-failed`, {});
    expect(retried.counts).toMatchObject({ queued: 1, confirmed: 3 });
  });

  it('waits for a manual approval, limits the dispatch rate, and cancels what is not dispatched', async () => {
    await seedRelease(server.dataSource, { name: 'gate-os', version: '2' });
    await fleet(Array.from({ length: 5 }, (_, i) => ({ id: `gate-${i}`, tags: ['gate'] })));
    const created = await api('POST', '/rollouts', {
      name: 'gated',
      release: { name: 'gate-os', version: '2' },
      selector: { tags: ['gate'] },
      dispatchPerMinute: 2,
      waves: [
        { count: 1, timeoutSeconds: 20 },
        { percent: 100, timeoutSeconds: 20, requiresApproval: true },
      ],
    });
    const waiting = await waitFor(
      async () => {
        const rollout = await api('GET', `/rollouts/${created.id}`);
        return rollout.waves[1].status === 'awaiting-approval' ? rollout : null;
      },
      20_000,
      'second wave awaiting approval',
    );
    expect(waiting.counts).toEqual({ confirmed: 1, queued: 4 });
    await api('POST', `/rollouts/${created.id}/approve`, { reason: 'canary looks good' });
    // 2 per minute: the canary used one, so one more now and the rest only after a minute
    await waitFor(
      async () => (await api('GET', `/rollouts/${created.id}`)).counts.confirmed === 2,
      20_000,
      'second device',
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await api('GET', `/rollouts/${created.id}`)).counts).toEqual({ confirmed: 2, queued: 3 });
    const canceled = await api('POST', `/rollouts/${created.id}/cancel`, { reason: 'enough for today' });
    expect(canceled).toMatchObject({ status: 'canceled', counts: { confirmed: 2, canceled: 3 } });
    expect((await api('POST', `/rollouts/${created.id}/resume`, {}, [422])).error.code).toBe('ROLLOUT_FINISHED');
    const timeline = await api<Array<{ action: string; actor: { name: string }; reason: string | null }>>(
      'GET',
      `/rollouts/${created.id}/timeline`,
    );
    expect(timeline.find((e) => e.action === 'rollout.wave.approved')).toMatchObject({ reason: 'canary looks good' });
    expect(timeline.find((e) => e.action === 'rollout.canceled')).toMatchObject({ reason: 'enough for today' });
  });

  it('plans each device its artifact: incremental from a held parent, full after a local commit, a switch when it holds the release, a delta only in a format the device reads', async () => {
    const v1 = await seedRelease(server.dataSource, { name: 'delta-os', version: '1' });
    const other = randomUUID();
    const v2 = await seedRelease(server.dataSource, {
      name: 'delta-os',
      version: '2',
      parents: [
        { version: '1', snapshotUuid: v1.snapshotUuid, deltaFormat: 3 },
        { version: '0', snapshotUuid: other },
      ],
    });
    const holdsV1 = () => [receivedSnapshot('delta-os-1', v1.snapshotUuid, { name: 'delta-os', version: '1' })];
    await fleet([
      // never reports its delta formats (an older agent): only format 1 deltas, so the plain incremental
      { id: 'delta-parent', tags: ['delta'], snapshots: holdsV1() },
      // reads formats 1 and 2 (an agent that predates format 3): the plain incremental, not the format-3 delta
      { id: 'delta-reads-2', tags: ['delta'], snapshots: holdsV1(), deltaFormats: [1, 2] },
      { id: 'delta-reads-3', tags: ['delta'], snapshots: holdsV1(), deltaFormats: [1, 2, 3] },
      { id: 'delta-committed', tags: ['delta'], snapshots: [committedSnapshot('local-edit')] },
      {
        id: 'delta-holds',
        tags: ['delta'],
        snapshots: [
          committedSnapshot('local-edit'),
          receivedSnapshot('delta-os-2', v2.snapshotUuid, { name: 'delta-os', version: '2' }),
        ],
      },
    ]);
    const created = await api('POST', '/rollouts', {
      name: 'delta',
      release: { name: 'delta-os', version: '2' },
      selector: { tags: ['delta'] },
      waves: [{ percent: 100, timeoutSeconds: 20 }],
    });
    const done = await rolloutStatus(created.id, 'completed');
    expect(done.counts).toEqual({ confirmed: 5 });
    const byDevice = async (id: string) => api('GET', `/rollouts/${created.id}/executions/${id}`);
    const parent = await byDevice('delta-parent');
    expect(parent.artifact).toMatchObject({
      kind: 'incremental',
      file: 'delta-os-2.from-1.btrfs.zst',
      bytes: 5_000_000,
    });
    expect(parent.artifact.id).toBe(v2.artifacts['delta-os-2.from-1.btrfs.zst']);
    expect((await byDevice('delta-reads-2')).artifact).toMatchObject({ kind: 'incremental', bytes: 5_000_000 });
    expect((await byDevice('delta-reads-3')).artifact).toMatchObject({
      kind: 'delta',
      file: 'delta-os-2.from-1.delta.zst',
    });
    const committed = await byDevice('delta-committed');
    expect(committed.artifact).toMatchObject({ kind: 'full', file: 'delta-os-2.full.btrfs.zst', bytes: 100_000_000 });
    const holds = await byDevice('delta-holds');
    expect(holds).toMatchObject({
      commandType: 'switch',
      targetSnapshot: 'delta-os-2',
      artifact: { kind: null, bytes: 0 },
    });
  });

  it('continuous mode: a device registered later, and one tagged later, join and are updated', async () => {
    await seedRelease(server.dataSource, { name: 'cont-os', version: '2' });
    await fleet([
      { id: 'cont-0', tags: ['cont'] },
      { id: 'cont-1', tags: ['cont'] },
    ]);
    const created = await api('POST', '/rollouts', {
      name: 'continuous',
      release: { name: 'cont-os', version: '2' },
      selector: { tags: ['cont'] },
      continuous: true,
      waves: [{ percent: 100, timeoutSeconds: 20 }],
    });
    await waitFor(
      async () => (await api('GET', `/rollouts/${created.id}`)).counts.confirmed === 2,
      30_000,
      'first two confirmed',
    );
    await fleet([{ id: 'cont-late', tags: ['cont'] }]);
    const after = await waitFor(
      async () => {
        const rollout = await api('GET', `/rollouts/${created.id}`);
        return rollout.counts.confirmed === 3 ? rollout : null;
      },
      30_000,
      'late device confirmed',
    );
    expect(after.status).toBe('running');
    // a tag change makes a device match too
    await fleet([{ id: 'cont-retagged', tags: ['other'] }]);
    await api('PATCH', '/devices/cont-retagged', { tags: ['other', 'cont'] });
    await waitFor(
      async () => (await api('GET', `/rollouts/${created.id}`)).counts.confirmed === 4,
      30_000,
      'retagged device confirmed',
    );
    const timeline = await api<Array<{ action: string; after: { devices?: string[] } }>>(
      'GET',
      `/rollouts/${created.id}/timeline`,
    );
    expect(timeline.filter((e) => e.action === 'rollout.devices-joined').map((e) => e.after.devices)).toEqual([
      ['cont-late'],
      ['cont-retagged'],
    ]);
  });

  it('gives a device targeted by two rollouts one command at a time', async () => {
    await seedRelease(server.dataSource, { name: 'two-os', version: '2' });
    await seedRelease(server.dataSource, { name: 'two-os', version: '3' });
    const [device] = await fleet([{ id: 'two-0', tags: ['two'] }], 1000);
    const body = (version: string) => ({
      name: `two ${version}`,
      release: { name: 'two-os', version },
      selector: { deviceIds: ['two-0'] },
      waves: [{ count: 1, timeoutSeconds: 30 }],
    });
    const first = await api('POST', '/rollouts', body('2'));
    const second = await api('POST', '/rollouts', body('3'));
    await rolloutStatus(first.id, 'completed');
    await rolloutStatus(second.id, 'completed');
    const a = await api('GET', `/rollouts/${first.id}/executions/two-0`);
    const b = await api('GET', `/rollouts/${second.id}/executions/two-0`);
    expect([a.state, b.state]).toEqual(['confirmed', 'confirmed']);
    expect(Date.parse(b.dispatchedAt)).toBeGreaterThanOrEqual(Date.parse(a.finishedAt));
    expect(device.bootedSnapshot).toBe('two-os-3');
  });

  it('counts duplicated, late and out-of-order events once', async () => {
    await seedRelease(server.dataSource, { name: 'dup-os', version: '2' });
    const [sim] = await provision([{ id: 'dup-0', tags: ['dup'] }]);
    // a hand-driven device: receives the command, then reports events in a hostile order
    const credential = (sim as unknown as { options: { credential: string } }).options.credential;
    const login = await broker().login(server, 'dup-0', credential);
    const client = await mqtt.connectAsync(login.url, {
      clientId: 'dup-0',
      username: 'dup-0',
      password: login.password,
      reconnectPeriod: 0,
    });
    try {
      const commandIds: string[] = [];
      client.on('message', (_topic, payload) => commandIds.push(JSON.parse(payload.toString()).commandId));
      await client.subscribeAsync(deviceTopic('dup-0', DeviceChannel.Commands), { qos: 1 });
      const created = await api('POST', '/rollouts', {
        name: 'dup',
        release: { name: 'dup-os', version: '2' },
        selector: { deviceIds: ['dup-0'] },
        waves: [{ count: 1, timeoutSeconds: 30 }],
      });
      const [commandId] = await waitFor(async () => (commandIds.length ? commandIds : null), 10_000, 'install command');
      const event = (type: JobEventType, extra: Record<string, unknown> = {}, eventId = randomUUID()) =>
        client.publishAsync(
          deviceTopic('dup-0', DeviceChannel.Events),
          encodeMessage({ v: PROTOCOL_VERSION, commandId, eventId, type, at: new Date().toISOString(), ...extra }),
          { qos: 1 },
        );
      const confirmedId = randomUUID();
      await event(JobEventType.Accepted);
      await event(JobEventType.Confirmed, { snapshot: 'dup-os-2' }, confirmedId);
      await event(JobEventType.Confirmed, { snapshot: 'dup-os-2' }, confirmedId); // QoS 1 redelivery
      await event(JobEventType.Confirmed, { snapshot: 'dup-os-2' }); // the agent said it twice
      await event(JobEventType.Staged, { snapshot: 'dup-os-2' }); // late
      await event(JobEventType.Progress, { progress: { phase: 'download', bytesDone: 1 } }); // later still
      await event(JobEventType.Failed, { error: { code: 'DOWNLOAD_FAILED', message: 'late nonsense' } });
      const done = await rolloutStatus(created.id, 'completed');
      await new Promise((resolve) => setTimeout(resolve, 1500)); // let the engine see everything
      expect((await api('GET', `/rollouts/${created.id}`)).counts).toEqual({ confirmed: 1 });
      expect(done.waves[0].verdict).toMatchObject({ confirmed: 1, considered: 1 });
      const execution = await api('GET', `/rollouts/${created.id}/executions/dup-0`);
      expect(execution.history.map((h: { to: string }) => h.to)).toEqual(['queued', 'notified', 'confirmed']);
      const audit = await api('GET', `/audit?subjectType=device&subjectId=dup-0&action=rollout.execution.*`);
      expect(audit.items.map((e: { action: string }) => e.action).sort()).toEqual([
        'rollout.execution.confirmed',
        'rollout.execution.dispatched',
      ]);
    } finally {
      await client.endAsync(true);
    }
  });

  it('catches up an event that committed behind the engine cursor', async () => {
    await seedRelease(server.dataSource, { name: 'late-os', version: '2' });
    await provision([{ id: 'late-0', tags: ['late'] }]);
    const created = await api('POST', '/rollouts', {
      name: 'late',
      release: { name: 'late-os', version: '2' },
      selector: { deviceIds: ['late-0'] },
      waves: [{ count: 1, timeoutSeconds: 60 }],
    });
    const { commandId } = await waitFor(
      async () => {
        const execution = await api('GET', `/rollouts/${created.id}/executions/late-0`);
        return execution.commandId ? execution : null;
      },
      10_000,
      'command recorded',
    );
    // the event commits with the cursor already at its sequence value, and it was received long ago
    await server.dataSource.query(
      `WITH e AS (
         INSERT INTO device_job_events (event_id, device_id, command_id, type, occurred_at, received_at, payload)
         VALUES ($1, 'late-0', $2, 'confirmed', now(), now() - interval '1 minute', $3) RETURNING seq)
       UPDATE rollout_engine_cursor SET event_seq = GREATEST(event_seq, (SELECT seq FROM e))`,
      [randomUUID(), commandId, { v: PROTOCOL_VERSION, commandId, type: 'confirmed', snapshot: 'late-os-2' }],
    );
    const done = await rolloutStatus(created.id, 'completed');
    expect(done.counts).toEqual({ confirmed: 1 });
  });

  it('catches up a rollback event that committed behind the engine cursor', async () => {
    // not connected: only the event inserted below can move the rollback
    await provision([{ id: 'rb-late-0', tags: ['rb-late'] }]);
    await server.dataSource.query(`UPDATE devices SET booted_snapshot = 'current', snapshots = $2 WHERE id = $1`, [
      'rb-late-0',
      JSON.stringify([committedSnapshot('current'), committedSnapshot('older')]),
    ]);
    const rollback = await api('POST', '/rollbacks', { deviceId: 'rb-late-0', snapshot: 'older' });
    const [{ commandId, state }] = rollback.devices;
    expect(state).toBe('notified');
    // the rollback has not moved for a while, and its event commits with the cursor already past it
    await server.dataSource.query(
      `UPDATE rollback_devices SET updated_at = now() - interval '1 minute' WHERE rollback_id = $1`,
      [rollback.id],
    );
    await server.dataSource.query(
      `WITH e AS (
         INSERT INTO device_job_events (event_id, device_id, command_id, type, occurred_at, received_at, payload)
         VALUES ($1, 'rb-late-0', $2, 'confirmed', now(), now() - interval '1 minute', $3) RETURNING seq)
       UPDATE rollout_engine_cursor SET event_seq = GREATEST(event_seq, (SELECT seq FROM e))`,
      [randomUUID(), commandId, { v: PROTOCOL_VERSION, commandId, type: 'confirmed', snapshot: 'older' }],
    );
    await waitFor(
      async () => (await api('GET', `/rollbacks/${rollback.id}`)).devices[0].state === 'confirmed',
      30_000,
      'late rollback event applied',
    );
  });

  it('rolls a device back remotely to a snapshot it holds, with the outcome per device', async () => {
    const [device] = await fleet([
      { id: 'rb-0', tags: ['rb'], snapshots: [committedSnapshot('current'), committedSnapshot('older')] },
      { id: 'rb-1', tags: ['rb'] },
    ]);
    const rollback = await api('POST', '/rollbacks', { tag: 'rb', snapshot: 'older', reason: 'field issue' });
    expect(rollback.devices).toEqual([
      expect.objectContaining({ deviceId: 'rb-0', snapshot: 'older', state: 'notified' }),
      expect.objectContaining({ deviceId: 'rb-1', state: 'skipped', detail: 'snapshot older is not on the device' }),
    ]);
    await waitFor(
      async () => (await api('GET', `/rollbacks/${rollback.id}`)).devices[0].state === 'confirmed',
      20_000,
      'rollback confirmed',
    );
    expect(device.bootedSnapshot).toBe('older');
    const audit = await api('GET', `/audit?subjectType=device&subjectId=rb-0&action=rollback.device.*`);
    expect(audit.items.map((e: { action: string }) => e.action).sort()).toEqual([
      'rollback.device.confirmed',
      'rollback.device.sent',
    ]);
  });
});
