import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceChannel, JobEventType, PROTOCOL_VERSION, encodeMessage } from '@cowroot/protocol';
import { CommandJournal } from '../journal/command-journal';
import { AgentLogger } from '../logger';
import { MqttLink } from '../mqtt/mqtt-link';
import { JobEvents, RECEIPT_RESEND_MS } from './job-events';

/** The part of MqttLink JobEvents uses: every publish is acknowledged (PUBACK) at once and recorded. */
class AcknowledgingLink extends EventEmitter {
  connected = true;
  readonly published: Array<{ channel: DeviceChannel; eventId: string }> = [];

  publish(channel: DeviceChannel, message: { eventId: string }): Promise<void> {
    this.published.push({ channel, eventId: message.eventId });
    return Promise.resolve();
  }
}

const receipt = (...eventIds: string[]) => encodeMessage({ v: PROTOCOL_VERSION, eventIds });
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe(JobEvents.name, () => {
  let dir: string;
  let journal: CommandJournal;
  let link: AcknowledgingLink;
  const logs: string[] = [];
  const logger = new AgentLogger('dev-events', (line) => logs.push(line));
  const outboxIds = () => journal.outbox.map((event) => event.eventId);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-job-events-'));
    journal = new CommandJournal(dir);
    await journal.load();
    link = new AcknowledgingLink();
    logs.length = 0;
  });

  afterEach(async () => {
    jest.useRealTimers();
    await rm(dir, { recursive: true, force: true });
  });

  const eventsWith = (receipts: boolean) => new JobEvents(journal, link as unknown as MqttLink, logger, receipts);

  it('with the embedded broker, drops an event from the outbox at its PUBACK', async () => {
    const events = eventsWith(false);
    const { delivered } = await events.emit(randomUUID(), JobEventType.Staged, { snapshot: 's2' });
    await delivered;
    await settle();
    expect(outboxIds()).toEqual([]);
  });

  it('with receipts, keeps a PUBACKed event until the receipt names it, and ignores a malformed receipt', async () => {
    const events = eventsWith(true);
    events.watchReceipts();
    const { delivered } = await events.emit(randomUUID(), JobEventType.Staged, { snapshot: 's2' });
    await delivered;
    await settle();
    const [eventId] = outboxIds();
    expect(eventId).toBeDefined();

    link.emit('receipt', Buffer.from('{"v":1,"eventIds":["not-a-uuid"]}'));
    link.emit('receipt', receipt(randomUUID()));
    await settle();
    expect(outboxIds()).toEqual([eventId]);
    expect(logs.some((line) => line.includes('ignoring a malformed receipt'))).toBe(true);

    link.emit('receipt', receipt(eventId));
    await settle();
    await journal.flush();
    expect(outboxIds()).toEqual([]);
    events.stop();
  });

  it('with receipts, sends the whole outbox again on every connect, and what waited too long on a timer', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick'] });
    const events = eventsWith(true);
    events.watchReceipts();
    const commandId = randomUUID();
    await events.emit(commandId, JobEventType.Accepted);
    await events.emit(commandId, JobEventType.Staged, { snapshot: 's2' });
    const [accepted, staged] = outboxIds();
    const sends = (eventId: string) => link.published.filter((p) => p.eventId === eventId).length;
    expect([sends(accepted), sends(staged)]).toEqual([1, 1]);

    // a reconnect: a PUBACK from the broker may not mean the report reached the server
    link.emit('connect');
    expect([sends(accepted), sends(staged)]).toEqual([2, 2]);

    // `accepted` receipted; `staged` is still due after RECEIPT_RESEND_MS, and only while connected
    link.emit('receipt', receipt(accepted));
    await settle();
    link.connected = false;
    jest.advanceTimersByTime(RECEIPT_RESEND_MS);
    expect(sends(staged)).toBe(2);
    link.connected = true;
    jest.advanceTimersByTime(RECEIPT_RESEND_MS);
    expect([sends(accepted), sends(staged)]).toEqual([2, 3]);
    // progress is never kept, so never sent again
    await events.emit(commandId, JobEventType.Progress, { progress: { phase: 'download', bytesDone: 1 } });
    expect(outboxIds()).toEqual([staged]);
    events.stop();
  });
});
