import type { CrashState } from './crash-states';
import { replayCommand } from './report';

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
