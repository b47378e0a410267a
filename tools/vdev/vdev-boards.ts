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
