import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { ArtifactKind, JobEventType, MANIFEST_FORMAT, signManifest } from '@cowroot/protocol';
import { FleetSimulator } from '../../tools/fleet-sim/src/fleet-simulator';

interface ApiInput {
  httpUrl: string;
  token: string;
}

interface DispatchBenchInput extends ApiInput {
  fleet: FleetSimulator;
  devices: number;
}

async function api(
  input: ApiInput,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<unknown> {
  const response = await fetch(`${input.httpUrl}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${input.token}`,
      ...(body instanceof Buffer ? {} : { 'Content-Type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : body instanceof Buffer ? body : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
  return response.status === 204 ? null : response.json();
}

/** Registers a signing key and publishes the small signed release every dispatch measurement rolls out. */
export async function publishBenchRelease(input: ApiInput): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await api(input, 'POST', '/api/v1/signing-keys', {
    name: 'bench',
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  });
  await api(input, 'POST', '/api/v1/releases', { name: 'bench-os', version: '1.0.0' });
  const stream = Buffer.alloc(64 * 1024, 7);
  const file = 'bench-os-1.0.0-full.btrfs.zst';
  const manifest = Buffer.from(
    JSON.stringify({
      format: MANIFEST_FORMAT,
      release: { name: 'bench-os', version: '1.0.0' },
      kind: ArtifactKind.Full,
      file,
      size: stream.length,
      sha256: createHash('sha256').update(stream).digest('hex'),
      compression: 'zstd',
      snapshotUuid: '11111111-2222-3333-4444-555555555555',
      parent: null,
      createdAt: new Date().toISOString(),
    }),
  );
  await api(input, 'PUT', `/api/v1/releases/bench-os/1.0.0/artifacts/${file}`, stream, {
    'Content-Type': 'application/octet-stream',
    'X-Cowroot-Manifest': manifest.toString('base64'),
    'X-Cowroot-Signature': signManifest(manifest, privateKey),
  });
}

/**
 * Times one rollout wave over every connected device: from the create call until every simulated device
 * has received its install command (its `accepted`).
 */
export async function benchRolloutDispatch(
  input: DispatchBenchInput,
): Promise<{ seconds: number; planSeconds: number }> {
  const acceptedBefore = input.fleet.count(JobEventType.Accepted);
  const started = Date.now();
  await api(input, 'POST', '/api/v1/rollouts', {
    name: 'bench wave',
    release: { name: 'bench-os', version: '1.0.0' },
    selector: { tags: ['bench'] },
    waves: [{ percent: 100, timeoutSeconds: 3600 }],
    rebootMode: 'never',
  });
  const planSeconds = (Date.now() - started) / 1000;
  const deadline = started + 120_000;
  while (input.fleet.count(JobEventType.Accepted) - acceptedBefore < input.devices) {
    if (Date.now() > deadline) {
      throw new Error(
        `only ${input.fleet.count(JobEventType.Accepted) - acceptedBefore}/${input.devices} devices got the command within 120 s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { seconds: (Date.now() - started) / 1000, planSeconds };
}

/**
 * Times one wave over a fleet that is offline (provisioned, never connected): from the create call until
 * the database holds no queued execution of the rollout, i.e. every device has its command recorded and
 * handed to the broker, which queues it for the device's next session. This is the server's own cost of
 * planning and dispatching, without the simulated devices' answers competing for the same two cores.
 */
export async function benchOfflineDispatch(
  input: ApiInput & { dbUrl: string; count: number },
): Promise<{ seconds: number; planSeconds: number; provisionSeconds: number }> {
  const tag = `offline-${input.count}`;
  let t = Date.now();
  const rows = Array.from({ length: input.count }, (_, i) => ({
    id: `${tag}-${String(i).padStart(6, '0')}`,
    tags: [tag],
    credential: randomBytes(24).toString('base64url'),
  }));
  for (let i = 0; i < rows.length; i += 1000) {
    await api(input, 'POST', '/api/v1/devices/bulk', { devices: rows.slice(i, i + 1000) });
  }
  const provisionSeconds = (Date.now() - t) / 1000;
  const db = new Client({ connectionString: input.dbUrl });
  await db.connect();
  try {
    t = Date.now();
    const rollout = (await api(input, 'POST', '/api/v1/rollouts', {
      name: `bench offline ${input.count}`,
      release: { name: 'bench-os', version: '1.0.0' },
      selector: { tags: [tag] },
      waves: [{ percent: 100, timeoutSeconds: 3600 }],
      rebootMode: 'never',
    })) as { id: string };
    const planSeconds = (Date.now() - t) / 1000;
    const deadline = t + 300_000;
    for (;;) {
      const { rows: left } = await db.query(
        `SELECT count(*)::int AS n FROM rollout_executions WHERE rollout_id = $1 AND state = 'queued'`,
        [rollout.id],
      );
      if (left[0].n === 0) break;
      if (Date.now() > deadline) throw new Error(`${left[0].n}/${input.count} executions still queued after 300 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { seconds: (Date.now() - t) / 1000, planSeconds, provisionSeconds };
  } finally {
    await db.end();
  }
}
