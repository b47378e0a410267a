import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { CommandJournal } from './command-journal';

describe(CommandJournal.name, () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-journal-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('records a command id once and remembers it across a restart', async () => {
    const id = randomUUID();
    const journal = new CommandJournal(dir);
    await journal.load();
    expect(await journal.begin(id, 'install')).toBe(true);
    expect(await journal.begin(id, 'install')).toBe(false);

    const reopened = new CommandJournal(dir);
    await reopened.load();
    expect(await reopened.begin(id, 'install')).toBe(false);
    expect(reopened.get(id)).toMatchObject({ type: 'install', status: 'running', lastEvent: null });
    expect(reopened.running().map((r) => r.commandId)).toEqual([id]);
  });

  it('keeps the last event and the terminal status', async () => {
    const id = randomUUID();
    const journal = new CommandJournal(dir);
    await journal.load();
    await journal.begin(id, 'switch');
    await journal.recordEvent({ v: 1, commandId: id, eventId: randomUUID(), type: 'accepted' }, false);
    const staged = { v: 1, commandId: id, eventId: randomUUID(), type: 'staged', snapshot: 'r-2' };
    await journal.recordEvent(staged, true);

    const reopened = new CommandJournal(dir);
    await reopened.load();
    expect(reopened.get(id)).toMatchObject({ status: 'done', lastEvent: staged });
    expect(reopened.running()).toEqual([]);
  });

  it('persists the pending trial, a scheduled reboot and the outbox', async () => {
    const journal = new CommandJournal(dir);
    await journal.load();
    const commandId = randomUUID();
    await journal.setTrial({ commandId, snapshot: 'r-2', fallback: 'r-1', requestedAt: new Date().toISOString() });
    await journal.setScheduledReboot({ commandId, window: { start: '02:00', end: '04:00' } });
    const event = { v: 1, commandId, eventId: randomUUID(), type: 'rejected' };
    await journal.addToOutbox(event);

    const reopened = new CommandJournal(dir);
    await reopened.load();
    expect(reopened.trial).toMatchObject({ commandId, snapshot: 'r-2', fallback: 'r-1' });
    expect(reopened.scheduledReboot).toEqual({ commandId, window: { start: '02:00', end: '04:00' } });
    expect(reopened.outbox).toEqual([event]);
    await reopened.removeFromOutbox(event.eventId);
    const third = new CommandJournal(dir);
    await third.load();
    expect(third.outbox).toEqual([]);
  });

  it('writes atomically: no temp file is left and the file is always whole JSON', async () => {
    const journal = new CommandJournal(dir);
    await journal.load();
    await Promise.all(Array.from({ length: 20 }, () => journal.begin(randomUUID(), 'delete')));
    await journal.flush();
    expect(await readdir(dir)).toEqual(['journal.json']);
    const data = JSON.parse(await readFile(journal.path, 'utf8')) as { order: string[] };
    expect(data.order).toHaveLength(20);
  });

  it('keeps an unreadable journal aside and starts empty instead of crashing', async () => {
    await writeFile(join(dir, 'journal.json'), '{"version":1,"comm');
    const journal = new CommandJournal(dir);
    expect(await journal.load()).toEqual({ recovered: true });
    expect(await journal.begin(randomUUID(), 'reboot')).toBe(true);
    expect((await readdir(dir)).some((name) => name.startsWith('journal.json.corrupt-'))).toBe(true);
  });

  it('trims the oldest commands beyond its bound', async () => {
    const journal = new CommandJournal(dir);
    await journal.load();
    const first = randomUUID();
    await journal.begin(first, 'delete');
    for (let i = 0; i < 1000; i += 1) await journal.begin(randomUUID(), 'delete');
    expect(journal.get(first)).toBeUndefined();
  });
});
