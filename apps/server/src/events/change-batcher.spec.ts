import { changeBatcher } from './change-batcher';
import type { Change } from './change-feed.service';

describe('changeBatcher', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('merges the changes of one window by topic, ids unioned and sorted', () => {
    const flushed: Change[][] = [];
    const batcher = changeBatcher(200, (changes) => flushed.push(changes));
    batcher.add({ topic: 'rollout', ids: ['b'] });
    batcher.add({ topic: 'rollout', ids: ['a', 'b'] });
    batcher.add({ topic: 'device', ids: ['d1'] });
    expect(flushed).toEqual([]);
    jest.advanceTimersByTime(200);
    expect(flushed).toEqual([
      [
        { topic: 'rollout', ids: ['a', 'b'] },
        { topic: 'device', ids: ['d1'] },
      ],
    ]);
    batcher.add({ topic: 'device', ids: ['d2'] });
    jest.advanceTimersByTime(200);
    expect(flushed[1]).toEqual([{ topic: 'device', ids: ['d2'] }]);
  });

  it('turns a topic into "everything" (null) after an unlisted change or more than 100 ids', () => {
    const flushed: Change[][] = [];
    const batcher = changeBatcher(50, (changes) => flushed.push(changes));
    batcher.add({ topic: 'device', ids: null });
    batcher.add({ topic: 'device', ids: ['x'] });
    batcher.add({ topic: 'rollout', ids: Array.from({ length: 101 }, (_, i) => `r${i}`) });
    jest.advanceTimersByTime(50);
    expect(flushed).toEqual([
      [
        { topic: 'device', ids: null },
        { topic: 'rollout', ids: null },
      ],
    ]);
    batcher.stop();
  });
});
