import { cumulativeWaveBounds, waveOfPosition } from './wave-sizing';

describe('cumulativeWaveBounds', () => {
  it('reads 1 device, 5%, 25%, 100% as cumulative targets', () => {
    const bounds = cumulativeWaveBounds(
      [
        { kind: 'count', value: 1 },
        { kind: 'percent', value: 5 },
        { kind: 'percent', value: 25 },
        { kind: 'percent', value: 100 },
      ],
      1000,
    );
    expect(bounds).toEqual([1, 50, 250, 1000]);
  });

  it('rounds percentages up, never shrinks and never exceeds the fleet', () => {
    expect(
      cumulativeWaveBounds(
        [
          { kind: 'percent', value: 1 },
          { kind: 'count', value: 1 },
          { kind: 'count', value: 50 },
        ],
        10,
      ),
    ).toEqual([1, 1, 10]);
    expect(
      cumulativeWaveBounds(
        [
          { kind: 'percent', value: 10 },
          { kind: 'percent', value: 100 },
        ],
        10,
      ),
    ).toEqual([1, 10]);
    expect(cumulativeWaveBounds([{ kind: 'percent', value: 100 }], 0)).toEqual([0]);
  });

  it('places positions into waves', () => {
    const bounds = [1, 5, 10];
    expect([1, 2, 5, 6, 10, 11].map((p) => waveOfPosition(bounds, p))).toEqual([0, 1, 1, 2, 2, null]);
  });
});
