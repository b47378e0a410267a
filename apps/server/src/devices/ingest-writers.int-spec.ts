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
});
