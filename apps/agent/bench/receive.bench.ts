/**
 * npm run bench:agent — the agent's receive path against plain `btrfs receive`, and the agent's memory.
 *
 * For a 100 MiB and a 1 GiB release (random data, so zstd cannot shrink the work away):
 *  - baseline: `zstd -d -c <artifact> | btrfs receive` with the pipe between the two processes (no node),
 *    reading the artifact from the device's pool, downloaded there (untimed) by the agent's own
 *    downloader just before: where a device has to keep a stream, written the way the agent writes its
 *    spool; for information also from the bench host's temp directory, off the pool;
 *  - agent: the bundled agent (dist/cowroot-agent.js) as its own process gets an install command over MQTT,
 *    downloads the artifact over HTTP, verifies it and receives it; its receive time is measured from its
 *    own log (end of verify → staged), its peak RSS (VmHWM) from /proc.
 * Each size is measured BENCH_ROUNDS times (default 7), baselines and agent alternating, with deleted
 * subvolumes cleaned and the pool synced between runs; the medians are compared.
 * Prints the receive throughput of both, the ratio agent/baseline (goal ≥ 0.9) and the peak RSS (goal
 * ≤ 64 MiB and flat in stream size). The agent runs with the node flags of its systemd unit. Needs root, loop devices, btrfs-progs, libubootenv-tool, zstd.
 */
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect } from 'mqtt';
import { MANIFEST_FORMAT, PROTOCOL_VERSION, signManifest } from '@cowroot/protocol';
import { BtrfsAdapter, CommandRunner, SnapshotStore, createFileBackedEnv } from '@cowroot/device';
import { LoopBtrfs, createLoopBtrfs } from '@cowroot/device/testing';
import { ArtifactDownloader } from '../src/download/artifact-downloader';
import { ArtifactHttpServer } from '../src/testing/artifact-http-server';
import { unitNodeFlags } from '../src/testing/agent-runtime';
import { freePort } from '@cowroot/testing/free-port';

const MiB = 1024 * 1024;
const DEVICE_ID = 'bench-device';
const CREDENTIAL = 'bench-credential-0123456789';
const runner = new CommandRunner();
const btrfs = new BtrfsAdapter(runner);

interface Result {
  sizeMiB: number;
  streamBytes: number;
  /** medians over ROUNDS, baselines and agent alternating */
  baselineSeconds: number;
  offPoolBaselineSeconds: number;
  agentSeconds: number;
  baselineRounds: number[];
  offPoolBaselineRounds: number[];
  agentRounds: number[];
  /** the agent's RSS once connected, before the install: node + the bundle */
  idleRssMiB: number;
  peakRssMiB: number;
}

function rssOf(status: string, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssFile'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  for (let done = 0; done < bytes; done += 4 * MiB) {
    const chunk = randomBytes(Math.min(4 * MiB, bytes - done));
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB }) as AsyncIterable<Buffer>)
    hash.update(chunk);
  return hash.digest('hex');
}

/**
 * zstd -d | btrfs receive, process to process, then `btrfs filesystem sync`: the agent makes a received
 * snapshot durable (its metadata write fsyncs, which commits the btrfs transaction) before it may be tried,
 * so the baseline pays for the same writeback instead of leaving 1 GiB dirty in the page cache.
 */
async function baselineReceive(artifact: string, into: string, mount: string): Promise<number> {
  const started = process.hrtime.bigint();
  await new Promise<void>((resolvePromise, reject) => {
    const zstd = spawn('zstd', ['-d', '-c', '-q', artifact], { stdio: ['ignore', 'pipe', 'inherit'] });
    const receive = spawn('btrfs', ['receive', '-e', into], { stdio: [zstd.stdout, 'ignore', 'pipe'] });
    let stderr = '';
    receive.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    receive.on('close', (code) => {
      if (code !== 0) reject(new Error(`baseline btrfs receive failed: ${stderr}`));
      else resolvePromise();
    });
  });
  await runner.run('btrfs', ['filesystem', 'sync', mount]);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const positional = process.argv.slice(2).filter((arg) => !arg.startsWith('--verbose'));

/** node flags for the agent process: the systemd unit's, or argv[4] (comma separated; "none" for none) */
const nodeFlags =
  positional[2] === undefined
    ? unitNodeFlags(resolve(__dirname, '../../deploy/systemd/cowroot-agent.service'))
    : positional[2].split(',').filter((flag) => flag && flag !== 'none');
const verbose = process.argv.includes('--verbose');
/** measurements per size, baseline and agent alternating; the medians are compared */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

async function measure(
  sizeMiB: number,
  build: LoopBtrfs,
  device: LoopBtrfs,
  work: string,
  agentBundle: string,
): Promise<Result> {
  const label = `r${sizeMiB}`;
  // the release on the build host
  const tree = join(build.mount, label);
  await btrfs.createSubvolume(tree);
  await mkdir(join(tree, 'boot'));
  await writeFile(join(tree, 'boot', 'uImage'), 'kernel\n');
  await writeRandomFile(join(tree, 'payload.bin'), sizeMiB * MiB);
  const release = `${tree}.ro`;
  await btrfs.snapshot(tree, release, { readOnly: true });
  const { uuid } = await btrfs.show(release);
  const stream = join(work, `${label}.stream`);
  await runner.run('btrfs', ['send', '-q', '-f', stream, release]);
  const artifact = `${stream}.zst`;
  await runner.run('zstd', ['-q', '-f', '-1', '-T0', stream, '-o', artifact]);
  await rm(stream);
  const size = (await stat(artifact)).size;

  // the agent, as the device runs it
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const manifest = Buffer.from(
    JSON.stringify({
      format: MANIFEST_FORMAT,
      release: { name: 'bench', version: label },
      kind: 'full',
      file: `${label}.stream.zst`,
      size,
      sha256: await sha256(artifact),
      compression: 'zstd',
      snapshotUuid: uuid,
      parent: null,
      createdAt: new Date().toISOString(),
    }),
  );
  const dir = join(work, `agent-${label}`);
  await mkdir(join(dir, 'required.d'), { recursive: true });
  await mkdir(join(dir, 'wanted.d'), { recursive: true });
  await writeFile(join(dir, 'release.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
  await writeFile(join(dir, 'cmdline'), 'cowroot.snapshot=factory cowroot.trial=0\n');
  const env = await createFileBackedEnv(join(dir, 'env'), { initial: { cowroot_current: 'factory' } });
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const mqttPort = await freePort();
  const mqttServer = createServer((socket) => broker.handle(socket));
  await new Promise<void>((r) => mqttServer.listen(mqttPort, '127.0.0.1', r));
  const http = new ArtifactHttpServer(DEVICE_ID, CREDENTIAL);
  await http.listen();
  const url = http.serve(`${label}.stream.zst`, artifact);
  await writeFile(
    join(dir, 'agent.json'),
    JSON.stringify({
      deviceId: DEVICE_ID,
      credential: CREDENTIAL,
      server: { mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, httpUrl: new URL(url).origin },
      poolPath: device.mount,
      fwEnvConfig: env.configPath,
      releasePublicKeyFile: join(dir, 'release.pub.pem'),
      stateDir: join(device.mount, 'state', `agent-${label}`),
      health: { requiredDir: join(dir, 'required.d'), wantedDir: join(dir, 'wanted.d') },
      kernelCmdlinePath: join(dir, 'cmdline'),
      rebootCommand: ['true'],
      retention: 100,
    }),
  );
  const agent = spawn(process.execPath, [...nodeFlags, agentBundle, 'run', '--config', join(dir, 'agent.json')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // what the agent is running, sampled: tells where receive time goes (printed with --verbose)
  const children: string[] = [];
  const rssSamples: string[] = [];
  // --verbose only: reading a child's /proc/<pid>/cmdline takes its memory map lock, which slows
  // zstd and btrfs receive measurably when done ten times a second
  const sampler = setInterval(() => {
    if (!verbose) return;
    void readFile(`/proc/${agent.pid}/status`, 'utf8')
      .then((status) =>
        rssSamples.push(
          `${new Date().toISOString()} rss ${rssOf(status, 'VmRSS').toFixed(1)} MiB (anon ${rssOf(status, 'RssAnon').toFixed(1)}, file ${rssOf(status, 'RssFile').toFixed(1)})`,
        ),
      )
      .catch(() => undefined);
    void readFile(`/proc/${agent.pid}/task/${agent.pid}/children`, 'utf8')
      .then(async (text) => {
        for (const pid of text.trim().split(/\s+/).filter(Boolean)) {
          const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
            .split('\0')
            .slice(0, 4)
            .join(' ');
          const line = `${new Date().toISOString()} ${cmd}`;
          if (children.at(-1)?.slice(25) !== line.slice(25)) children.push(line);
        }
      })
      .catch(() => undefined);
  }, 100);
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  agent.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (verbose) process.stderr.write(`agent: ${line}\n`);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not ours
      }
    }
  });
  const waitLine = async (predicate: (line: Record<string, unknown>) => boolean, what: string) => {
    const deadline = Date.now() + 600_000;
    for (;;) {
      const found = lines.find(predicate);
      if (found) return found;
      if (agent.exitCode !== null) throw new Error(`agent exited (${agent.exitCode}) waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await waitLine((l) => l.msg === 'mqtt connected', 'the agent to connect');
    await new Promise((r) => setTimeout(r, 500));
    const idleRssMiB = rssOf(await readFile(`/proc/${agent.pid}/status`, 'utf8'), 'VmRSS');
    const operator = connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `bench-${randomUUID()}` });
    await new Promise<void>((r) => operator.once('connect', () => r()));
    const baselineRounds: number[] = [];
    const offPoolBaselineRounds: number[] = [];
    const agentRounds: number[] = [];
    const baselineDir = join(device.mount, `baseline-${label}`);
    const artifactOnPool = join(device.mount, `${label}.stream.zst`);
    // the agent's own downloader, so the baseline's file is written exactly like the agent's spool
    const downloader = new ArtifactDownloader({
      retries: 0,
      initialBackoffMs: 100,
      maxBackoffMs: 100,
      idleTimeoutMs: 30_000,
    });
    const baseline = async (from: string) => {
      if (from === artifactOnPool) {
        await downloader.download({
          url,
          allowedOrigin: new URL(url).origin,
          destination: artifactOnPool,
          expectedSize: size,
          username: DEVICE_ID,
          password: CREDENTIAL,
        });
      }
      await mkdir(baselineDir);
      const seconds = await baselineReceive(from, baselineDir, device.mount);
      await btrfs.deleteSubvolume(join(baselineDir, `${label}.ro`));
      await rm(baselineDir, { recursive: true });
      await rm(artifactOnPool, { force: true });
      // deleted subvolumes really gone and nothing dirty, so a round does not pay for the previous one
      await btrfs.waitForDeletions(device.mount);
      return seconds;
    };
    for (let round = 0; round < ROUNDS; round += 1) {
      // baselines and agent alternate, so background writeback and the btrfs cleaner hit all alike
      baselineRounds.push(await baseline(artifactOnPool));
      offPoolBaselineRounds.push(await baseline(artifact));

      const commandId = randomUUID();
      operator.publish(
        `cowroot/v1/devices/${DEVICE_ID}/commands`,
        JSON.stringify({
          v: PROTOCOL_VERSION,
          commandId,
          type: 'install',
          issuedAt: new Date().toISOString(),
          artifact: { url, manifest: manifest.toString('base64'), signature: signManifest(manifest, privateKey) },
          reboot: { mode: 'never' },
        }),
        { qos: 1 },
      );
      const verified = await waitLine(
        (l) =>
          l.commandId === commandId &&
          l.msg === 'event progress' &&
          (l.progress as { phase?: string })?.phase === 'verify',
        'verify',
      );
      const done = await waitLine(
        (l) => l.commandId === commandId && (l.msg === 'snapshot received' || l.msg === 'event failed'),
        'received',
      );
      if (done.msg !== 'snapshot received') throw new Error(`install failed: ${JSON.stringify(done.error)}`);
      agentRounds.push((Date.parse(String(done.ts)) - Date.parse(String(verified.ts))) / 1000);
      if (verbose) {
        console.error(
          `round ${round}: verify at ${String(verified.ts)}, received at ${String(done.ts)}; agent children:\n${children.join('\n')}`,
        );
        children.length = 0;
      }
      // the install ends with the trial requested (reboot: never); only then is the snapshot the bench's to delete
      const staged = await waitLine(
        (l) => l.commandId === commandId && (l.msg === 'event staged' || l.msg === 'event failed'),
        'staged',
      );
      if (staged.msg !== 'event staged')
        throw new Error(`install failed after the receive: ${JSON.stringify(staged.error)}`);
      await new SnapshotStore({ poolPath: device.mount }).delete(`bench-${label}`, []);
      await btrfs.waitForDeletions(device.mount);
    }
    const status = await readFile(`/proc/${agent.pid}/status`, 'utf8');
    operator.end(true);
    if (verbose) console.error(rssSamples.join('\n'));
    return {
      sizeMiB,
      streamBytes: size,
      baselineSeconds: median(baselineRounds),
      offPoolBaselineSeconds: median(offPoolBaselineRounds),
      agentSeconds: median(agentRounds),
      baselineRounds,
      offPoolBaselineRounds,
      agentRounds,
      idleRssMiB,
      peakRssMiB: rssOf(status, 'VmHWM'),
    };
  } finally {
    clearInterval(sampler);
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    await http.close();
    await new Promise<void>((r) => broker.close(() => r()));
    await new Promise<void>((r) => mqttServer.close(() => r()));
    await btrfs.deleteSubvolume(release).catch(() => undefined);
    await btrfs.deleteSubvolume(tree).catch(() => undefined);
    await rm(artifact, { force: true });
    await rm(join(device.mount, `${label}.stream.zst`), { force: true });
  }
}

async function main(): Promise<void> {
  const agentBundle = resolve(positional[0] ?? 'dist/cowroot-agent.js');
  const sizes = (positional[1] ?? '100,1024').split(',').map(Number);
  // Ctrl-C must not leave loop devices mounted
  const interrupted = new Promise<void>((r) => {
    process.once('SIGINT', () => r());
    process.once('SIGTERM', () => r());
  });
  const work = await mkdtemp(join(tmpdir(), 'cowroot-bench-agent-'));
  const biggest = Math.max(...sizes);
  let build: LoopBtrfs | null = null;
  let device: LoopBtrfs | null = null;
  try {
    build = await createLoopBtrfs({ sizeMiB: biggest + 1024, label: 'bench-build' });
    device = await createLoopBtrfs({ sizeMiB: 3 * biggest + 1024, label: 'bench-device' });
    await new SnapshotStore({ poolPath: device.mount }).init();
    const results: Result[] = [];
    const all = (async () => {
      for (const size of sizes) {
        const result = await measure(size, build!, device!, work, agentBundle);
        results.push(result);
        console.log(JSON.stringify(result));
      }
    })();
    await Promise.race([
      all,
      interrupted.then(() => {
        throw new Error('interrupted');
      }),
    ]);
    console.log(`\nagent node flags: ${nodeFlags.join(' ') || '(none)'}`);
    console.log(`medians of ${ROUNDS} rounds`);
    console.log(
      'release   stream     baseline: artifact on the pool     agent receive          ratio   agent RSS idle / peak   (baseline off the pool: ratio)',
    );
    for (const r of results) {
      const mb = r.streamBytes / MiB;
      const base = mb / r.baselineSeconds;
      const agent = mb / r.agentSeconds;
      console.log(
        `${String(r.sizeMiB).padStart(5)} MiB ${mb.toFixed(0).padStart(6)} MiB  ${r.baselineSeconds.toFixed(2).padStart(7)} s ${base.toFixed(1).padStart(7)} MiB/s   ${r.agentSeconds.toFixed(2).padStart(7)} s ${agent.toFixed(1).padStart(7)} MiB/s   ${(agent / base).toFixed(2).padStart(5)}   ${r.idleRssMiB.toFixed(1)} / ${r.peakRssMiB.toFixed(1)} MiB        (${r.offPoolBaselineSeconds.toFixed(2)} s: ${(r.offPoolBaselineSeconds / r.agentSeconds).toFixed(2)})`,
      );
    }
    const rounds = (values: number[]) => values.map((x) => x.toFixed(2)).join(' ');
    console.log('\nper round (s):');
    for (const r of results) {
      console.log(
        `  ${r.sizeMiB} MiB: baseline ${rounds(r.baselineRounds)} | off the pool ${rounds(r.offPoolBaselineRounds)} | agent ${rounds(r.agentRounds)}`,
      );
    }
    console.log('\ngoals: ratio ≥ 0.9; peak RSS ≤ 64 MiB and flat in stream size');
  } finally {
    await device?.cleanup();
    await build?.cleanup();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
