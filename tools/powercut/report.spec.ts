import type { CrashState } from './crash-states';
import type { StateResult } from './powercut-run';
import { isBeyondRebuild, replayCommand } from './report';

describe('replayCommand', () => {
  const state = { id: 42 } as CrashState;

  it('names what the replay must enumerate the same way: board, seed, samples per stretch', () => {
    expect(replayCommand({ flow: 'accept', state }, { board: 'x86', seed: '1', samplesPerEpoch: 3 })).toBe(
      'npm run powercut -- --flow accept --state 42',
    );
    expect(replayCommand({ flow: 'accept', state }, { board: 'arm64', seed: '2', samplesPerEpoch: 9 })).toBe(
      'npm run powercut -- --board arm64 --flow accept --state 42 --seed 2 --samples-per-epoch 9',
    );
  });
});

describe('isBeyondRebuild', () => {
  const result = (kind: CrashState['kind'], tears: number, reasons: string[]): StateResult =>
    ({
      state: { kind, torn: Array.from({ length: tears }, (_, i) => ({ entry: i, sectors: [0] })) },
      verdict: { reasons },
    }) as unknown as StateResult;
  const none =
    'u-boot finds no valid btrfs superblock (bad checksum, bad checksum) and rebuilds none from their sectors';

  it('is only the both-copies-torn state that no rebuild reads, with no other reason', () => {
    expect(isBeyondRebuild(result('superblocks', 2, [none]))).toBe(true);
    expect(isBeyondRebuild(result('superblocks', 2, [none, 'snapshot 1, confirmed before the flow, is gone']))).toBe(
      false,
    );
    expect(isBeyondRebuild(result('superblocks', 1, [none]))).toBe(false);
    expect(isBeyondRebuild(result('subset', 2, [none]))).toBe(false);
    expect(isBeyondRebuild(result('superblocks', 2, []))).toBe(false);
  });
});
