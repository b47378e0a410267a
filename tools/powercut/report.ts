import type { FlowReport, StateResult } from './powercut-run';

/** How the states were enumerated: a replay must enumerate them the same way to find the same state. */
export interface ReplayContext {
  board: string;
  seed: string;
  samplesPerEpoch: number;
}

/** The command that replays one state alone (fast judge + a real boot); the CLI's defaults are left out. */
export function replayCommand(result: Pick<StateResult, 'flow' | 'state'>, context: ReplayContext): string {
  const board = context.board === 'x86' ? '' : ` --board ${context.board}`;
  const seed = context.seed === '1' ? '' : ` --seed ${context.seed}`;
  const samples = context.samplesPerEpoch === 3 ? '' : ` --samples-per-epoch ${context.samplesPerEpoch}`;
  return `npm run powercut --${board} --flow ${result.flow} --state ${result.state.id}${seed}${samples}`;
}

function describeFailure(result: StateResult, context: ReplayContext): string[] {
  const v = result.verdict;
  const lines = [
    `  FAILED ${result.flow} state ${result.state.id} (write index ${result.state.crashAfter}): ${result.description}`,
    ...v.envCopies.map(
      (c) => `    ${c.name}: ${c.valid ? `valid, flag ${c.flag}` : `invalid (${c.why})`} ${JSON.stringify(c.protocol)}`,
    ),
    `    u-boot boots: ${v.snapshot ?? 'nothing'}${v.trial ? ' (trial)' : ''}`,
    ...v.reasons.map((r) => `    - ${r}`),
  ];
  if (result.realBoot) {
    lines.push(
      `    real boot: ${result.realBoot.ok ? 'ok' : result.realBoot.why} (snapshot ${result.realBoot.snapshot ?? '-'})`,
    );
  }
  lines.push(`    replay: ${replayCommand(result, context)}`);
  return lines;
}

export function formatReport(reports: FlowReport[], seconds: number, context: ReplayContext): string {
  const { board, seed } = context;
  const states = reports.reduce((n, r) => n + r.states, 0);
  const booted = reports.reduce((n, r) => n + r.realBoots.length, 0);
  const judge = reports.reduce((n, r) => n + r.judgeSeconds, 0);
  const bootSeconds = reports.flatMap((r) => r.realBoots).reduce((n, r) => n + (r.realBoot?.seconds ?? 0), 0);
  const failed = reports.flatMap((r) => r.failed);
  const lines = [
    `power cut at every write, board ${board}, seed ${seed}`,
    'flow                  entries  writes flushes  states  failed  booted',
    ...reports.map(
      (r) =>
        `${r.flow.padEnd(20)} ${String(r.logEntries).padStart(8)} ${String(r.writes).padStart(7)} ${String(r.flushes).padStart(7)} ${String(r.states).padStart(7)} ${String(r.failed.length).padStart(7)} ${String(r.realBoots.length).padStart(7)}`,
    ),
    ...reports.map(
      (r) =>
        `${r.flow}: ${r.repaired} states with a torn primary superblock (judged on the backup or a rebuilt copy); ${r.bothTorn} with both copies torn at once, ${r.rebuilt} rebuilt from a mix of their sectors, ${r.rebuiltFromSectorZero} from a copy's sector 0; ${r.superblocks.commits} btrfs commits; primary + backup superblock in one unflushed batch in ${r.superblocks.withBackupInSameBatch} (backup logged first in ${r.superblocks.backupFirst})`,
    ),
    `total: ${states} distinct crash states, ${failed.length} failed, ${booted} booted for real`,
    `time: ${seconds.toFixed(0)} s; fast judge ${(judge / Math.max(states, 1)).toFixed(2)} s/state; real boot ${(bootSeconds / Math.max(booted, 1)).toFixed(1)} s/boot`,
    ...failed.flatMap((f) => describeFailure(f, context)),
  ];
  return lines.join('\n');
}
