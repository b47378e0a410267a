import { randomUUID } from 'node:crypto';
import { getMetadataStorage } from 'class-validator';
import {
  DeviceStateMessage,
  ErrorCode,
  HealthCheckResult,
  HealthReport,
  INT32_MAX,
  JobError,
  JobEventMessage,
  JobProgress,
  LastTrialResult,
  MAX_JSON_DEPTH,
  MAX_SAFE_UINT,
  MessageRejectedMessage,
  PendingTrial,
  PresenceMessage,
  RollbackDetail,
  SnapshotInfo,
  exceedsJsonDepth,
  isStorableText,
  isTimestamp,
  parseDeviceState,
  parseJobEvent,
  parsePresence,
} from './index';
import { ReleaseRef } from './messages/common';

import { deviceState } from './testing/device-state.fixture';

/** with a health report and free bytes, whose bounds these specs test */
const state = (overrides: Record<string, unknown> = {}) =>
  deviceState({
    health: {
      status: 'failed',
      checkedAt: '2026-11-25T10:00:00Z',
      checks: [{ name: 'app', kind: 'required', passed: false, durationMs: 5, outputTail: 'boom' }],
    },
    freeBytes: 1024,
    ...overrides,
  });

const event = (overrides: Record<string, unknown> = {}) => ({
  v: 1,
  commandId: randomUUID(),
  eventId: randomUUID(),
  type: 'failed',
  at: '2026-11-25T10:00:00Z',
  error: { code: 'DOWNLOAD_FAILED', message: 'timeout' },
  ...overrides,
});

const stateFails = (overrides: Record<string, unknown>) => parseDeviceState(JSON.stringify(state(overrides)));

describe('storable device messages (docs/protocol.md §2, §7.1)', () => {
  it('accepts a state report at the bounds of its columns', () => {
    expect(stateFails({ seq: INT32_MAX, freeBytes: MAX_SAFE_UINT }).ok).toBe(true);
  });

  it('refuses numbers beyond what their column holds', () => {
    for (const overrides of [{ seq: 2 ** 31 }, { freeBytes: 2 ** 63 }, { freeBytes: MAX_SAFE_UINT + 2 }, { seq: -1 }]) {
      expect(stateFails(overrides)).toMatchObject({ ok: false, code: ErrorCode.MalformedMessage });
    }
    const progress = parseJobEvent(
      JSON.stringify(event({ type: 'progress', error: undefined, progress: { phase: 'download', bytesDone: 1e300 } })),
    );
    expect(progress).toMatchObject({ ok: false, message: expect.stringContaining('progress.bytesDone') });
  });

  it('refuses NUL and unpaired surrogates in every free-text field', () => {
    for (const bad of ['a\u0000b', '\ud800', 'x\udc00']) {
      expect(stateFails({ agentVersion: bad })).toMatchObject({ ok: false, message: /agentVersion: .*NUL/ });
      const result = { snapshot: 'r-1.0.0', outcome: 'health-rejected', check: 'app', outputTail: bad };
      expect(stateFails({ lastTrialResult: result })).toMatchObject({ ok: false });
      expect(parseJobEvent(JSON.stringify(event({ error: { code: 'INTERNAL', message: bad } })))).toMatchObject({
        ok: false,
        message: expect.stringContaining('error.message'),
      });
      expect(parsePresence(JSON.stringify({ v: 1, status: 'online', agentVersion: bad })).ok).toBe(false);
    }
    // a paired surrogate (an emoji) is fine
    expect(stateFails({ agentVersion: '1.0 \ud83d\ude00' }).ok).toBe(true);
  });

  it('refuses dates timestamptz would refuse', () => {
    for (const sentAt of ['2026-02-30T00:00:00Z', '2026-W01', '0000-01-01T00:00:00Z', '2026', '2026-11-25 10:00Z']) {
      expect(stateFails({ sentAt })).toMatchObject({ ok: false, message: /sentAt/ });
    }
    expect(isTimestamp('2026-11-25T10:00:00.123+01:00')).toBe(true);
    expect(isTimestamp('2026-11-25T10:00Z')).toBe(true);
  });

  it('refuses an array where a nested object belongs (found by the ingest fuzz suite)', () => {
    for (const field of ['health', 'pendingTrial', 'lastTrialResult']) {
      expect(stateFails({ [field]: [] })).toMatchObject({ ok: false, message: expect.stringContaining(field) });
    }
    expect(parseJobEvent(JSON.stringify(event({ error: [] })))).toMatchObject({ ok: false });
  });

  it('checks the job-event duplicate flag is a boolean', () => {
    expect(parseJobEvent(JSON.stringify(event({ type: 'accepted', error: undefined, duplicate: true }))).ok).toBe(true);
    for (const duplicate of ['yes', 1, { deep: 'x'.repeat(1000) }, [true]]) {
      expect(parseJobEvent(JSON.stringify(event({ duplicate })))).toMatchObject({
        ok: false,
        message: expect.stringContaining('duplicate'),
      });
    }
  });

  it('decides deep nesting by a byte scan, before JSON.parse recursion', () => {
    const deep = `{"v":1,"seq":1,"snapshots":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(exceedsJsonDepth(Buffer.from(deep))).toBe(true);
    expect(parseDeviceState(deep)).toMatchObject({
      ok: false,
      code: ErrorCode.MalformedMessage,
      message: `JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
    });
    // brackets in strings do not count; an escaped quote does not end the string
    const inString = JSON.stringify({ v: 1, text: `\\"${'['.repeat(100)}` });
    expect(exceedsJsonDepth(Buffer.from(inString))).toBe(false);
    expect(exceedsJsonDepth(Buffer.from(JSON.stringify(state())))).toBe(false);
    let nested: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) nested = [nested];
    expect(exceedsJsonDepth(Buffer.from(JSON.stringify(nested)))).toBe(false);
    expect(exceedsJsonDepth(Buffer.from(JSON.stringify([nested])))).toBe(true);
  });

  it('puts a storable-text check on every free-text string of every device message class', () => {
    // anything a device sends as a string is an enum, a UUID, a pattern-matched id, a timestamp or checked text
    const safeConstraints = new Set([
      'isEnum',
      'isIn',
      'isUuid',
      'matches',
      'isTimestamp',
      'isIso8601',
      'isStorableText',
    ]);
    const classes = [
      DeviceStateMessage,
      SnapshotInfo,
      ReleaseRef,
      PendingTrial,
      LastTrialResult,
      HealthReport,
      HealthCheckResult,
      JobEventMessage,
      JobProgress,
      JobError,
      RollbackDetail,
      PresenceMessage,
      MessageRejectedMessage,
    ];
    const storage = getMetadataStorage();
    const unchecked: string[] = [];
    for (const cls of classes) {
      const metadata = storage.getTargetValidationMetadatas(cls, '', true, false);
      const byProperty = new Map<string, Set<string>>();
      for (const m of metadata) {
        const names = byProperty.get(m.propertyName) ?? new Set<string>();
        names.add(m.name ?? m.type);
        byProperty.set(m.propertyName, names);
      }
      for (const [property, names] of byProperty) {
        if (names.has('isString') && !names.has('isStorableText') && !names.has('matches'))
          unchecked.push(`${cls.name}.${property}`);
        const typed = [...names].some((n) => safeConstraints.has(n) || /^is(Int|Boolean|Array)$/.test(n));
        if (!typed && !names.has('nestedValidation') && !names.has('isDefined'))
          unchecked.push(`${cls.name}.${property}`);
      }
    }
    expect(unchecked).toEqual([]);
    expect(isStorableText('ok')).toBe(true);
  });
});
