import { reconnectDelayMs } from './reconnect-delay';

describe(reconnectDelayMs.name, () => {
  it('doubles after every close with one broker', () => {
    expect([0, 1, 2, 3, 4].map((closes) => reconnectDelayMs(closes, 1, 1000, 60_000))).toEqual([
      1000, 2000, 4000, 8000, 16_000,
    ]);
  });

  it('doubles once per round over three nodes, so a dead node costs one initial delay', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((closes) => reconnectDelayMs(closes, 3, 1000, 60_000))).toEqual([
      1000, 1000, 1000, 2000, 2000, 2000, 4000,
    ]);
  });

  it('stays at the maximum however long the broker stays away', () => {
    expect(reconnectDelayMs(10, 1, 1000, 60_000)).toBe(60_000);
    expect(reconnectDelayMs(10_000, 3, 1000, 60_000)).toBe(60_000);
  });
});
