/**
 * One receive on the device, in a process of its own so its peak RSS is the agent side's alone (bundled
 * on its own by npm run bench:delta: only @cowroot/device, as in the agent). Argument: JSON
 * { pool, mode: 'plain-file' | 'plain-zst' | 'plain-node' | 'delta', file, snapshotId, expectedReceivedUuid,
 *   parentId?, reconstructs? }. Prints JSON { seconds, peakRssKiB, nodeCpuSeconds, childrenCpuSeconds, cpuCounted }.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { SnapshotStore } from '@cowroot/device';

interface Job {
  pool: string;
  /**
   * plain-file: `btrfs receive` reads the file; plain-zst: through `zstd -d`; plain-node: node reads the
   * plain stream and writes it into `btrfs receive` (what every rebuilt byte goes through, without the
   * rebuild); delta: the rebuild
   */
  mode: 'plain-file' | 'plain-zst' | 'plain-node' | 'delta';
  file: string;
  snapshotId: string;
  expectedReceivedUuid: string;
  parentId?: string;
  reconstructs?: { size: number; sha256: string };
}

/**
 * CPU time of this process's children that have exited and been waited for (zstd, `btrfs receive`):
 * /proc/self/stat's cutime and cstime, in USER_HZ ticks (100 per second on Linux, whatever CONFIG_HZ).
 * node has no RUSAGE_CHILDREN; libuv reaps every child it spawned, so after the receive all are in.
 */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // fields after the command name, which is in parentheses and may hold spaces: state is field 3
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [cutime, cstime] = [fields[16 - 3], fields[17 - 3]].map(Number);
  return (cutime + cstime) / 100;
}

function peakRssKiB(): number {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]) as Job;
  const store = new SnapshotStore({ poolPath: job.pool });
  const file = await open(job.file, 'r');
  const options = {
    snapshotId: job.snapshotId,
    release: { name: 'bench', version: job.snapshotId },
    expectedReceivedUuid: job.expectedReceivedUuid,
  };
  // node's CPU is counted from here: loading the bundle (0.1 s, the same in every mode) is not the receive's
  const cpuAtStart = process.cpuUsage();
  const started = process.hrtime.bigint();
  try {
    if (job.mode === 'delta') {
      await store.receiveDelta(
        { fd: file.fd, compression: 'zstd' },
        { parentId: job.parentId!, reconstructs: job.reconstructs! },
        options,
      );
    } else if (job.mode === 'plain-node') {
      await store.receive(createReadStream('', { fd: file.fd, autoClose: false, highWaterMark: 64 * 1024 }), options);
    } else if (job.mode === 'plain-zst') {
      await store.receive({ fd: file.fd, through: { command: 'zstd', args: ['-d', '-c', '-q'] } }, options);
    } else {
      await store.receive({ fd: file.fd }, options);
    }
  } finally {
    await file.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // the receive's CPU: node's own (its children, btrfs receive and zstd, are not in it), and that of the
  // children reaped by now. Read before waiting for the staged copy's deletion, which the store starts as
  // the receive returns: its `btrfs subvolume delete` (a few ms) is in the figure only when it has already
  // exited, as is a prefetched decoder that was never used and is killed without being waited for.
  const cpu = process.cpuUsage(cpuAtStart);
  const nodeCpuSeconds = (cpu.user + cpu.system) / 1e6;
  const children = childrenCpuSeconds();
  await store.settled();
  const result = {
    seconds,
    peakRssKiB: peakRssKiB(),
    nodeCpuSeconds,
    childrenCpuSeconds: children,
    // what the CPU figures count: children bundled before this field counted their whole process
    cpuCounted: 'receive',
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: Error) => {
  process.stderr.write(`${error.message}\n`);
  process.exitCode = 1;
});
