import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandRunner } from '@cowroot/device';
import type { VdevArtifacts } from '../vdev/vdev-artifacts';
import { VirtualDevice } from '../vdev/virtual-device';
import { enumerateCrashStates, describeState, type CrashState } from './crash-states';
import { judgeState, type Verdict } from './fast-judge';
import { parseWriteLog, type WriteLog } from './log-writes.parser';
import { seededRandom } from '@cowroot/testing/seeded-random';
import { seedFor } from './prng';
import type { Recording } from './recorder';
import { StateMaterializer } from './state-materializer';
import { superblockBatches, type SuperblockBatches } from './superblock-batches';
import { SUPERBLOCK_OFFSETS } from './uboot-view';

const runner = new CommandRunner();

export interface RunOptions {
  seed: number;
  samplesPerEpoch: number;
  /** states booted for real per flow, drawn at random (seeded) on top of every suspicious one */
  realBootsPerFlow: number;
  /** only these state ids (a replay); all when absent */
  onlyStates?: number[];
  /** judge a seeded sample of at most this many states per flow (the CI subset); all when absent */
  stateLimit?: number;
  /** judge only the states of these kinds (e.g. superblocks: a pass over the both-copies states alone) */
  onlyKinds?: CrashState['kind'][];
  ubootBackupSuperblock: boolean;
  ubootRebuildSuperblock: boolean;
  ubootSectorZeroSuperblock: boolean;
  /** states judged on a repaired superblock that are also booted for real, per flow (default 1) */
  repairedBootsPerFlow?: number;
  scratchDir: string;
  log: (line: string) => void;
}

export interface StateResult {
  flow: string;
  state: CrashState;
  description: string;
  verdict: Verdict;
  judgeSeconds: number;
  realBoot?: {
    ok: boolean;
    snapshot: string | null;
    trial: string | null;
    prompt: boolean;
    seconds: number;
    why?: string;
  };
}

export interface FlowReport {
  flow: string;
  logEntries: number;
  writes: number;
  flushes: number;
  states: number;
  failed: StateResult[];
  realBoots: StateResult[];
  judgeSeconds: number;
  /** states whose primary superblock was torn, judged on the backup copy (as u-boot and the initramfs do) */
  repaired: number;
  /** states of kind superblocks judged (a commit's two superblock copies each old, new or torn) */
  superblockStates: number;
  /** of those, with both copies torn at once */
  bothTorn: number;
  /** of those, judged on a superblock rebuilt from a mix of their sectors (as patch 0002 writes it) */
  rebuilt: number;
  /** … and when no mix checks out, from a copy's sector 0 whose chunk root verifies (patch 0003) */
  rebuiltFromSectorZero: number;
  superblocks: SuperblockBatches;
}

/** A seeded sample of `count` states (the real boots; the CI subset). */
export function pickRealBoots(states: CrashState[], count: number, seed: number): Set<number> {
  const random = seededRandom(seed);
  const ids = states.map((s) => s.id);
  const picked = new Set<number>();
  while (picked.size < Math.min(count, ids.length)) picked.add(ids[Math.floor(random() * ids.length)]);
  return picked;
}

export async function runFlow(
  recording: Recording,
  artifacts: VdevArtifacts,
  bootScript: Buffer,
  options: RunOptions,
): Promise<FlowReport> {
  const writeLog: WriteLog = parseWriteLog(await readFile(recording.log));
  const states = enumerateCrashStates(writeLog.entries, {
    seed: seedFor(options.seed, recording.flow),
    samplesPerEpoch: options.samplesPerEpoch,
    superblockSectors: SUPERBLOCK_OFFSETS.map((o) => (recording.layout.pool.offset + o) / writeLog.sectorSize),
  });
  const kinds = options.onlyKinds;
  const pool = kinds ? states.filter((s) => kinds.includes(s.kind)) : states;
  const wanted = options.onlyStates
    ? new Set(options.onlyStates)
    : options.stateLimit !== undefined && options.stateLimit < pool.length
      ? pickRealBoots(pool, options.stateLimit, seedFor(options.seed + 2, recording.flow))
      : kinds
        ? new Set(pool.map((s) => s.id))
        : null;
  for (const id of options.onlyStates ?? []) {
    if (!states[id]) throw new Error(`${recording.flow} has states 0..${states.length - 1}, not ${id}`);
  }
  // a replay boots what it replays; otherwise a seeded sample of the states judged
  const realBoots = options.onlyStates
    ? new Set(options.onlyStates)
    : pickRealBoots(
        [...(wanted ?? states.map((s) => s.id))].map((id) => states[id]),
        options.realBootsPerFlow,
        seedFor(options.seed + 1, recording.flow),
      );
  const maxWanted = wanted ? Math.max(-1, ...[...wanted].map((id) => states[id].durableThrough)) : Infinity;
  const flowDir = join(options.scratchDir, recording.flow);
  const work = join(flowDir, 'state.img');
  await rm(flowDir, { recursive: true, force: true });
  await runner.run('mkdir', ['-p', flowDir]);
  await runner.run('cp', ['--sparse=always', '--reflink=auto', recording.before, work]);
  const report: FlowReport = {
    flow: recording.flow,
    logEntries: writeLog.entries.length,
    writes: writeLog.entries.filter((e) => e.nrSectors > 0).length,
    flushes: writeLog.entries.filter((e) => e.flags & 1).length,
    states: 0,
    failed: [],
    realBoots: [],
    judgeSeconds: 0,
    repaired: 0,
    superblockStates: 0,
    bothTorn: 0,
    rebuilt: 0,
    rebuiltFromSectorZero: 0,
    superblocks: superblockBatches(writeLog.entries, recording.layout.pool.offset, writeLog.sectorSize),
  };
  let repairedBooted = 0;
  // the rebuilt states booted so far, per kind of rebuild
  const rebuiltBooted = { sectors: 0, 'sector 0': 0 };
  const materializer = await StateMaterializer.open(work, recording.log, writeLog);
  try {
    for (const state of states) {
      if (wanted && state.durableThrough > maxWanted) break;
      // a replay still walks the log (the durable writes accumulate) but judges only what was asked
      if (wanted && !wanted.has(state.id)) {
        await materializer.apply(state);
        await materializer.revert();
        continue;
      }
      await materializer.apply(state);
      const started = Date.now();
      const verdict = await judgeState(work, {
        layout: recording.layout,
        bootScript,
        confirmedBefore: recording.confirmedBefore,
        ubootBackupSuperblock: options.ubootBackupSuperblock,
        ubootRebuildSuperblock: options.ubootRebuildSuperblock,
        ubootSectorZeroSuperblock: options.ubootSectorZeroSuperblock,
        scratchDir: join(flowDir, 'judge'),
      });
      const result: StateResult = {
        flow: recording.flow,
        state,
        description: describeState(state),
        verdict,
        judgeSeconds: (Date.now() - started) / 1000,
      };
      report.judgeSeconds += result.judgeSeconds;
      report.states++;
      if (verdict.repairedSuperblock) report.repaired++;
      if (state.kind === 'superblocks') report.superblockStates++;
      if (state.kind === 'superblocks' && state.torn.length === 2) report.bothTorn++;
      if (verdict.rebuiltSuperblock?.how === 'sectors') report.rebuilt++;
      if (verdict.rebuiltSuperblock?.how === 'sector 0') report.rebuiltFromSectorZero++;
      // every state the fast judge fails, the seeded sample, and the first states of the flow that need the
      // superblock repair (the path the judge follows on the host, the device in u-boot and the initramfs)
      // (and of those rebuilt from two torn copies, the first of each rebuild too: u-boot's repair that writes
      // the primary)
      const perFlow = options.repairedBootsPerFlow ?? 1;
      const rebuild = verdict.rebuiltSuperblock?.how;
      const repairSample = rebuild
        ? rebuiltBooted[rebuild] < perFlow
        : verdict.repairedSuperblock && repairedBooted < perFlow;
      if (verdict.suspicious || realBoots.has(state.id) || repairSample) {
        if (repairSample && rebuild) rebuiltBooted[rebuild]++;
        else if (repairSample) repairedBooted++;
        const why = verdict.suspicious
          ? `fast judge: ${verdict.reasons.join('; ')}`
          : repairSample
            ? rebuild
              ? `both superblock copies torn, rebuilt from ${rebuild === 'sectors' ? 'their sectors' : "a copy's sector 0"}`
              : 'torn primary superblock'
            : 'sampled';
        result.realBoot = await bootForReal(work, join(flowDir, `boot-${state.id}`), artifacts, verdict);
        report.realBoots.push(result);
        options.log(
          `[powercut] ${recording.flow} state ${state.id}: real boot ${result.realBoot.ok ? 'reached' : 'FAILED'} snapshot ${result.realBoot.snapshot ?? '-'} (${result.realBoot.seconds.toFixed(0)} s; ${why})`,
        );
      }
      // a fast-judge failure counts even when the real boot reached a snapshot (a lost confirmed snapshot
      // boots fine): the report shows both
      if (!verdict.ok || (result.realBoot && !result.realBoot.ok)) report.failed.push(result);
      await materializer.revert();
    }
  } finally {
    await materializer.close();
  }
  await rm(work, { force: true });
  return report;
}

/**
 * Boots the state in the real u-boot + kernel: it must reach a snapshot (the one the fast judge predicts,
 * when it could judge), never the u-boot prompt. The control area is cleared first: the commands the
 * recorded boot ran belong to the test harness, not to the device's state.
 */
async function bootForReal(
  image: string,
  dir: string,
  artifacts: VdevArtifacts,
  verdict: Verdict,
): Promise<NonNullable<StateResult['realBoot']>> {
  await runner.run('mkdir', ['-p', dir]);
  await runner.run('cp', ['--sparse=always', '--reflink=auto', image, join(dir, 'disk.img')]);
  try {
    const device = await VirtualDevice.open(dir, artifacts);
    await device.setControl([]);
    let record = await device.boot({ timeoutMs: 240_000 });
    let retried: string | undefined;
    let logs = record.log;
    // Under load, QEMU's u-boot sometimes resets or stalls in its early init, before "Net:" (printed by
    // both boards' u-boot, after the first env load, before boot.scr is read) and before it has read
    // anything from the btrfs (seen 2 times in ~60 x86 boots; the same image then boots). That says
    // nothing about the state: boot again (twice at most) and keep the note in the report.
    for (let attempt = 1; attempt <= 2 && !/\nNet:/.test(record.log); attempt++) {
      retried = `${retried ? `${retried}; ` : ''}boot ${attempt} ended in u-boot's early init (${record.end} after ${record.seconds.toFixed(0)} s), booted again`;
      record = await device.boot({ timeoutMs: 240_000 });
      logs += record.log;
    }
    const snapshot = record.linux?.snapshot ?? null;
    const expected = verdict.snapshot;
    let why: string | undefined;
    if (record.reachedPrompt) why = 'reached the u-boot prompt';
    else if (!record.linux) why = `no snapshot reached (${record.end})`;
    else if (expected && snapshot !== expected) why = `booted ${snapshot}, the fast judge predicted ${expected}`;
    else if (verdict.rebuiltSuperblock && !logs.includes(rebuiltLine(verdict.rebuiltSuperblock))) {
      why = `the fast judge rebuilt the superblock from two torn copies (${rebuiltLine(verdict.rebuiltSuperblock)}), u-boot did not say it did`;
    }
    return {
      ok: !why,
      snapshot,
      trial: record.linux?.trial ?? null,
      prompt: record.reachedPrompt,
      seconds: record.seconds,
      why: why ?? retried,
    };
  } finally {
    await rm(join(dir, 'disk.img'), { force: true });
  }
}

/** What the patched u-boot prints when it rebuilds what the fast judge rebuilt (uboot/patches/0002, 0003). */
export function rebuiltLine(rebuilt: NonNullable<Verdict['rebuiltSuperblock']>): string {
  return rebuilt.how === 'sectors'
    ? `rebuilt generation ${rebuilt.generation} from the sectors of the copies at ${rebuilt.from.join(' and ')}`
    : `rebuilt generation ${rebuilt.generation} from sector 0 of the copy at ${rebuilt.from[0]}`;
}
