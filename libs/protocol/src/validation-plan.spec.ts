import { Exclude, Type, plainToInstance } from 'class-transformer';
import { IsArray, IsObject, IsOptional, IsString, ValidateNested, validateSync } from 'class-validator';
import {
  COMMAND_CLASSES,
  CommandType,
  DeviceStateMessage,
  JobEventMessage,
  MessageRejectedMessage,
  PresenceMessage,
  ReportReceiptMessage,
  parseDeviceState,
} from './index';
import { SNAPSHOT_UUID, deviceState } from './testing/device-state.fixture';
import { seededRandom } from '@cowroot/testing/seeded-random';
import { acceptsByPlan } from './validation-plan';

type MessageClass = new () => object;
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** class-validator's own verdict, as validateAs reached it before the plan existed */
function classValidatorAccepts(cls: MessageClass, plain: unknown): boolean {
  try {
    const instance = plainToInstance(cls, plain);
    return validateSync(instance as object, { whitelist: true, forbidNonWhitelisted: true }).length === 0;
  } catch {
    return false;
  }
}

const COMMAND_ID = '6f0e3c5a-3d1b-4a8e-9f2c-1b2c3d4e5f60';
const AT = '2026-11-25T10:00:00.000Z';
const reboot = { mode: 'window', window: { start: '02:00', end: '04:00' } };
const offer = { url: 'https://fleet.example/a', manifest: 'eyJ9', signature: 'c2ln' };

/** Valid messages of every class a device or the server parses, with their optional parts filled in. */
const VALID: Array<{ name: string; cls: MessageClass; message: Json }> = [
  { name: 'state, minimal', cls: DeviceStateMessage, message: deviceState() as unknown as Json },
  {
    name: 'state, full',
    cls: DeviceStateMessage,
    message: deviceState({
      fallbackSnapshot: 'r-1.0.0',
      trialBoot: true,
      pendingTrial: { snapshot: 'r-1.1.0', state: 'trying' },
      lastTrialResult: { snapshot: 'r-0.9.0', outcome: 'health-rejected', check: 'net', outputTail: 'no route' },
      health: {
        status: 'passed',
        checkedAt: AT,
        checks: [{ name: 'net', kind: 'required', passed: true, durationMs: 12, outputTail: 'ok' }],
      },
      freeBytes: 123456789,
      deltaFormats: [1, 2, 3],
    }) as unknown as Json,
  },
  {
    name: 'job event, progress',
    cls: JobEventMessage,
    message: {
      v: 1,
      commandId: COMMAND_ID,
      eventId: SNAPSHOT_UUID,
      type: 'progress',
      at: AT,
      progress: { phase: 'download', bytesDone: 10, bytesTotal: 100 },
    },
  },
  {
    name: 'job event, rolled back',
    cls: JobEventMessage,
    message: {
      v: 1,
      commandId: COMMAND_ID,
      eventId: SNAPSHOT_UUID,
      type: 'rolled-back',
      at: AT,
      snapshot: 'r-2',
      rollback: { snapshot: 'r-2', restoredSnapshot: 'r-1', by: 'health-check', check: 'net', outputTail: 'x' },
      bytesDownloaded: 5,
      duplicate: false,
    },
  },
  {
    name: 'job event, failed',
    cls: JobEventMessage,
    message: {
      v: 1,
      commandId: COMMAND_ID,
      eventId: SNAPSHOT_UUID,
      type: 'failed',
      at: AT,
      error: { code: 'DOWNLOAD_FAILED', message: 'timeout' },
    },
  },
  { name: 'presence', cls: PresenceMessage, message: { v: 1, status: 'online', at: AT, agentVersion: '0.1.0' } },
  { name: 'presence, will', cls: PresenceMessage, message: { v: 1, status: 'offline' } },
  { name: 'receipt', cls: ReportReceiptMessage, message: { v: 1, eventIds: [SNAPSHOT_UUID, COMMAND_ID] } },
  {
    name: 'rejection notice',
    cls: MessageRejectedMessage,
    message: { v: 1, reason: 'STALE_STATE', channel: 'state', message: 'old', at: AT, seq: 3, suppressed: 2 },
  },
  {
    name: 'commit',
    cls: COMMAND_CLASSES[CommandType.Commit],
    message: { v: 1, commandId: COMMAND_ID, type: 'commit', issuedAt: AT, snapshot: 'c-1', label: 'x', reboot },
  },
  {
    name: 'reboot',
    cls: COMMAND_CLASSES[CommandType.Reboot],
    message: { v: 1, commandId: COMMAND_ID, type: 'reboot', issuedAt: AT },
  },
  {
    name: 'install',
    cls: COMMAND_CLASSES[CommandType.Install],
    message: { v: 1, commandId: COMMAND_ID, type: 'install', issuedAt: AT, artifact: offer, snapshotId: 'r-2', reboot },
  },
  {
    name: 'switch',
    cls: COMMAND_CLASSES[CommandType.Switch],
    message: { v: 1, commandId: COMMAND_ID, type: 'switch', issuedAt: AT, snapshot: 'r-2', reboot: { mode: 'now' } },
  },
  {
    name: 'delete',
    cls: COMMAND_CLASSES[CommandType.Delete],
    message: { v: 1, commandId: COMMAND_ID, type: 'delete', issuedAt: AT, snapshots: ['r-1', 'r-2'] },
  },
  {
    name: 'cancel',
    cls: COMMAND_CLASSES[CommandType.Cancel],
    message: { v: 1, commandId: COMMAND_ID, type: 'cancel', issuedAt: AT, targetCommandId: SNAPSHOT_UUID },
  },
];

/** Values that sit on the edges of the decorators in use: types, bounds, patterns, storable text, dates. */
const EDGES: Json[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  255,
  256,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 53,
  '',
  'x',
  '3',
  'r-1.0.0',
  '../etc',
  'a\u0000b',
  '\ud800',
  'é'.repeat(70),
  'a'.repeat(5000),
  SNAPSHOT_UUID,
  'received',
  'passed',
  'online',
  'install',
  'now',
  '2026-02-30T10:00:00Z',
  '2026-11-25T10:00:00Z',
  '2026-11-25',
  '0000-01-01T00:00:00Z',
  [],
  [1],
  [null],
  ['r-1'],
  [[]],
  {},
  { x: 1 },
  { name: 'base', version: '1.0.0' },
  { snapshot: 'r-1', state: 'trying' },
];
const KEYS = ['extra', 'constructor', 'toString', '__proto__', 'v', 'type', 'release', 'check'];

/** Every object and array inside `value`, the root first. */
function containers(value: Json, found: Array<Json[] | { [key: string]: Json }> = []) {
  if (Array.isArray(value)) {
    found.push(value);
    value.forEach((item) => containers(item, found));
  } else if (value !== null && typeof value === 'object') {
    found.push(value);
    Object.values(value).forEach((item) => containers(item, found));
  }
  return found;
}

function mutate(message: Json, next: () => number): Json {
  const copy = JSON.parse(JSON.stringify(message)) as Json;
  const pick = <T>(list: T[]): T => list[Math.floor(next() * list.length)];
  for (let n = 1 + Math.floor(next() * 3); n > 0; n--) {
    const target = pick(containers(copy));
    const edge = JSON.parse(JSON.stringify(pick(EDGES))) as Json;
    if (Array.isArray(target)) {
      if (target.length > 0 && next() < 0.5) target[Math.floor(next() * target.length)] = edge;
      else if (next() < 0.5) target.push(target.length > 0 ? JSON.parse(JSON.stringify(pick(target))) : edge);
      else target.pop();
    } else {
      const keys = Object.keys(target);
      const roll = next();
      if (keys.length > 0 && roll < 0.2) delete target[pick(keys)];
      else if (roll < 0.3)
        Object.defineProperty(target, pick(KEYS), {
          value: edge,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      else if (keys.length > 0) target[pick(keys)] = edge;
    }
  }
  // through JSON again: the server only ever sees what JSON.parse makes
  return JSON.parse(JSON.stringify(copy)) as Json;
}

describe('acceptsByPlan', () => {
  it.each(VALID.map((valid) => [valid.name, valid] as const))(
    'accepts a valid %s, as class-validator does',
    (_name, valid) => {
      expect(classValidatorAccepts(valid.cls, valid.message)).toBe(true);
      expect(acceptsByPlan(valid.cls, valid.message)).toBe(true);
    },
  );

  it('never accepts what class-validator refuses (seeded mutations of every valid message)', () => {
    const next = seededRandom(20261207);
    let accepted = 0;
    let refused = 0;
    const unsound: string[] = [];
    for (const valid of VALID) {
      for (let i = 0; i < 1500; i++) {
        const mutated = mutate(valid.message, next);
        const fast = acceptsByPlan(valid.cls, mutated);
        const slow = classValidatorAccepts(valid.cls, mutated);
        if (fast && !slow) unsound.push(`${valid.name}: ${JSON.stringify(mutated).slice(0, 300)}`);
        if (fast) accepted++;
        if (!slow) refused++;
      }
    }
    expect(unsound).toEqual([]);
    // the mutations reach both sides of the line, so the check above says something
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(5000);
  });

  it('leaves a message with an unknown property, a nested array or a missing class field to class-validator', () => {
    expect(acceptsByPlan(DeviceStateMessage, { ...deviceState(), extra: 1 })).toBe(false);
    expect(acceptsByPlan(DeviceStateMessage, deviceState({ snapshots: [deviceState().snapshots] }))).toBe(false);
    const install = VALID.find((valid) => valid.name === 'install')!;
    const { type: _type, ...untyped } = install.message as Record<string, Json>;
    expect(acceptsByPlan(install.cls, untyped)).toBe(false);
    expect(acceptsByPlan(MessageRejectedMessage, 'not an object')).toBe(false);
  });

  it('leaves classes whose instance class-transformer builds otherwise than by copying to class-validator', () => {
    class Item {
      @IsOptional()
      @IsString()
      name?: string;
    }
    @Exclude()
    class ExcludedAll {
      @IsString()
      s!: string;
    }
    class ConvertedByType {
      @IsString()
      @Type(() => Number)
      n!: string;
    }
    class MapOfItems {
      @IsObject()
      @ValidateNested()
      @Type(() => Item)
      items!: Map<string, Item>;
    }
    class SetOfItems {
      @IsArray()
      @ValidateNested({ each: true })
      @Type(() => Item)
      items!: Set<Item>;
    }
    // each of these passes a naive reading of its decorators, and fails class-validator
    const cases: Array<[MessageClass, Json]> = [
      [ExcludedAll, { s: 'abc' }],
      [ConvertedByType, { n: 'abc' }],
      [MapOfItems, { items: { name: null } }],
      [SetOfItems, { items: [{ name: 'a' }] }],
    ];
    for (const [cls, message] of cases) {
      expect(classValidatorAccepts(cls, message)).toBe(false);
      expect(acceptsByPlan(cls, message)).toBe(false);
    }
  });

  it('refuses a command whose artifact, reboot policy or window is an array', () => {
    const install = VALID.find((valid) => valid.name === 'install')!;
    const message = install.message as Record<string, Json>;
    for (const bad of [
      { ...message, artifact: [] },
      { ...message, artifact: [offer] },
      { ...message, reboot: [] },
      { ...message, reboot: { mode: 'window', window: [] } },
    ]) {
      expect(classValidatorAccepts(install.cls, bad)).toBe(false);
      expect(acceptsByPlan(install.cls, bad)).toBe(false);
    }
  });

  it('still words a rejection as class-validator does', () => {
    const bad = deviceState();
    (bad.snapshots as Array<Record<string, unknown>>)[0].uuid = 'not-a-uuid';
    expect(parseDeviceState(JSON.stringify(bad))).toMatchObject({
      ok: false,
      message: expect.stringMatching(/snapshots\.0\.uuid/),
    });
  });
});
