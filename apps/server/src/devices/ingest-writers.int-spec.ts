import { CommandType, DeviceStateMessage, JobEventMessage, JobEventType, parseDeviceState } from '@cowroot/protocol';
import { randomUUID } from 'node:crypto';
import { MqttFleet, stateReport } from '../../test/mqtt-fleet';
import { startTestServer, TestServer } from '../../test/start-test-server';
import { CommandDispatcher } from './command-dispatcher.service';
import { DeviceStateWriter } from './device-state-writer.service';
import { JobEventRecorder } from './job-event-recorder.service';

const valid = (seq: number, overrides: Record<string, unknown> = {}): DeviceStateMessage => {
  const parsed = parseDeviceState(JSON.stringify(stateReport(seq, overrides)));
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
};

/**
 * The writers below the schema: whatever still reaches them that the database refuses (the schema is the
 * first line, this the second, docs/protocol.md §7.1) costs only the message itself.
 */
describe('ingest writers isolate what the database refuses', () => {
  let server: TestServer;
  let fleet: MqttFleet;

  beforeAll(async () => {
    server = await startTestServer();
    fleet = new MqttFleet(server);
    for (let i = 0; i < 20; i++) await fleet.provision(`w-${i}`);
  });

  afterAll(async () => {
    await server?.close();
  });

  it('DeviceStateWriter: one refused report in a shared batch; every other report of the batch is applied', async () => {
    const writer = server.app.get(DeviceStateWriter);
    // submitted in the same turn, so they share one group-commit batch; the bad ones bypass the schema
    const hostile = [
      { ...valid(1), seq: 2 ** 31 },
      { ...valid(1), freeBytes: 2 ** 63 },
      { ...valid(1), agentVersion: 'nul\u0000' },
      { ...valid(1), lastTrialResult: { snapshot: 'base-1.0', outcome: 'accepted', outputTail: '\ud800' } },
    ] as DeviceStateMessage[];
    const results = await Promise.all([
      // w-0's agent lists the delta formats it reads, the others are older agents that do not
      ...Array.from({ length: 16 }, (_, i) =>
        writer.submit(`w-${i}`, valid(7, i === 0 ? { deltaFormats: [1, 2] } : {})),
      ),
      ...hostile.map((report, i) => writer.submit(`w-${16 + i}`, report)),
    ]);
    expect(results.slice(0, 16).map((r) => r.outcome)).toEqual(Array(16).fill('applied'));
    expect(results.slice(16).map((r) => r.outcome)).toEqual(Array(4).fill('unstorable'));
    expect(results[16].detail).toMatch(/database refused it: .*out of range/);
    const rows: Array<{ id: string; state_seq: number | null; delta_formats: number[] | null }> =
      await server.dataSource.query(`SELECT id, state_seq, delta_formats FROM devices WHERE id LIKE 'w-%' ORDER BY id`);
    const seqs = new Map(rows.map((row) => [row.id, row.state_seq]));
    const formats = new Map(rows.map((row) => [row.id, row.delta_formats]));
    expect([formats.get('w-0'), formats.get('w-1')]).toEqual([[1, 2], null]);
    for (let i = 0; i < 16; i++) expect(seqs.get(`w-${i}`)).toBe(7);
    for (let i = 16; i < 20; i++) expect(seqs.get(`w-${i}`)).toBeNull();
    // and the writer carries on with the same devices
    expect((await writer.submit('w-16', valid(8))).outcome).toBe('applied');
  });

  it('DeviceStateWriter: judges a report by the stored snapshot ids and health status, and a batch by its own order', async () => {
    const writer = server.app.get(DeviceStateWriter);
    const actions = async (): Promise<string[]> =>
      (
        (await server.dataSource.query(
          `SELECT action FROM audit_log WHERE subject_id = 'w-19' AND action LIKE 'device.state.%' ORDER BY id`,
        )) as Array<{ action: string }>
      ).map((row) => row.action);
    const healthy = {
      status: 'passed',
      checkedAt: '2026-11-25T10:00:00Z',
      checks: [{ name: 'net', kind: 'required', passed: true, durationMs: 5 }],
    };
    const failed = {
      status: 'failed',
      checkedAt: '2026-11-25T10:01:00Z',
      checks: [{ name: 'net', kind: 'required', passed: false, durationMs: 5 }],
    };
    const second = { ...valid(0).snapshots[0], id: 'base-1.1', release: { name: 'base', version: '1.1' } };
    expect((await writer.submit('w-19', valid(1, { health: healthy }))).outcome).toBe('applied');
    const first = await actions();
    expect(first).toEqual(expect.arrayContaining(['device.state.snapshots-changed', 'device.state.health-changed']));
    // the same snapshots and health status again, judged against the stored row: nothing to audit
    expect(
      (await writer.submit('w-19', valid(2, { health: { ...healthy, checkedAt: '2026-11-25T10:02:00Z' } }))).outcome,
    ).toBe('applied');
    expect(await actions()).toEqual(first);
    // two reports of the device in one batch: the second is judged against the first, not the row
    const [a, b] = await Promise.all([
      writer.submit('w-19', valid(3, { health: failed, snapshots: [...valid(0).snapshots, second] })),
      writer.submit('w-19', valid(4, { health: failed, snapshots: [...valid(0).snapshots, second] })),
    ]);
    expect([a.outcome, b.outcome]).toEqual(['applied', 'applied']);
    expect((await actions()).slice(first.length)).toEqual([
      'device.state.snapshots-changed',
      'device.state.health-changed',
    ]);
  });

  it('JobEventRecorder: an event the database refuses is unstorable, not a storage failure', async () => {
    const dispatcher = server.app.get(CommandDispatcher);
    const actor = { type: 'system' as const, id: 'test', name: 'test' };
    const command = await server.dataSource.transaction((manager) =>
      dispatcher.record(manager, 'w-0', { type: CommandType.Reboot }, actor),
    );
    const recorder = server.app.get(JobEventRecorder);
    const event = (at: string) =>
      ({
        v: 1,
        commandId: command.id,
        eventId: randomUUID(),
        type: JobEventType.Accepted,
        at,
      }) as JobEventMessage;
    // 30 February: accepted by a lax ISO 8601 check, refused by timestamptz
    const refused = await recorder.record('w-0', event('2026-02-30T00:00:00Z'));
    expect(refused).toMatchObject({ result: 'unstorable', detail: expect.stringMatching(/out of range/) });
    expect(await recorder.record('w-0', event(new Date().toISOString()))).toMatchObject({
      result: 'stored',
      status: 'accepted',
    });
  });

  it('JobEventRecorder: events sharing a batch each get their own outcome, in arrival order', async () => {
    const dispatcher = server.app.get(CommandDispatcher);
    const actor = { type: 'system' as const, id: 'test', name: 'test' };
    const commands = await server.dataSource.transaction(async (manager) => [
      await dispatcher.record(manager, 'w-1', { type: CommandType.Reboot }, actor),
      await dispatcher.record(manager, 'w-2', { type: CommandType.Reboot }, actor),
    ]);
    const recorder = server.app.get(JobEventRecorder);
    const event = (commandId: string, type: JobEventType, at = new Date().toISOString()) =>
      ({ v: 1, commandId, eventId: randomUUID(), type, at }) as JobEventMessage;
    const accepted = event(commands[0].id, JobEventType.Accepted);
    const batch: Array<[string, JobEventMessage]> = [
      ['w-1', accepted],
      ['w-1', accepted], // the same eventId again in the same batch: stored once
      ['w-2', event(commands[0].id, JobEventType.Accepted)], // w-1's command, reported by w-2
      ['w-2', event(commands[1].id, JobEventType.Accepted, '2026-02-30T00:00:00Z')], // refused by timestamptz
      ['w-2', event(commands[1].id, JobEventType.Accepted)],
      ['w-1', event(commands[0].id, JobEventType.Rebooting)],
      ['w-1', event(commands[0].id, JobEventType.Completed)],
    ];
    // recorded in the same turn, so they share one group-commit batch
    const outcomes = await Promise.all(batch.map(([deviceId, e]) => recorder.record(deviceId, e)));
    expect(outcomes.map((o) => o.result)).toEqual([
      'stored',
      'duplicate',
      'unknown-command',
      'unstorable',
      'stored',
      'stored',
      'stored',
    ]);
    expect(outcomes[6]).toMatchObject({ status: 'completed', changed: true });
    const stored: Array<{ event_id: string }> = await server.dataSource.query(
      'SELECT event_id FROM device_job_events WHERE command_id = ANY($1::uuid[]) ORDER BY seq',
      [commands.map((c) => c.id)],
    );
    expect(stored.map((row) => row.event_id)).toEqual([0, 4, 5, 6].map((i) => batch[i][1].eventId));
    const statuses: Array<{ id: string; status: string }> = await server.dataSource.query(
      'SELECT id, status FROM device_commands WHERE id = ANY($1::uuid[])',
      [commands.map((c) => c.id)],
    );
    expect(new Map(statuses.map((row) => [row.id, row.status]))).toEqual(
      new Map([
        [commands[0].id, 'completed'],
        [commands[1].id, 'accepted'],
      ]),
    );
    const audits: Array<{ count: string }> = await server.dataSource.query(
      `SELECT count(*) FROM audit_log WHERE actor_type = 'device' AND action LIKE 'device.command.%' AND subject_id IN ('w-1', 'w-2')`,
    );
    expect(Number(audits[0].count)).toBe(4);
  });
});
