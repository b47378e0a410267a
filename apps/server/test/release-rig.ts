import { signManifest } from '@cowroot/protocol';
import { generateKeyPairSync, KeyObject, randomUUID } from 'node:crypto';
import { adminApi } from './admin-api';
import { call, GeneratedStream, manifestBytes, MiB } from './artifact-http';
import { startTestServer, TestServer, TestServerOptions } from './start-test-server';

/** A test server with an ed25519 release key registered, and the calls the artifact tests make again and again. */
export interface ReleaseRig {
  server: TestServer;
  /** the registered release key's private half */
  signingKey: KeyObject;
  /** the admin token's Authorization header */
  admin: Record<string, string>;
  /** an upload's headers: the admin token, the manifest and its signature by `key` (the registered one) */
  uploadHeaders(manifest: Buffer, extra?: Record<string, string>, key?: KeyObject): Record<string, string>;
  createRelease(name: string, version: string): Promise<void>;
  /** Creates a release and uploads a small full stream to it; returns its content and snapshot uuid. */
  publishSmall(
    name: string,
    version: string,
    size?: number,
  ): Promise<{ content: GeneratedStream; snapshotUuid: string }>;
  close(): Promise<void>;
}

export async function startReleaseRig(options: TestServerOptions = {}): Promise<ReleaseRig> {
  const server = await startTestServer(options);
  const api = adminApi(server);
  const admin = { Authorization: `Bearer ${server.adminToken}` };
  const pair = generateKeyPairSync('ed25519');
  try {
    const publicKeyPem = pair.publicKey.export({ format: 'pem', type: 'spki' });
    await api('POST', '/signing-keys', { name: 'release-key', publicKeyPem }, [201]);
  } catch (error) {
    // no rig is returned, so nobody else would close the server
    await server.close();
    throw error;
  }
  const uploadHeaders = (manifest: Buffer, extra: Record<string, string> = {}, key: KeyObject = pair.privateKey) => ({
    ...admin,
    'Content-Type': 'application/octet-stream',
    'X-Cowroot-Manifest': manifest.toString('base64'),
    'X-Cowroot-Signature': signManifest(manifest, key),
    ...extra,
  });
  const createRelease = async (name: string, version: string) => {
    await api('POST', '/releases', { name, version, description: `${name} ${version}` }, [201]);
  };
  return {
    server,
    signingKey: pair.privateKey,
    admin,
    uploadHeaders,
    createRelease,
    async publishSmall(name, version, size = 3 * MiB + 123) {
      await createRelease(name, version);
      const content = new GeneratedStream(size);
      const snapshotUuid = randomUUID();
      const manifest = manifestBytes({
        name,
        version,
        file: 'full.btrfs.zst',
        size,
        sha256: content.sha256(),
        snapshotUuid,
      });
      const uploaded = await call(server, `/api/v1/releases/${name}/${version}/artifacts/full.btrfs.zst`, {
        method: 'PUT',
        headers: uploadHeaders(manifest, { 'Content-Length': String(size) }),
        body: content.readable(),
      });
      if (uploaded.status !== 201) {
        throw new Error(`uploading ${name}@${version}: HTTP ${uploaded.status} ${uploaded.body.toString()}`);
      }
      return { content, snapshotUuid };
    },
    close: () => server.close(),
  };
}

/**
 * A ReleaseRig for the tests of the calling describe block: started before them, closed after them. The
 * object is filled in by the beforeAll, so read its fields inside tests and hooks only.
 */
export function useReleaseRig(options: TestServerOptions = {}): ReleaseRig {
  const rig = {} as ReleaseRig;
  beforeAll(async () => {
    Object.assign(rig, await startReleaseRig(options));
  });
  afterAll(async () => {
    await rig.close?.();
  });
  return rig;
}
