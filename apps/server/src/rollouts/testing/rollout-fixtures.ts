import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { ArtifactKind, MANIFEST_FORMAT, SnapshotInfo, SnapshotOrigin, signManifest } from '@cowroot/protocol';
import { DataSource } from 'typeorm';
import { SimOutcome } from '../../../../../tools/fleet-sim/src/sim-outcome';
import { SimulatedDevice, SimulatedDeviceOptions } from '../../../../../tools/fleet-sim/src/simulated-device';

export interface SeededRelease {
  id: string;
  name: string;
  version: string;
  snapshotUuid: string;
  /** file name → artifact id */
  artifacts: Record<string, string>;
}

const { privateKey, publicKey } = generateKeyPairSync('ed25519');

/**
 * A release with a full stream and incrementals from the given parents, written straight into the
 * releases tables with real signed manifests (the upload path is the releases feature's and has its own
 * tests; rollouts only read these rows).
 */
export async function seedRelease(
  dataSource: DataSource,
  input: {
    name: string;
    version: string;
    /**
     * `deltaFormat`: also a delta artifact from that parent, its manifest naming that format; null: a delta whose
     * manifest names none (written by a release tool older than the field)
     */
    parents?: { version: string; snapshotUuid: string; deltaFormat?: number | null }[];
    fullSize?: number;
  },
): Promise<SeededRelease> {
  let [key] = (await dataSource.query(`SELECT id FROM signing_keys WHERE name = 'rollout-tests'`)) as { id: string }[];
  if (!key) {
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    [key] = (await dataSource.query(
      `INSERT INTO signing_keys (name, public_key_pem, fingerprint, created_by) VALUES ('rollout-tests', $1, $2, 'test') RETURNING id`,
      [pem, randomBytes(32).toString('hex')],
    )) as { id: string }[];
  }
  const snapshotUuid = randomUUID();
  const [release] = (await dataSource.query(
    `INSERT INTO releases (name, version, snapshot_uuid, created_by, created_by_name) VALUES ($1, $2, $3, 'test', 'test') RETURNING id`,
    [input.name, input.version, snapshotUuid],
  )) as { id: string }[];
  const artifacts: Record<string, string> = {};
  const parents = input.parents ?? [];
  const streams: Array<{
    file: string;
    kind: ArtifactKind;
    size: number;
    parent: { version: string; snapshotUuid: string } | null;
    deltaFormat?: number | null;
  }> = [
    {
      file: `${input.name}-${input.version}.full.btrfs.zst`,
      kind: ArtifactKind.Full,
      size: input.fullSize ?? 100_000_000,
      parent: null,
    },
    ...parents.map((parent, i) => ({
      file: `${input.name}-${input.version}.from-${parent.version}.btrfs.zst`,
      kind: ArtifactKind.Incremental,
      size: 5_000_000 + i,
      parent,
    })),
    ...parents
      .filter((parent) => parent.deltaFormat !== undefined)
      .map((parent, i) => ({
        file: `${input.name}-${input.version}.from-${parent.version}.delta.zst`,
        kind: ArtifactKind.Delta,
        size: 500_000 + i,
        parent,
        deltaFormat: parent.deltaFormat,
      })),
  ];
  for (const stream of streams) {
    const sha256 = randomBytes(32).toString('hex');
    const manifest = Buffer.from(
      JSON.stringify({
        format: MANIFEST_FORMAT,
        release: { name: input.name, version: input.version },
        kind: stream.kind,
        file: stream.file,
        size: stream.size,
        sha256,
        compression: 'zstd',
        snapshotUuid,
        parent: stream.parent
          ? { release: { name: input.name, version: stream.parent.version }, snapshotUuid: stream.parent.snapshotUuid }
          : null,
        createdAt: new Date().toISOString(),
        ...(stream.kind === ArtifactKind.Delta
          ? {
              reconstructs: { size: 5_000_000, sha256: randomBytes(32).toString('hex') },
              ...(stream.deltaFormat != null ? { deltaFormat: stream.deltaFormat } : {}),
            }
          : {}),
      }),
    );
    const [row] = (await dataSource.query(
      `INSERT INTO release_artifacts (release_id, file, kind, size, sha256, compression, snapshot_uuid, parent_release_name, parent_release_version,
                                      parent_snapshot_uuid, manifest, signature, signing_key_id, uploaded_by, delta_format)
       VALUES ($1, $2, $3, $4, $5, 'zstd', $6, $7, $8, $9, $10, $11, $12, 'test', $13) RETURNING id`,
      [
        release.id,
        stream.file,
        stream.kind,
        stream.size,
        sha256,
        snapshotUuid,
        stream.parent ? input.name : null,
        stream.parent?.version ?? null,
        stream.parent?.snapshotUuid ?? null,
        manifest,
        signManifest(manifest, privateKey),
        key.id,
        stream.deltaFormat ?? null,
      ],
    )) as { id: string }[];
    artifacts[stream.file] = row.id;
  }
  return { id: release.id, name: input.name, version: input.version, snapshotUuid, artifacts };
}

/** A read-only snapshot received from a release (usable as a delta parent). */
export function receivedSnapshot(
  id: string,
  receivedUuid: string,
  release: { name: string; version: string },
): SnapshotInfo {
  return {
    id,
    uuid: randomUUID(),
    receivedUuid,
    parentUuid: null,
    readOnly: true,
    origin: SnapshotOrigin.Received,
    release,
    createdAt: new Date().toISOString(),
  };
}

/** A read-only snapshot committed from the workspace: no received_uuid, never a delta parent. */
export function committedSnapshot(id: string): SnapshotInfo {
  return {
    id,
    uuid: randomUUID(),
    receivedUuid: null,
    parentUuid: null,
    readOnly: true,
    origin: SnapshotOrigin.Committed,
    release: null,
    createdAt: new Date().toISOString(),
  };
}

export interface TestFleetServer {
  httpUrl: string;
  adminToken: string;
  mqttPort: number;
}

/** Provisions devices through the REST bulk endpoint and returns simulated devices for them (not connected). */
export async function provisionDevices(
  server: TestFleetServer,
  specs: { id: string; tags?: string[]; outcome?: SimOutcome; snapshots?: SnapshotInfo[]; deltaFormats?: number[] }[],
  rebootMs = 100,
  /** per device, how it reaches the broker (BROKER=nats: the NATS nodes and a broker-token password) */
  connection?: (id: string, credential: string) => Partial<SimulatedDeviceOptions>,
): Promise<SimulatedDevice[]> {
  const rows = specs.map((spec) => ({
    id: spec.id,
    tags: spec.tags ?? [],
    credential: randomBytes(24).toString('base64url'),
  }));
  const response = await fetch(`${server.httpUrl}/api/v1/devices/bulk`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ devices: rows }),
  });
  if (!response.ok) throw new Error(`bulk provisioning failed: HTTP ${response.status} ${await response.text()}`);
  return specs.map(
    (spec, i) =>
      new SimulatedDevice({
        id: spec.id,
        credential: rows[i].credential,
        mqttUrl: `mqtt://127.0.0.1:${server.mqttPort}`,
        outcome: spec.outcome ?? SimOutcome.Confirm,
        snapshots: spec.snapshots,
        deltaFormats: spec.deltaFormats,
        rebootMs,
        ...connection?.(spec.id, rows[i].credential),
      }),
  );
}

/** Polls `probe` until it returns a truthy value; fails with the last value after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}
