import { createHash, generateKeyPairSync } from 'node:crypto';
import { ArtifactKind, JobEventType, MANIFEST_FORMAT, signManifest } from '@cowroot/protocol';
import { FleetSimulator } from '../../tools/fleet-sim/src/fleet-simulator';

interface DispatchBenchInput {
  httpUrl: string;
  token: string;
  fleet: FleetSimulator;
  devices: number;
}

async function api(
  input: DispatchBenchInput,
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

/**
 * Publishes a small signed release through the real API, then times one rollout wave over every device:
 * from the create call until every simulated device has received its install command (its `accepted`).
 */
export async function benchRolloutDispatch(input: DispatchBenchInput): Promise<{ seconds: number }> {
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

  const acceptedBefore = input.fleet.count(JobEventType.Accepted);
  const started = Date.now();
  await api(input, 'POST', '/api/v1/rollouts', {
    name: 'bench wave',
    release: { name: 'bench-os', version: '1.0.0' },
    selector: { tags: ['bench'] },
    waves: [{ percent: 100, timeoutSeconds: 3600 }],
    rebootMode: 'never',
  });
  const deadline = started + 120_000;
  while (input.fleet.count(JobEventType.Accepted) - acceptedBefore < input.devices) {
    if (Date.now() > deadline) {
      throw new Error(
        `only ${input.fleet.count(JobEventType.Accepted) - acceptedBefore}/${input.devices} devices got the command within 120 s`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { seconds: (Date.now() - started) / 1000 };
}
