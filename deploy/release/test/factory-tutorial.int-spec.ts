import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describePrivileged, requireCommand, requireLoopDevices, requireRoot } from '@cowroot/testing';
import { startTestServer, TestServer } from '../../../apps/server/test/start-test-server';
import { Agent } from '../../../apps/agent/src/agent';
import { validateAgentConfig } from '../../../apps/agent/src/config/agent-config';
import { AgentLogger } from '../../../apps/agent/src/logger';
import { CommandRunner } from '@cowroot/device';
import { loopDevicesUnder, mountsOf, partitionTable, sh, withPartition } from './image-inspection';

const here = __dirname;
const repo = resolve(here, '../../..');
const doc = join(repo, 'docs/factory.md');

/** The ```sh blocks of one section of a markdown file, in order (the section ends at the next `## `). */
export function shellBlocks(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`no section "## ${heading}"`);
  const rest = markdown.slice(start + heading.length + 5);
  const end = rest.search(/\n## /);
  const section = end < 0 ? rest : rest.slice(0, end);
  return [...section.matchAll(/\n```sh\n([\s\S]*?)\n```/g)].map((match) => match[1]);
}

function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    const child = execFile(
      'bash',
      ['-euo', 'pipefail', '-c', script],
      { cwd, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
    child.stdin?.end();
  });
}

describePrivileged(
  'docs/factory.md "First device", run exactly as written against a real fleet server',
  [
    requireRoot,
    requireLoopDevices,
    ...['btrfs', 'mkfs.btrfs', 'mkimage', 'zstd', 'rsync', 'sfdisk', 'mkfs.vfat', 'mcopy', 'mkenvimage'].map(
      requireCommand,
    ),
    ...['fw_printenv', 'bmaptool', 'openssl', 'curl', 'jq'].map(requireCommand),
  ],
  () => {
    let work: string;
    let server: TestServer | undefined;
    let agent: Agent | null = null;
    const logs: string[] = [];

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'cowroot-tutorial-'));
      const bin = join(work, 'bin');
      await mkdir(bin);
      await new CommandRunner().run(process.execPath, [
        join(repo, 'tools/bundle.mjs'),
        join(repo, 'deploy/release/src/main.ts'),
        join(bin, 'cowroot-release.js'),
        '--executable',
      ]);
      await symlink(join(bin, 'cowroot-release.js'), join(bin, 'cowroot-release'));
      server = await startTestServer();
    }, 120_000);

    afterAll(async () => {
      await agent?.stop(false).catch(() => undefined);
      // the tutorial leaves its build pool mounted on purpose (the parent of the next release)
      for (const mount of (await mountsOf(work)).reverse()) await sh('umount', [mount]).catch(() => undefined);
      for (const line of await loopDevicesUnder(work))
        await sh('losetup', ['-d', line.split(/\s+/)[0]]).catch(() => undefined);
      await server?.close();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it('runs every command of the section, and the flashed device comes online on the server with its baked identity', async () => {
      const blocks = shellBlocks(await readFile(doc, 'utf8'), 'First device');
      expect(blocks.length).toBeGreaterThanOrEqual(6);
      const dir = join(work, 'line');
      await mkdir(dir);
      const env = {
        ...process.env,
        PATH: `${join(work, 'bin')}:${process.env.PATH ?? ''}`,
        COWROOT_SRC: repo,
        COWROOT: server!.httpUrl,
        TOKEN: server!.adminToken,
        MQTT_URL: `mqtt://127.0.0.1:${server!.mqttPort}`,
      };
      const started = Date.now();
      const run = await bash(blocks.join('\n'), dir, env);
      if (run.code !== 0) throw new Error(`the tutorial failed (exit ${run.code}):\n${run.output}`);
      console.log(`tutorial ran in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      expect(run.output).toContain('provisioned: 1');
      expect(run.output).toMatch(/factory image .*gw-0001\.img \(snapshot base-1\.0\.0\)/);
      expect(run.output).toMatch(/gw-0001\.img1 .* 32M +c W95 FAT32 \(LBA\)/);
      expect(run.output).toMatch(/boot\s+scr/);

      // the card: the pool partition grown to its end; the device's pool and env read from it
      const card = join(dir, 'card.img');
      const [boot, pool] = (await partitionTable(card)).partitions;
      expect(pool.offset + pool.size).toBe(2048 * 1024 * 1024);
      const envDir = join(work, 'env');
      await mkdir(envDir);
      await sh('mcopy', ['-n', '-i', `${card}@@${boot.offset}`, '::/uboot.env', '::/uboot-redund.env', envDir]);
      await writeFile(
        join(envDir, 'fw_env.config'),
        `${envDir}/uboot.env 0x0 0x4000\n${envDir}/uboot-redund.env 0x0 0x4000\n`,
      );
      await writeFile(join(work, 'cmdline'), 'root=/dev/vda2 cowroot.snapshot=base-1.0.0 cowroot.trial=0\n');

      // the real agent on the flashed pool, with the config the image baked in (device paths seen from here)
      await withPartition(
        card,
        pool,
        join(work, 'pool'),
        'subvolid=5',
        async (mnt) => {
          const text = (await readFile(join(mnt, 'config/agent.json'), 'utf8'))
            .replaceAll('/var/lib/cowroot/pool', mnt)
            .replaceAll('"/etc/cowroot/', `"${mnt}/workspace/etc/cowroot/`);
          const config = validateAgentConfig({
            ...(JSON.parse(text) as Record<string, unknown>),
            fwEnvConfig: join(envDir, 'fw_env.config'),
            kernelCmdlinePath: join(work, 'cmdline'),
            rebootCommand: ['true'],
          });
          expect(config.deviceId).toBe('gw-0001');
          expect(config.credential).toBe((await readFile(join(dir, 'gw-0001.credential'), 'utf8')).trim());
          agent = new Agent(config, new AgentLogger(config.deviceId, (line) => logs.push(line)));
          await agent.start();
          const deadline = Date.now() + 30_000;
          let device: { online?: boolean; bootedSnapshot?: string | null; currentSnapshot?: string | null } = {};
          while (Date.now() < deadline) {
            const response = await fetch(`${server!.httpUrl}/api/v1/devices/gw-0001`, {
              headers: { authorization: `Bearer ${server!.adminToken}` },
            });
            device = (await response.json()) as typeof device;
            if (device.online && device.bootedSnapshot) break;
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
          expect(device).toMatchObject({ online: true, bootedSnapshot: 'base-1.0.0' });
          await agent.stop(false);
          agent = null;
        },
        true,
      );
      expect(logs.join('\n')).not.toMatch(/"level":"error"/);
    }, 180_000);
  },
);
