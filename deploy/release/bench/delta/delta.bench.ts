/**
 * npm run bench:delta — delta artifacts against the plain incremental stream and against whole-image
 * binary diffs, on a real Debian update and on a large binary rebuilt in place (docs/release-tool.md
 * "Benchmark"). Needs root, loop devices, btrfs-progs, zstd, xdelta3, rsync, mkimage, mmdebstrap and the
 * Debian archive (the images are cached per day under /var/cache/cowroot/delta).
 *
 * Per case: the release tool (in process) builds release 1 and release 2 (--base 1 --delta-from 1
 * --binary-delta); sizes of the full stream, the plain incremental, the delta artifact, `xdelta3 -9` and
 * `zstd -19 --long --patch-from` of the two images (tars); the build time of the delta and of the plain
 * incremental. On a second btrfs (the device): BENCH_ROUNDS (default 3) alternating receives of the same
 * plain stream — `btrfs receive` of the uncompressed stream, `zstd -d | btrfs receive` of the plain
 * artifact, and the delta rebuilt and received — each in its own node process (device-child.ts) with the
 * agent unit's node flags (agent-flags.ts), whose peak RSS is the agent side's; its CPU and its children's
 * (zstd, `btrfs receive`) are printed too. Medians, ratios and the goals are printed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ArtifactKind, ReleaseIndex, parseManifest } from '@cowroot/protocol';
import { BtrfsAdapter, SnapshotStore } from '@cowroot/device';
import { LoopBtrfs, createLoopBtrfs } from '@cowroot/device/testing';
import { ArtifactWriter } from '../../src/artifact-writer.service';
import { CommandRunner } from '@cowroot/device';
import { DeltaWriter } from '../../src/delta/delta-writer.service';
import { ReleaseBuildService } from '../../src/release-build.service';
import { ReleaseRefArg } from '../../src/release-ref';
import { SigningKeys } from '../../src/signing-keys';
import { agentNodeFlags } from './agent-flags';
import { debianImages } from './debian-images';
import { imageDiffs } from './image-diffs';
import { realBinary, rebuiltBinary } from './synthetic-binary';

const MB = 1e6;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** `debian`, `binary` or both (default): the cases to run */
const CASES = (process.env.BENCH_CASES ?? 'debian,binary').split(',');
/** a directory to keep each case's device inputs in (parent full stream, plain stream, delta), to profile */
const KEEP = process.env.BENCH_KEEP;
/**
 * `<target>,<sources>,<member>` in MiB: a second delta of the same send written with these batch caps
 * (e.g. `4,4,1`, the caps before 2026-12-07), received in the same rounds as "compared"
 */
const COMPARE_CAPS = process.env.BENCH_COMPARE_CAPS?.split(',').map((mib) => Number(mib) * 1024 * 1024);
/** the node flags of the agent's systemd unit, read from it (agent-flags.ts) */
const AGENT_NODE_FLAGS = agentNodeFlags();
const runner = new CommandRunner();
const log = (line: string) => process.stdout.write(`${line}\n`);
const mb = (bytes: number) => `${(bytes / MB).toFixed(3)} MB`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
/** the 1-minute load average: the machine is shared, and every figure is printed beside it */
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

interface Case {
  /** what BENCH_CASES names it by */
  key: 'debian' | 'binary';
  name: string;
  /** fills the rootfs with release 1, then release 2 */
  prepare(rootfs: string, release: 1 | 2): Promise<void>;
  /** the two whole images to diff (tars) */
  images(work: string): Promise<[string, string]>;
  /** where the whole-image diffs of cached images are kept (image-diffs.ts) */
  diffsCache?: string;
}

function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = process.hrtime.bigint();
  return fn().then((value) => [value, seconds(start)]);
}

async function extract(tar: string, into: string): Promise<void> {
  await rm(into, { recursive: true, force: true });
  await mkdir(into, { recursive: true });
  execFileSync('tar', [
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=*',
    '-xf',
    tar,
    '-C',
    into,
    '--exclude=./dev/*',
  ]);
}

/** The device side's inputs of a case, copied out for profiling (BENCH_KEEP). */
async function keep(into: string, files: Record<string, string>, facts: object): Promise<void> {
  await mkdir(into, { recursive: true });
  for (const [name, path] of Object.entries(files)) await copyFile(path, join(into, name));
  await writeFile(join(into, 'facts.json'), `${JSON.stringify(facts)}\n`);
  log(`  device inputs kept in ${into}`);
}

async function runCase(
  item: Case,
  env: {
    work: string;
    host: LoopBtrfs;
    device: LoopBtrfs;
    key: string;
    childBundle: string;
    compareBundles: string[];
    kernel: string;
    initrd: string;
  },
): Promise<void> {
  const dir = join(env.work, item.name.replace(/\W+/g, '-'));
  const rootfs = join(dir, 'rootfs');
  const stem = `c${Date.now() % 100000}`;
  const builder = new ReleaseBuildService(runner);
  const build = (version: string, extra: Partial<Parameters<ReleaseBuildService['build']>[0]>) =>
    builder.build({
      rootfs,
      pool: env.host.mount,
      release: new ReleaseRefArg(stem, version),
      keyPath: env.key,
      outDir: join(dir, `out-${version}`),
      deltaFrom: [],
      arch: 'x86',
      kernel: env.kernel,
      initrd: env.initrd,
      ...extra,
    });
  log(`\n== ${item.name} (load average ${loadAverage()})`);
  await item.prepare(rootfs, 1);
  const one = await build('1', {});
  await item.prepare(rootfs, 2);
  const [two] = await timed(() =>
    build('2', { base: new ReleaseRefArg(stem, '1'), deltaFrom: [new ReleaseRefArg(stem, '1')], binaryDelta: true }),
  );
  const artifact = (index: ReleaseIndex, kind: ArtifactKind) => index.artifacts.find((a) => a.kind === kind)!;
  const full = artifact(two.index, ArtifactKind.Full);
  const plain = artifact(two.index, ArtifactKind.Incremental);
  const delta = artifact(two.index, ArtifactKind.Delta);
  const manifest = parseManifest(await readFile(join(dir, 'out-2', delta.manifest)));
  if (!manifest.ok) throw new Error(manifest.message);
  const reconstructs = manifest.value.reconstructs!;

  // build times of the two incrementals alone, same pair, same host
  const send = { command: 'btrfs', args: ['send', '-q', '-p', one.snapshotPath, two.snapshotPath] };
  const [, plainBuild] = await timed(() => new ArtifactWriter(runner).write(send, join(dir, 'again.btrfs.zst')));
  const [again, deltaBuild] = await timed(() =>
    new DeltaWriter(runner).write({
      send,
      parentRoot: one.snapshotPath,
      newRoot: two.snapshotPath,
      path: join(dir, 'again.delta.zst'),
    }),
  );

  const capsDelta = COMPARE_CAPS && join(dir, 'caps.delta.zst');
  if (capsDelta) {
    const [targetBytes, sourceBytes, memberBytes] = COMPARE_CAPS!;
    const other = await new DeltaWriter(runner, { batchCaps: { targetBytes, sourceBytes, memberBytes } }).write({
      send,
      parentRoot: one.snapshotPath,
      newRoot: two.snapshotPath,
      path: capsDelta,
    });
    if (other.plain.sha256 !== reconstructs.sha256) throw new Error('btrfs send gave another stream the second time');
    log(`  delta with batch caps ${process.env.BENCH_COMPARE_CAPS} MiB: ${mb(other.size)}, ${other.batches} batches`);
  }

  const [oldImage, newImage] = await item.images(dir);
  const diffs = imageDiffs(oldImage, newImage, dir, item.diffsCache);
  const { xdelta, patchFrom } = diffs;
  const cachedNote = diffs.cached ? ', cached: same images and tools' : '';

  // the device: release 1 received, then rounds of the three ways to apply release 2
  const store = new SnapshotStore({ poolPath: env.device.mount });
  await store.init();
  const parentId = `${stem}-1`;
  const fullOne = artifact(one.index, ArtifactKind.Full);
  const oneFile = await import('node:fs/promises').then((fs) => fs.open(join(dir, 'out-1', fullOne.file), 'r'));
  await store.receive(
    { fd: oneFile.fd, through: { command: 'zstd', args: ['-d', '-c', '-q'] } },
    { snapshotId: parentId, release: { name: stem, version: '1' }, expectedReceivedUuid: one.index.snapshotUuid },
  );
  await oneFile.close();
  const plainStream = join(dir, 'plain.btrfs');
  execFileSync('sh', ['-c', 'zstd -d -q -c "$1" > "$2"', 'sh', join(dir, 'out-2', plain.file), plainStream]);
  const modes = {
    'plain-file': plainStream,
    'plain-zst': join(dir, 'out-2', plain.file),
    delta: join(dir, 'out-2', delta.file),
  } as const;
  /** `wholeProcess`: a child bundled before it counted the receive's CPU alone (device-child.ts cpuCounted) */
  type Runs = { seconds: number[]; rss: number[]; nodeCpu: number[]; childrenCpu: number[]; wholeProcess: boolean };
  const runs = (): Runs => ({ seconds: [], rss: [], nodeCpu: [], childrenCpu: [], wholeProcess: false });
  const results: Record<keyof typeof modes, Runs> = { 'plain-file': runs(), 'plain-zst': runs(), delta: runs() };
  /** each further device child bundle given (another build of the rebuild), its delta receives */
  const compared: Array<{ bundle: string; file?: string; runs: Runs }> = env.compareBundles.map((bundle) => ({
    bundle,
    runs: runs(),
  }));
  if (capsDelta) compared.push({ bundle: env.childBundle, file: capsDelta, runs: runs() });
  const rounds = [
    ...(Object.keys(modes) as Array<keyof typeof modes>).map((mode) => ({
      mode,
      bundle: env.childBundle,
      into: results[mode],
    })),
    ...compared.map(({ bundle, file, runs: into }) => ({ mode: 'delta' as const, bundle, file, into })),
  ] as Array<{ mode: keyof typeof modes; bundle: string; file?: string; into: Runs }>;
  const btrfs = new BtrfsAdapter();
  const deviceLoad = loadAverage();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, { mode, bundle, file, into }] of rounds.entries()) {
      const snapshotId = `${stem}-2-${i}-${round}`;
      execFileSync('sync');
      const child = spawnSync(
        process.execPath,
        [
          ...AGENT_NODE_FLAGS,
          bundle,
          JSON.stringify({
            pool: env.device.mount,
            mode,
            file: file ?? modes[mode],
            snapshotId,
            expectedReceivedUuid: two.index.snapshotUuid,
            parentId,
            reconstructs,
          }),
        ],
        { encoding: 'utf8' },
      );
      if (child.status !== 0) throw new Error(`device receive (${mode}, ${bundle}) failed: ${child.stderr}`);
      const result = JSON.parse(child.stdout) as {
        seconds: number;
        peakRssKiB: number;
        nodeCpuSeconds: number;
        childrenCpuSeconds: number;
        cpuCounted?: 'receive';
      };
      into.seconds.push(result.seconds);
      if (result.cpuCounted !== 'receive') into.wholeProcess = true;
      into.rss.push(result.peakRssKiB);
      into.nodeCpu.push(result.nodeCpuSeconds);
      into.childrenCpu.push(result.childrenCpuSeconds);
      if (mode !== 'plain-file')
        execFileSync('diff', ['-r', '--no-dereference', two.snapshotPath, store.snapshotPath(snapshotId)]);
      await store.delete(snapshotId, []);
      await btrfs.waitForDeletions(env.device.mount);
    }
  }
  await store.delete(parentId, []);
  await btrfs.waitForDeletions(env.device.mount);
  if (KEEP)
    await keep(
      join(KEEP, item.key),
      { ...modes, parent: join(dir, 'out-1', fullOne.file), ...(capsDelta ? { 'delta-caps': capsDelta } : {}) },
      {
        parentReceivedUuid: one.index.snapshotUuid,
        expectedReceivedUuid: two.index.snapshotUuid,
        reconstructs,
      },
    );

  const rate = (of: Runs) => reconstructs.size / median(of.seconds) / MB;
  const throughput = (mode: keyof typeof modes) => rate(results[mode]);
  const cpuOf = (of: Runs) =>
    `node ${median(of.nodeCpu).toFixed(2)} s + children ${median(of.childrenCpu).toFixed(2)} s${of.wholeProcess ? ' (that child counts its whole process, the bundle loading included)' : ''}`;
  const peak = Math.max(...results.delta.rss) / 1024;
  log(`  full stream (zstd)                      ${mb(full.size)}`);
  log(`  plain incremental (zstd)                ${mb(plain.size)}   (uncompressed ${mb(reconstructs.size)})`);
  log(
    `  delta artifact                          ${mb(delta.size)}   (${again.patchedFiles} files patched, ${again.batches} batches of small ones, ${again.copyLists} copy lists, ${again.identicalFiles} rewritten unchanged: ${mb(again.patchedDataBytes)} of data → ${mb(again.patchBytes)} of patches)`,
  );
  log(`  xdelta3 -9 of the images                ${mb(xdelta)}   (${diffs.xdeltaSeconds.toFixed(1)} s${cachedNote})`);
  log(
    `  zstd -19 --long --patch-from (images)   ${mb(patchFrom)}   (${diffs.patchFromSeconds.toFixed(1)} s${cachedNote})`,
  );
  const goal = (ok: boolean) => (ok ? 'met' : 'NOT met');
  log(
    `  delta / zstd --patch-from               ${(delta.size / patchFrom).toFixed(3)}   goal ≤ 1.2: ${goal(delta.size <= 1.2 * patchFrom)}`,
  );
  log(
    `  delta / xdelta3 -9                      ${(delta.size / xdelta).toFixed(3)}   goal < 1: ${goal(delta.size < xdelta)}`,
  );
  log(`  plain incremental / delta               ${(plain.size / delta.size).toFixed(2)}×`);
  log(
    `  build time: delta ${deltaBuild.toFixed(2)} s, plain incremental ${plainBuild.toFixed(2)} s (${(deltaBuild / plainBuild).toFixed(1)}×)`,
  );
  log(
    `  device, median of ${ROUNDS} (MB/s of plain stream), node flags ${AGENT_NODE_FLAGS.join(' ')}, load average ${deviceLoad} → ${loadAverage()}:`,
  );
  log(
    `    btrfs receive of the uncompressed plain stream   ${throughput('plain-file').toFixed(1)} MB/s (${median(results['plain-file'].seconds).toFixed(3)} s)`,
  );
  log(
    `    zstd -d | btrfs receive of the plain artifact    ${throughput('plain-zst').toFixed(1)} MB/s (${median(results['plain-zst'].seconds).toFixed(3)} s)`,
  );
  log(
    `    delta: rebuild + btrfs receive                   ${throughput('delta').toFixed(1)} MB/s (${median(results.delta.seconds).toFixed(3)} s)`,
  );
  log(
    `    ratio delta / plain receive                      ${(throughput('delta') / throughput('plain-file')).toFixed(2)}   goal ≥ 0.8: ${goal(throughput('delta') >= 0.8 * throughput('plain-file'))}`,
  );
  log(
    `    ratio delta / zstd -d | receive                  ${(throughput('delta') / throughput('plain-zst')).toFixed(2)}`,
  );
  const cpu = (mode: keyof typeof modes) => cpuOf(results[mode]);
  log(
    `    CPU of the receive (its start to its end, the bundle's loading not in it), medians: plain ${cpu('plain-file')}; zstd -d | ${cpu('plain-zst')}; delta ${cpu('delta')}`,
  );
  log(
    `  agent-side peak RSS (node, rebuilding)  ${peak.toFixed(1)} MiB   goal ≤ 64 MiB: ${goal(peak <= 64)} (plain receive: ${(Math.max(...results['plain-zst'].rss) / 1024).toFixed(1)} MiB)`,
  );
  for (const { bundle, file, runs: of } of compared) {
    log(
      `  compared, delta ${file ? `with batch caps ${process.env.BENCH_COMPARE_CAPS} MiB` : `with ${bundle}`}: ${rate(of).toFixed(1)} MB/s (${median(of.seconds).toFixed(3)} s), ratio / plain receive ${(rate(of) / throughput('plain-file')).toFixed(2)}, / this build's delta ${(rate(of) / throughput('delta')).toFixed(2)}; peak RSS ${(Math.max(...of.rss) / 1024).toFixed(1)} MiB; CPU ${cpuOf(of)}`,
    );
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:delta needs root (btrfs, loop devices)');
  const childBundle = resolve(process.argv[2] ?? 'dist/bench/delta-device-child.js');
  // further bundles of the device child (another build of libs/device, e.g. main's) are run for the
  // delta in the same rounds, so that two rebuilds are compared under the same load
  const compareBundles = process.argv.slice(3).map((bundle) => resolve(bundle));
  const work = await mkdtemp(join(tmpdir(), 'cowroot-bench-delta-'));
  let host: LoopBtrfs | undefined;
  let device: LoopBtrfs | undefined;
  try {
    host = await createLoopBtrfs({ sizeMiB: 6144, label: 'bench-delta-host' });
    device = await createLoopBtrfs({ sizeMiB: 3072, label: 'bench-delta-dev' });
    const key = join(work, 'bench');
    await SigningKeys.generate(key);
    const kernel = join(work, 'vmlinuz');
    const initrd = join(work, 'initrd.img');
    await writeFile(kernel, randomBytes(2 * 1024 * 1024));
    await writeFile(initrd, randomBytes(1024 * 1024));
    const env = { work, host, device, key: `${key}.key`, childBundle, compareBundles, kernel, initrd };

    if (CASES.includes('debian')) {
      // only this case needs Debian's archive (or the day's cached images)
      const images = await debianImages(log);
      log(
        `bookworm minbase: ${images.upgrades.length} packages upgraded by bookworm-updates/-security today${images.cached ? ' (cached images)' : ''}:`,
      );
      for (const line of images.upgrades) log(`  ${line}`);
      await runCase(
        {
          key: 'debian',
          name: 'Debian bookworm minbase → today’s bookworm-updates and bookworm-security',
          prepare: (rootfs, release) => extract(release === 1 ? images.base : images.updated, rootfs),
          images: async () => [images.base, images.updated],
          diffsCache: join(dirname(images.base), 'image-diffs.json'),
        },
        env,
      );
    }

    if (CASES.includes('binary')) {
      const old = realBinary(48 * 1024 * 1024);
      const rebuilt = rebuiltBinary(old);
      await runCase(
        {
          key: 'binary',
          name: 'a 48 MiB binary rebuilt in place (300 insertions, 2000 changed words)',
          prepare: async (rootfs, release) => {
            await mkdir(join(rootfs, 'usr/bin'), { recursive: true });
            await mkdir(join(rootfs, 'etc'), { recursive: true });
            await writeFile(join(rootfs, 'etc/os-release'), `VERSION_ID=${release}\n`);
            await writeFile(join(rootfs, 'usr/bin/big'), release === 1 ? old : rebuilt);
          },
          images: async (dir) => {
            await writeFile(join(dir, 'old.bin'), old);
            await writeFile(join(dir, 'new.bin'), rebuilt);
            return [join(dir, 'old.bin'), join(dir, 'new.bin')];
          },
        },
        env,
      );
    }
  } finally {
    await device?.cleanup();
    await host?.cleanup();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench:delta failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
