import { selectedBoards } from './vdev-boards';

describe('vdev boards', () => {
  it('runs every wanted board unless COWROOT_VDEV_BOARDS names some', () => {
    expect(selectedBoards(['x86', 'arm64'], '')).toEqual(['x86', 'arm64']);
    expect(selectedBoards(['x86', 'arm64'], 'arm64')).toEqual(['arm64']);
    expect(selectedBoards(['x86', 'arm64'], ' arm64 , x86 ')).toEqual(['x86', 'arm64']);
    expect(selectedBoards(['x86'], 'arm64')).toEqual([]);
  });

  it('refuses a board name it does not know, and an empty list', () => {
    expect(() => selectedBoards(['x86'], 'riscv64')).toThrow('COWROOT_VDEV_BOARDS=riscv64: boards are x86, arm64');
    expect(() => selectedBoards(['x86'], ',')).toThrow(/boards are x86, arm64/);
  });
});
