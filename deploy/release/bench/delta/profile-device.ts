/**
 * Runs the bench's device child on the inputs one `BENCH_KEEP=<dir> npm run bench:delta` kept, with the
 * agent unit's node flags, on a fresh loop btrfs holding the parent (docs/release-tool.md "Benchmark"):
 *
 *   node tools/bundle.mjs deploy/release/bench/delta/profile-device.ts dist/bench/delta-profile.js
 *   node dist/bench/delta-profile.js <kept case dir> <rounds> <child bundle>[=<delta>] […] [-- <node flag>…]
 *
 * `<bundle>=<delta>` rebuilds another delta of the same stream (a name in the kept dir, e.g. `delta-caps`
 * of BENCH_COMPARE_CAPS) with that bundle instead of the kept `delta`.
 * e.g. `-- --cpu-prof --cpu-prof-dir=/tmp/prof` for a profile of each rebuild. Rounds alternate: the plain
 * `btrfs receive` of the uncompressed stream, the same stream read by node and written into `btrfs
 * receive` (the floor of any rebuild: every rebuilt byte takes that way), then the delta with each bundle
 * in turn; prints each run's JSON, the medians with their ratios to the plain receive, and the load.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BtrfsAdapter, SnapshotStore } from '@cowroot/device';
import { createLoopBtrfs } from '@cowroot/device/testing';
import { agentNodeFlags } from './agent-flags';

interface Facts {
  parentReceivedUuid: string;
  expectedReceivedUuid: string;
  reconstructs: { size: number; sha256: string };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dash = args.indexOf('--');
  const [dir, roundsArg, ...bundles] = (dash < 0 ? args : args.slice(0, dash)).map((a, i) =>
    i === 1 ? a : resolve(a),
  );
  const extraFlags = dash < 0 ? [] : args.slice(dash + 1);
  if (!dir || !bundles.length) throw new Error('usage: <kept case dir> <rounds> <child bundle>… [-- <node flag>…]');
  const facts = JSON.parse(readFileSync(join(dir, 'facts.json'), 'utf8')) as Facts;
  const device = await createLoopBtrfs({ sizeMiB: 3072, label: 'delta-profile' });
  const startLoad = load();
  try {
    const store = new SnapshotStore({ poolPath: device.mount });
    await store.init();
    const parent = await open(join(dir, 'parent'), 'r');
    await store.receive(
      { fd: parent.fd, through: { command: 'zstd', args: ['-d', '-c', '-q'] } },
      { snapshotId: 'parent', release: { name: 'p', version: '1' }, expectedReceivedUuid: facts.parentReceivedUuid },
    );
    await parent.close();
    const runs = [
      { name: 'plain', bundle: bundles[0], mode: 'plain-file', file: join(dir, 'plain-file') },
      // the plain stream through node into btrfs receive: the floor of any rebuild
      { name: 'plain-node', bundle: bundles[0], mode: 'plain-node', file: join(dir, 'plain-file') },
      ...bundles.map((arg) => {
        const [bundle, delta = 'delta'] = arg.split('=');
        return { name: arg, bundle, mode: 'delta', file: join(dir, delta) };
      }),
    ];
    const seconds = new Map<string, number[]>(runs.map((run) => [run.name, []]));
    const btrfs = new BtrfsAdapter();
    for (let round = 0; round < Number(roundsArg); round++) {
      for (const [i, run] of runs.entries()) {
        const snapshotId = `r-${round}-${i}`;
        execFileSync('sync');
        const job = {
          pool: device.mount,
          mode: run.mode,
          file: run.file,
          snapshotId,
          expectedReceivedUuid: facts.expectedReceivedUuid,
          parentId: 'parent',
          reconstructs: facts.reconstructs,
        };
        const flags = run.mode === 'delta' ? [...agentNodeFlags(), ...extraFlags] : agentNodeFlags();
        const child = spawnSync(process.execPath, [...flags, run.bundle, JSON.stringify(job)], { encoding: 'utf8' });
        if (child.status !== 0) throw new Error(`${run.name} failed: ${child.stderr}`);
        process.stdout.write(`${run.name} ${child.stdout}`);
        seconds.get(run.name)!.push((JSON.parse(child.stdout) as { seconds: number }).seconds);
        await store.delete(snapshotId, []);
        await btrfs.waitForDeletions(device.mount);
      }
    }
    const plain = median(seconds.get('plain')!);
    const throughNode = median(seconds.get('plain-node')!);
    process.stdout.write(
      `load ${startLoad} → ${load()}; plain receive ${plain.toFixed(3)} s; the plain stream through node ${throughNode.toFixed(3)} s, ratio ${(plain / throughNode).toFixed(2)}\n`,
    );
    for (const name of bundles) {
      const delta = median(seconds.get(name)!);
      process.stdout.write(`  ${name}: ${delta.toFixed(3)} s, ratio ${(plain / delta).toFixed(2)}\n`);
    }
  } finally {
    await device.cleanup();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
