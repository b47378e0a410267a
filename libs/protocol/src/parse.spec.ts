import { generateKeyPairSync, randomUUID } from 'node:crypto';
import {
  ArtifactKind,
  CommandType,
  DeviceChannel,
  ErrorCode,
  MANIFEST_FORMAT,
  MAX_MESSAGE_BYTES,
  RebootMode,
  deviceTopic,
  parseCommand,
  parseDeviceState,
  parseJobEvent,
  parseManifest,
  parsePresence,
  parseDeviceTopic,
  signManifest,
  verifyManifestSignature,
} from './index';

import { SNAPSHOT_UUID, deviceState } from './testing/device-state.fixture';
const uuid = SNAPSHOT_UUID;

const state = deviceState;

describe('topics', () => {
  it('builds and parses a device topic', () => {
    const topic = deviceTopic('dev-1', DeviceChannel.State);
    expect(topic).toBe('cowroot/v1/devices/dev-1/state');
    expect(parseDeviceTopic(topic)).toEqual({ deviceId: 'dev-1', channel: DeviceChannel.State });
  });

  it('refuses wildcards, extra levels, unknown channels and bad ids', () => {
    for (const topic of [
      'cowroot/v1/devices/+/state',
      'cowroot/v1/devices/#',
      'cowroot/v1/devices/a/state/x',
      'cowroot/v1/devices/a/secrets',
      'cowroot/v1/devices/../state',
      'other/a/state',
    ]) {
      expect(parseDeviceTopic(topic)).toBeNull();
    }
    expect(() => deviceTopic('a/b', DeviceChannel.State)).toThrow(/invalid device id/);
  });
});

describe('parseDeviceState', () => {
  it('accepts a full state report and keeps nested classes', () => {
    const result = parseDeviceState(JSON.stringify(state()));
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.value.snapshots[0].release?.version).toBe('1.0.0');
  });

  it('rejects bad JSON, a wrong version, unknown fields and oversize payloads with codes', () => {
    expect(parseDeviceState('{nope')).toMatchObject({ ok: false, code: ErrorCode.MalformedMessage });
    expect(parseDeviceState(JSON.stringify(state({ v: 99 })))).toMatchObject({
      ok: false,
      code: ErrorCode.UnsupportedProtocolVersion,
    });
    const extra = parseDeviceState(JSON.stringify(state({ rootPassword: 'x' })));
    expect(extra).toMatchObject({ ok: false, code: ErrorCode.MalformedMessage });
    if (!extra.ok) expect(extra.message).toMatch(/rootPassword/);
    const huge = Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x20);
    expect(parseDeviceState(huge)).toMatchObject({ ok: false, code: ErrorCode.MessageTooLarge });
  });

  it('accepts the delta formats an agent reads, optional so older agents still report', () => {
    const older = parseDeviceState(JSON.stringify(state()));
    expect(older.ok && older.value.deltaFormats).toBeUndefined();
    for (const deltaFormats of [[], [1, 2, 3], [255], Array.from({ length: 16 }, (_, i) => i + 1)]) {
      expect(parseDeviceState(JSON.stringify(state({ deltaFormats })))).toMatchObject({
        ok: true,
        value: { deltaFormats },
      });
    }
    for (const deltaFormats of [3, [0], [256], [1.5], ['3'], [null], Array.from({ length: 17 }, (_, i) => i + 1)]) {
      const result = parseDeviceState(JSON.stringify(state({ deltaFormats })));
      expect(result).toMatchObject({ ok: false, code: ErrorCode.MalformedMessage, message: /deltaFormats/ });
    }
  });

  it('names the nested field that is wrong', () => {
    const bad = state();
    (bad.snapshots as Array<Record<string, unknown>>)[0].uuid = 'not-a-uuid';
    const result = parseDeviceState(JSON.stringify(bad));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(/snapshots\.0\.uuid/);
  });
});

describe('parseJobEvent and parsePresence', () => {
  it('accepts a rolled-back event with its detail', () => {
    const result = parseJobEvent(
      JSON.stringify({
        v: 1,
        commandId: randomUUID(),
        eventId: randomUUID(),
        type: 'rolled-back',
        at: new Date().toISOString(),
        rollback: {
          snapshot: 'r-2',
          restoredSnapshot: 'r-1',
          by: 'health-check',
          check: 'net',
          outputTail: 'no route',
        },
      }),
    );
    expect(result.ok).toBe(true);
  });

  it('rejects an event with an unknown error code', () => {
    const result = parseJobEvent(
      JSON.stringify({
        v: 1,
        commandId: randomUUID(),
        eventId: randomUUID(),
        type: 'failed',
        at: new Date().toISOString(),
        error: { code: 'WHATEVER', message: 'x' },
      }),
    );
    expect(result.ok).toBe(false);
  });

  it('accepts a last will without a timestamp', () => {
    expect(parsePresence(JSON.stringify({ v: 1, status: 'offline' })).ok).toBe(true);
    expect(parsePresence(JSON.stringify({ v: 1, status: 'asleep' })).ok).toBe(false);
  });
});

describe('parseCommand', () => {
  const base = { v: 1, commandId: randomUUID(), issuedAt: new Date().toISOString() };

  it('dispatches on type to the right class', () => {
    const result = parseCommand(
      JSON.stringify({ ...base, type: 'switch', snapshot: 'r-1', reboot: { mode: RebootMode.Now } }),
    );
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.value.type).toBe(CommandType.Switch);
  });

  it('rejects an unknown type and a missing field', () => {
    expect(parseCommand(JSON.stringify({ ...base, type: 'format-disk' }))).toMatchObject({
      ok: false,
      code: ErrorCode.UnknownCommand,
    });
    const missing = parseCommand(JSON.stringify({ ...base, type: 'switch', reboot: { mode: 'now' } }));
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.message).toMatch(/snapshot/);
  });

  it('rejects snapshot ids that could escape a directory', () => {
    const result = parseCommand(JSON.stringify({ ...base, type: 'delete', snapshots: ['../../etc'] }));
    expect(result.ok).toBe(false);
  });
});

describe('manifest signatures', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const manifest = Buffer.from(
    JSON.stringify({
      format: MANIFEST_FORMAT,
      release: { name: 'base', version: '1.1.0' },
      kind: ArtifactKind.Incremental,
      file: 'base-1.1.0-from-1.0.0.btrfs.zst',
      size: 1234,
      sha256: 'a'.repeat(64),
      compression: 'zstd',
      snapshotUuid: uuid,
      parent: { release: { name: 'base', version: '1.0.0' }, snapshotUuid: uuid },
      createdAt: '2026-11-25T00:00:00Z',
    }),
  );

  it('verifies its own signature and refuses a tampered manifest or another key', () => {
    const signature = signManifest(manifest, privateKey);
    expect(verifyManifestSignature(manifest, signature, publicKey)).toBe(true);
    const tampered = Buffer.from(manifest.toString().replace('1234', '1235'));
    expect(verifyManifestSignature(tampered, signature, publicKey)).toBe(false);
    const other = generateKeyPairSync('ed25519').publicKey;
    expect(verifyManifestSignature(manifest, signature, other)).toBe(false);
    expect(verifyManifestSignature(manifest, 'AAAA', publicKey)).toBe(false);
  });

  it('parses a manifest and enforces parent rules', () => {
    expect(parseManifest(manifest).ok).toBe(true);
    const full = JSON.parse(manifest.toString());
    full.kind = 'full';
    expect(parseManifest(JSON.stringify(full))).toMatchObject({ ok: false });
  });

  it('carries a security version and a rollback allowance that is not below it', () => {
    const plain = JSON.parse(manifest.toString());
    const withFloor = parseManifest(JSON.stringify({ ...plain, securityVersion: 7, allowRollbackFrom: 9 }));
    expect(withFloor).toMatchObject({ ok: true, value: { securityVersion: 7, allowRollbackFrom: 9 } });
    expect(parseManifest(JSON.stringify({ ...plain, securityVersion: 7, allowRollbackFrom: 6 }))).toMatchObject({
      ok: false,
      message: expect.stringContaining('allowRollbackFrom'),
    });
    for (const securityVersion of [-1, 1.5, 2 ** 31, '3']) {
      expect(parseManifest(JSON.stringify({ ...plain, securityVersion }))).toMatchObject({ ok: false });
    }
  });

  it('parses a delta manifest only with a parent and the plain stream it reconstructs', () => {
    const delta = { ...JSON.parse(manifest.toString()), kind: 'delta' };
    expect(parseManifest(JSON.stringify(delta))).toMatchObject({ ok: false, message: /reconstructs/ });
    const reconstructs = { size: 99, sha256: 'b'.repeat(64) };
    expect(parseManifest(JSON.stringify({ ...delta, reconstructs }))).toMatchObject({
      ok: true,
      value: { kind: 'delta', reconstructs },
    });
    expect(parseManifest(JSON.stringify({ ...delta, reconstructs, parent: null }))).toMatchObject({ ok: false });
    expect(parseManifest(JSON.stringify({ ...delta, reconstructs: { size: 0, sha256: 'x' } }))).toMatchObject({
      ok: false,
    });
    const incremental = JSON.parse(manifest.toString());
    expect(parseManifest(JSON.stringify({ ...incremental, reconstructs }))).toMatchObject({ ok: false });
  });

  it('carries the delta format of a delta artifact, optional so older manifests still parse', () => {
    const delta = {
      ...JSON.parse(manifest.toString()),
      kind: 'delta',
      reconstructs: { size: 99, sha256: 'b'.repeat(64) },
    };
    expect(parseManifest(JSON.stringify(delta))).toMatchObject({ ok: true, value: { deltaFormat: undefined } });
    for (const deltaFormat of [1, 2, 3]) {
      expect(parseManifest(JSON.stringify({ ...delta, deltaFormat }))).toMatchObject({
        ok: true,
        value: { deltaFormat },
      });
    }
    for (const deltaFormat of [0, 4, 2.5, '3']) {
      expect(parseManifest(JSON.stringify({ ...delta, deltaFormat }))).toMatchObject({ ok: false });
    }
    const incremental = JSON.parse(manifest.toString());
    expect(parseManifest(JSON.stringify({ ...incremental, deltaFormat: 3 }))).toMatchObject({
      ok: false,
      message: /deltaFormat/,
    });
  });
});
