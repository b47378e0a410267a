import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LoopBtrfs, createLoopBtrfs } from '@cowroot/device/testing';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { startTestServer, TestServer } from '../../server/test/start-test-server';
import { writeFakeRootfs } from '../../../deploy/release/test/fake-rootfs';
import { runCliInProcess } from '../test/run-cli';
import { ExitCode } from './exit-codes';

const run = promisify(execFile);

/**
 * The operator's whole path on real btrfs: `cowroot-release build` (the real release tool, bundled, on a
 * loop-mounted btrfs pool) writes a full release and a release with full + incremental streams, and
 * `cowroot releases publish` (in-process runCli) uploads those directories to the real server.
 */
describePrivileged(
  'cowroot releases publish of directories built by cowroot-release on real btrfs',
  [
    requireRoot,
    requireCommand('btrfs'),
    requireCommand('mkfs.btrfs'),
    requireCommand('mkimage'),
    requireCommand('zstd'),
    requireCommand('rsync'),
    requireLoopDevices,
  ],
  () => {
    let work: string;
    let pool: LoopBtrfs | undefined;
    let server: TestServer | undefined;
    let releaseTool: string;
    let env: Record<string, string>;
    const out = (release: string) => join(work, 'out', release);

    async function build(release: string, extra: string[] = []): Promise<void> {
      const [name, version] = release.split('@');
      await run(process.execPath, [
        releaseTool,
        'build',
        '--rootfs',
        join(work, 'rootfs'),
        '--pool',
        pool!.mount,
        '--name',
        name,
        '--version',
        version,
        '--key',
        join(work, 'release.key'),
        '--out',
        out(release),
        '--arch',
        'x86',
        ...extra,
      ]);
    }

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'cowroot-cli-built-'));
      releaseTool = join(work, 'cowroot-release.js');
      await run(process.execPath, [
        resolve(__dirname, '../../../tools/bundle.mjs'),
        resolve(__dirname, '../../../deploy/release/src/main.ts'),
        releaseTool,
        '--executable',
      ]);
      pool = await createLoopBtrfs({ sizeMiB: 256, label: 'cli-built' });
      await writeFakeRootfs(join(work, 'rootfs'));
      await run(process.execPath, [releaseTool, 'keygen', '--out', join(work, 'release')]);
      await build('demo@1.0');
      await writeFile(join(work, 'rootfs', 'etc', 'hostname'), 'device-1-1\n');
      await build('demo@1.1', ['--base', 'demo@1.0', '--delta-from', 'demo@1.0']);

      server = await startTestServer();
      env = {
        COWROOT_SERVER: server.httpUrl,
        COWROOT_TOKEN: server.adminToken,
        COWROOT_CONFIG: join(work, 'unused.json'),
      };
      const registered = await fetch(`${server.httpUrl}/api/v1/signing-keys`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${server.adminToken}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'build-host', publicKeyPem: await readFile(join(work, 'release.pub'), 'utf8') }),
      });
      expect(registered.status).toBe(201);
    });

    afterAll(async () => {
      await server?.close();
      await pool?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('publishes both releases; the server holds byte-identical streams with the parent link', async () => {
      for (const release of ['demo@1.0', 'demo@1.1']) {
        const result = await runCliInProcess(
          ['--json', 'releases', 'publish', out(release), '--chunk-size', '256K'],
          env,
        );
        expect(result.code).toBe(ExitCode.Ok);
        expect(JSON.parse(result.stdout).releaseCreated).toBe(true);
      }
      const shown = await runCliInProcess(['--json', 'releases', 'show', 'demo@1.1'], env);
      const release = JSON.parse(shown.stdout) as {
        snapshotUuid: string;
        artifacts: {
          file: string;
          kind: string;
          sha256: string;
          parent: { name: string; version: string } | null;
          url: string;
        }[];
      };
      const index = JSON.parse(await readFile(join(out('demo@1.1'), 'release.json'), 'utf8')) as {
        snapshotUuid: string;
        artifacts: { file: string; sha256: string }[];
      };
      expect(release.snapshotUuid).toBe(index.snapshotUuid);
      expect(release.artifacts.map((a) => [a.file, a.sha256]).sort()).toEqual(
        index.artifacts.map((a) => [a.file, a.sha256]).sort(),
      );
      expect(release.artifacts.find((a) => a.kind === 'incremental')?.parent).toMatchObject({
        name: 'demo',
        version: '1.0',
      });

      for (const artifact of release.artifacts) {
        const response = await fetch(`${server!.httpUrl}/api/v1/releases/demo/1.1/artifacts/${artifact.file}`, {
          headers: { Authorization: `Bearer ${server!.adminToken}` },
        });
        const bytes = Buffer.from(await response.arrayBuffer());
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(artifact.sha256);
        expect(bytes.equals(await readFile(join(out('demo@1.1'), artifact.file)))).toBe(true);
      }
    });
  },
);
