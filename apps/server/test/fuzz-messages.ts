import { RejectionReason } from '@cowroot/protocol';
import { stateReport } from './mqtt-fleet';

export type FuzzChannel = 'state' | 'events' | 'presence';

/** One message an attacker sends, and the rejection the server must answer it with (null: applied). */
export interface FuzzMessage {
  kind: string;
  channel: FuzzChannel;
  payload: Buffer;
  expect: RejectionReason | null;
}

const UUID_HEX = '0123456789abcdef';

/**
 * Generates a seeded mix of valid and hostile device messages (issue 9 "Done means"): random bytes, deep
 * nesting, huge numbers, NUL and lone surrogates, wrong types, unknown fields, replays of old seq, wrong
 * versions, oversized payloads, events for unknown commands. One generator per attacker device: it keeps
 * that device's seq, so its valid reports are newer and its replays older than what is stored.
 */
export class FuzzMessages {
  /** seq of the opening report; replays pick a seq at or below it, so they are stale whatever the timing */
  static readonly OPENING_SEQ = 100;
  private seq = FuzzMessages.OPENING_SEQ;

  constructor(
    private readonly random: () => number,
    private readonly maxMessageBytes: number,
  ) {}

  /** A valid report to send, and have acknowledged, before next(): what the replays replay. */
  opening(): FuzzMessage {
    return this.json('valid', 'state', stateReport(FuzzMessages.OPENING_SEQ), null);
  }

  next(): FuzzMessage {
    const roll = this.random();
    if (roll < 0.1) return this.valid();
    if (roll < 0.18) return this.replay();
    if (roll < 0.3) return this.randomBytes();
    if (roll < 0.4) return this.deepNesting();
    if (roll < 0.52) return this.hugeNumber();
    if (roll < 0.64) return this.badText();
    if (roll < 0.74) return this.wrongType();
    if (roll < 0.82) return this.unknownField();
    if (roll < 0.87) return this.wrongVersion();
    if (roll < 0.89) return this.oversized();
    if (roll < 0.95) return this.unknownCommandEvent();
    return this.presence();
  }

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }

  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  private uuid(): string {
    const hex = (n: number) => Array.from({ length: n }, () => UUID_HEX[this.int(16)]).join('');
    return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(12)}`;
  }

  private json(kind: string, channel: FuzzChannel, value: unknown, expect: RejectionReason | null): FuzzMessage {
    return { kind, channel, payload: Buffer.from(JSON.stringify(value)), expect };
  }

  private report(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return stateReport(++this.seq, overrides);
  }

  private valid(): FuzzMessage {
    return this.json('valid', 'state', this.report({ freeBytes: this.int(2 ** 40) }), null);
  }

  private replay(): FuzzMessage {
    const seq = this.int(FuzzMessages.OPENING_SEQ + 1);
    return this.json('replay', 'state', stateReport(seq), RejectionReason.StaleState);
  }

  private randomBytes(): FuzzMessage {
    const bytes = Buffer.alloc(1 + this.int(2048));
    for (let i = 0; i < bytes.length; i++) bytes[i] = this.int(256);
    // 0xff never starts UTF-8 JSON: the message is garbage whatever the rest happens to be
    bytes[0] = 0xff;
    return {
      kind: 'random-bytes',
      channel: this.pick(['state', 'events', 'presence']),
      payload: bytes,
      expect: RejectionReason.MalformedMessage,
    };
  }

  private deepNesting(): FuzzMessage {
    const depth = this.pick([17, 100, 10_000, 100_000]);
    const [open, close] = this.pick([
      ['[', ']'],
      ['{"a":', '}'],
    ]);
    const inner = `${open.repeat(depth)}1${close.repeat(depth)}`;
    const text = `{"v":1,"seq":${this.seq},"snapshots":${inner}}`.slice(0, this.maxMessageBytes);
    return {
      kind: 'deep-nesting',
      channel: this.pick(['state', 'events', 'presence']),
      payload: Buffer.from(text),
      expect: RejectionReason.MalformedMessage,
    };
  }

  private hugeNumber(): FuzzMessage {
    const field = this.pick(['seq', 'freeBytes', 'durationMs', 'bytesDone']);
    // seq is an `integer` column (2^31 is out of range); the byte counts and durations hold up to 2^53 - 1
    const huge = this.pick([field === 'seq' ? 2 ** 31 : 2 ** 53, 2 ** 53 + 2, 2 ** 63, 1e308, -1, 0.5]);
    if (field === 'durationMs') {
      const health = {
        status: 'passed',
        checkedAt: new Date().toISOString(),
        checks: [{ name: 'root', kind: 'builtin', passed: true, durationMs: huge }],
      };
      return this.json('huge-number', 'state', this.report({ health }), RejectionReason.MalformedMessage);
    }
    if (field === 'bytesDone') {
      const event = { ...this.event(), type: 'progress', progress: { phase: 'download', bytesDone: huge } };
      return this.json('huge-number', 'events', event, RejectionReason.MalformedMessage);
    }
    // seq 2^31 and freeBytes 2^63 are issue 9's: once schema-valid, they failed every report in the batch
    return this.json('huge-number', 'state', this.report({ [field]: huge }), RejectionReason.MalformedMessage);
  }

  private badText(): FuzzMessage {
    const bad = this.pick(['a\u0000b', '\u0000', 'lone \ud800', '\udfff tail']);
    const where = this.int(4);
    if (where === 0)
      return this.json('nul-text', 'state', this.report({ agentVersion: bad }), RejectionReason.MalformedMessage);
    if (where === 1) {
      const lastTrialResult = { snapshot: 'base-1.0', outcome: 'health-rejected', check: 'app', outputTail: bad };
      return this.json('nul-text', 'state', this.report({ lastTrialResult }), RejectionReason.MalformedMessage);
    }
    if (where === 2) {
      const event = { ...this.event(), type: 'failed', error: { code: 'INTERNAL', message: bad } };
      return this.json('nul-text', 'events', event, RejectionReason.MalformedMessage);
    }
    return this.json(
      'nul-text',
      'presence',
      { v: 1, status: 'online', agentVersion: bad },
      RejectionReason.MalformedMessage,
    );
  }

  private wrongType(): FuzzMessage {
    const overrides = this.pick<Record<string, unknown>>([
      { seq: '7' },
      { trialBoot: 'yes' },
      { snapshots: {} },
      { health: [] },
      { agentVersion: 5 },
      { pendingTrial: 'requested' },
      { freeBytes: 1.5 },
      { sentAt: 1764000000 },
      { sentAt: '2026-02-30T00:00:00Z' },
      { bootedSnapshot: '../../etc' },
    ]);
    if (this.random() < 0.2) {
      const event = { ...this.event(), type: 'accepted', duplicate: this.pick(['yes', 1, { x: 'y'.repeat(500) }]) };
      return this.json('wrong-type', 'events', event, RejectionReason.MalformedMessage);
    }
    return this.json('wrong-type', 'state', this.report(overrides), RejectionReason.MalformedMessage);
  }

  private unknownField(): FuzzMessage {
    const report = this.report();
    if (this.random() < 0.5) report[`extra${this.int(1000)}`] = 'x';
    else (report.snapshots as Array<Record<string, unknown>>)[0].rootPassword = 'hunter2';
    return this.json('unknown-field', 'state', report, RejectionReason.MalformedMessage);
  }

  private wrongVersion(): FuzzMessage {
    const v = this.pick([0, 2, 99, '1', null]);
    return this.json('wrong-version', 'state', { ...this.report(), v }, RejectionReason.UnsupportedProtocolVersion);
  }

  private oversized(): FuzzMessage {
    const size = this.maxMessageBytes + 1 + this.int(this.maxMessageBytes);
    const report = this.report({ agentVersion: 'x' });
    const text = JSON.stringify({ ...report, padding: ' '.repeat(size) });
    return { kind: 'oversized', channel: 'state', payload: Buffer.from(text), expect: RejectionReason.MessageTooLarge };
  }

  private event(): Record<string, unknown> {
    return { v: 1, commandId: this.uuid(), eventId: this.uuid(), type: 'completed', at: new Date().toISOString() };
  }

  private unknownCommandEvent(): FuzzMessage {
    return this.json('unknown-command', 'events', this.event(), RejectionReason.UnknownCommandId);
  }

  private presence(): FuzzMessage {
    if (this.random() < 0.5) return this.json('valid-presence', 'presence', { v: 1, status: 'online' }, null);
    return this.json('bad-presence', 'presence', { v: 1, status: 'sideways' }, RejectionReason.MalformedMessage);
  }
}
