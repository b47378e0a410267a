/**
 * The rebuild alone: a kept delta (`BENCH_KEEP=<dir> npm run bench:delta`) rebuilt against a parent given
 * as a directory, into nothing instead of `btrfs receive` (no receive, no store, no loop device), to
 * measure node's own part of a rebuild (docs/delta-benchmark-log.md "Format 3"). Run it with the agent unit's
 * node flags (agent-flags.ts), e.g.:
 *
 *   node tools/bundle.mjs deploy/release/bench/delta/rebuild-alone.ts dist/bench/delta-rebuild-alone.js
 *   node --lite-mode --no-expose-wasm --max-semi-space-size=1 dist/bench/delta-rebuild-alone.js \
 *     <parent dir, e.g. the extracted base.tar of the Debian case> <kept case dir>
 *
 * Prints JSON { bytes, nodeCpuSeconds, seconds }; add `--cpu-prof` to the node flags for a profile.
 */
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { DeltaReconstructor } from '@cowroot/device';

async function main(): Promise<void> {
  const [parentRoot, dir] = process.argv.slice(2);
  if (!parentRoot || !dir) throw new Error('usage: <parent dir> <kept case dir>');
  const facts = JSON.parse(readFileSync(join(dir, 'facts.json'), 'utf8')) as {
    reconstructs: { size: number; sha256: string };
  };
  const file = await open(join(dir, 'delta'), 'r');
  try {
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    const reconstructor = new DeltaReconstructor({ parentRoot, expected: facts.reconstructs, scratchDir: dir });
    let bytes = 0;
    for await (const chunk of reconstructor.plainStreamFromFile(file.fd, 'zstd')) bytes += (chunk as Buffer).length;
    const used = process.cpuUsage(cpu);
    const result = {
      bytes,
      nodeCpuSeconds: (used.user + used.system) / 1e6,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await file.close();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
