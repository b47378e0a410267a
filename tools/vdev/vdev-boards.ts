import { describePrivileged, requireCommand, type Requirement } from '@cowroot/testing';
import { QEMU_COMMAND, VDEV_BOARDS, type VdevBoard } from './vdev-artifacts';

/**
 * The boards a test run covers: all of them, or the comma-separated COWROOT_VDEV_BOARDS (e.g. `arm64` to
 * look at one board by hand). An unknown name is an error, not a silently empty run.
 */
export function selectedBoards(wanted: readonly VdevBoard[], selection = process.env.COWROOT_VDEV_BOARDS): VdevBoard[] {
  if (!selection) return [...wanted];
  const names = selection
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !(VDEV_BOARDS as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(`COWROOT_VDEV_BOARDS=${selection}: boards are ${VDEV_BOARDS.join(', ')}`);
  }
  return wanted.filter((board) => names.includes(board));
}

/**
 * The same scenarios once per board, each a privileged suite titled `<title> [<board>]` that also needs
 * the board's QEMU: `describeOnBoards(['x86', 'arm64'], 'boot chain', requirements, (board) => { ... })`.
 * `requirements` may differ per board (a function of it).
 */
export function describeOnBoards(
  boards: readonly VdevBoard[],
  title: string,
  requirements: Requirement[] | ((board: VdevBoard) => Requirement[]),
  body: (board: VdevBoard) => void,
): void {
  for (const board of selectedBoards(boards)) {
    const needs = typeof requirements === 'function' ? requirements(board) : requirements;
    describePrivileged(`${title} [${board}]`, [...needs, requireCommand(QEMU_COMMAND[board])], () => body(board));
  }
}

/** COWROOT_VDEV_FULL=1 (`npm run test:device`): every scenario on every board. */
export const fullRun = (flag = process.env.COWROOT_VDEV_FULL): boolean => flag === '1';

/**
 * `it` for a board's scenarios, titled `<id>. <what>`. The default run takes every scenario on a board
 * without a list in `defaultRun`, and only the listed ids on the others (TCG boots of arm64 cost about
 * three times an x86 boot); the rest are skipped, with the reason printed once, unless fullRun().
 */
export function scenarioRunner(
  board: VdevBoard,
  defaultRun: Partial<Record<VdevBoard, readonly string[]>>,
  full = fullRun(),
): (title: string, fn: () => Promise<void>, timeoutMs: number) => void {
  const listed = defaultRun[board];
  const skipped: string[] = [];
  return (title, fn, timeoutMs) => {
    const id = /^(\w+)\. /.exec(title)?.[1];
    if (!id) throw new Error(`scenario title '${title}' does not start with '<id>. '`);
    if (full || !listed || listed.includes(id)) {
      it(title, fn, timeoutMs);
      return;
    }
    if (skipped.push(id) === 1) {
      console.warn(
        `${board}: scenarios outside [${listed.join(', ')}] run with COWROOT_VDEV_FULL=1 (npm run test:device)`,
      );
    }
    it.skip(title, fn, timeoutMs);
  };
}
