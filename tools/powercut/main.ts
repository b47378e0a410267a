import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import type { CrashState } from './crash-states';
import { FLOWS, flowNamed } from './flows';
import { runFlow, type FlowReport } from './powercut-run';
import { formatReport } from './report';
import { BOARDS, boardNamed, openSession } from './session';

/**
 * Power cut at every write (docs/boot-safety.md): records the flows with every disk write logged,
 * enumerates the crash states, judges each fast and boots a sample for real.
 *   npm run test:powercut                                   # the full run
 *   npm run powercut -- --flow install-full --state 60      # one state alone, booted for real
 *   npm run powercut -- --board arm64 --flow accept --state 5   # the same on the arm64 virtual device
 */
async function main(): Promise<void> {
  const program = new Command('powercut')
    .requiredOption('--tools-dir <dir>', 'tools/ of this checkout (set by run.sh)')
    .option('--board <name>', `board of the virtual device (${Object.keys(BOARDS).join(', ')})`, 'x86')
    .option('--flow <name...>', `flows to judge (default all: ${FLOWS.map((f) => f.name).join(', ')})`)
    .option('--state <id...>', 'replay only these states of the (single) flow, each booted for real')
    .option('--seed <n>', 'seed of the sampled states and of the real boots', '1')
    .option('--samples-per-epoch <n>', 'random states between two flushes', '3')
    .option('--real-boots <n>', 'states booted for real per flow, on top of every suspicious one', '4')
    .option('--repaired-boots <n>', 'states booted for real per flow of each superblock repair (backup, rebuilt)', '1')
    .option('--kinds <kind...>', 'judge only states of these kinds (before, flush, subset, superblocks, end)')
    .option('--state-limit <n>', 'judge a seeded sample of at most <n> states per flow')
    .option('--rerecord', 'record the flows again even if recordings are kept')
    .option(
      '--work-dir <dir>',
      'recordings and scratch',
      join(process.env.COWROOT_CACHE_DIR ?? '/var/cache/cowroot', 'powercut'),
    )
    .option('--report <file>', 'write the full report as JSON')
    .option('--scratch-dir <dir>', 'where the states are materialised (default <work-dir>/<board>/scratch)')
    .parse();
  const o = program.opts<{
    toolsDir: string;
    board: string;
    flow?: string[];
    state?: string[];
    seed: string;
    samplesPerEpoch: string;
    realBoots: string;
    repairedBoots: string;
    kinds?: string[];
    stateLimit?: string;
    rerecord?: boolean;
    workDir: string;
    report?: string;
    scratchDir?: string;
  }>();
  const number = (name: string, value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`--${name} must be a whole number, not ${value}`);
    return parsed;
  };
  const flows = (o.flow ?? FLOWS.map((f) => f.name)).map(flowNamed);
  const states = o.state?.map((s) => number('state', s));
  if (states && flows.length !== 1) throw new Error('--state needs exactly one --flow');
  const board = boardNamed(o.board);
  const log = (line: string): void => console.error(line);
  const dir = join(o.workDir, board.name);
  const session = await openSession(dir, board, join(o.toolsDir, 'vdev'), { rerecord: o.rerecord, flows, log });
  const started = Date.now();
  const reports: FlowReport[] = [];
  for (const recording of session.recordings) {
    const report = await runFlow(recording, session.artifacts, session.bootScript, {
      seed: number('seed', o.seed),
      samplesPerEpoch: number('samples-per-epoch', o.samplesPerEpoch),
      realBootsPerFlow: number('real-boots', o.realBoots),
      onlyStates: states,
      onlyKinds: o.kinds?.map(kindNamed),
      stateLimit: o.stateLimit === undefined ? undefined : number('state-limit', o.stateLimit),
      ubootBackupSuperblock: board.ubootBackupSuperblock,
      ubootRebuildSuperblock: board.ubootRebuildSuperblock,
      ubootSectorZeroSuperblock: board.ubootSectorZeroSuperblock,
      repairedBootsPerFlow: number('repaired-boots', o.repairedBoots),
      scratchDir: o.scratchDir ?? join(dir, 'scratch'),
      log,
    });
    reports.push(report);
    log(
      `[powercut] ${report.flow}: ${report.states} states, ${report.failed.length} failed, ${report.realBoots.length} booted`,
    );
  }
  const text = formatReport(reports, (Date.now() - started) / 1000, {
    board: board.name,
    seed: o.seed,
    samplesPerEpoch: number('samples-per-epoch', o.samplesPerEpoch),
  });
  console.log(text);
  if (o.report) {
    await mkdir(join(o.report, '..'), { recursive: true });
    await writeFile(o.report, `${JSON.stringify({ board: board.name, seed: o.seed, reports }, null, 2)}\n`);
  }
  if (reports.some((r) => r.failed.length > 0)) process.exitCode = 1;
}

const KINDS: CrashState['kind'][] = ['before', 'flush', 'subset', 'superblocks', 'end'];
function kindNamed(name: string): CrashState['kind'] {
  const kind = KINDS.find((k) => k === name);
  if (!kind) throw new Error(`--kinds takes ${KINDS.join(', ')}, not ${name}`);
  return kind;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});
