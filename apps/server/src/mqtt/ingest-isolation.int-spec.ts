import { MqttClient } from 'mqtt';
import { setTimeout as sleep } from 'node:timers/promises';
import { HonestReporter, MqttFleet, deviceTopicOf, publishAcked, stateReport } from '../../test/mqtt-fleet';
import { startTestServer, TestServer } from '../../test/start-test-server';

const HONEST = 30;
const ATTACK_MS = 4000;

/**
 * The payloads of issue 9 that used to pass the schema and then fail the whole group-commit transaction
 * (every device in the batch lost its report and its connection), plus a nesting bomb.
 */
const hostilePayloads = (seq: number): Array<string | Buffer> => [
  JSON.stringify(stateReport(seq, { seq: 2 ** 31 })),
  JSON.stringify(stateReport(seq, { freeBytes: 2 ** 63 })),
  JSON.stringify(stateReport(seq, { agentVersion: 'evil\u0000' })),
  JSON.stringify(stateReport(seq, { agentVersion: 'lone \ud800 surrogate' })),
  JSON.stringify(
    stateReport(seq, {
      lastTrialResult: { snapshot: 'base-1.0', outcome: 'health-rejected', check: 'x', outputTail: 'a\u0000b' },
    }),
  ),
  `{"v":1,"seq":${seq},"snapshots":${'['.repeat(60000)}${']'.repeat(60000)}}`,
];

describe('ingest isolation: one device never costs another anything (issue 9)', () => {
  let server: TestServer;
  let fleet: MqttFleet;

  beforeAll(async () => {
    server = await startTestServer();
    fleet = new MqttFleet(server);
  });

  afterAll(async () => {
    await fleet?.closeAll();
    await server?.close();
  });

  it(`${HONEST} honest devices lose no report and no connection while an attacker sends unstorable reports`, async () => {
    const honest: HonestReporter[] = [];
    for (let i = 0; i < HONEST; i++) {
      const id = `honest-${i}`;
      honest.push(new HonestReporter(id, await fleet.connect(id, await fleet.provision(id))));
    }
    const attackerCredential = await fleet.provision('attacker');
    let attacker: MqttClient = await fleet.connect('attacker', attackerCredential);
    let attackerCloses = 0;
    let attackerSent = 0;
    const watch = (client: MqttClient) => client.on('close', () => attackerCloses++);
    watch(attacker);

    honest.forEach((reporter) => reporter.start());
    const deadline = Date.now() + ATTACK_MS;
    let seq = 1;
    while (Date.now() < deadline) {
      if (!attacker.connected) {
        attacker = await fleet.connect('attacker', attackerCredential);
        watch(attacker);
      }
      // several in flight at once, so they share batches with the honest reports
      await Promise.all(
        hostilePayloads(seq++).map((payload) =>
          publishAcked(attacker, deviceTopicOf('attacker', 'state'), payload, 2000).then(
            () => attackerSent++,
            () => undefined,
          ),
        ),
      );
    }
    await sleep(100);
    await Promise.all(honest.map((reporter) => reporter.stop()));

    const rows: Array<{ id: string; state_seq: number | null }> = await server.dataSource.query(
      `SELECT id, state_seq FROM devices WHERE id LIKE 'honest-%'`,
    );
    const stored = new Map(rows.map((row) => [row.id, row.state_seq]));
    const lost = honest.filter((reporter) => stored.get(reporter.deviceId) !== reporter.lastAckedSeq);
    const acked = honest.reduce((sum, reporter) => sum + reporter.acked, 0);
    process.stdout.write(
      `isolation: ${acked} honest reports acked, attacker sent ${attackerSent}, attacker connection closed ${attackerCloses}x\n`,
    );
    expect(honest.reduce((sum, reporter) => sum + reporter.closes + reporter.failures, 0)).toBe(0);
    expect(lost.map((reporter) => reporter.deviceId)).toEqual([]);
    expect(honest.every((reporter) => reporter.acked > 10)).toBe(true);
    // the attacker itself is acknowledged and rejected, not disconnected: it is not made to resend forever
    expect(attackerCloses).toBe(0);
    expect(attackerSent).toBeGreaterThan(0);
  });
});
