import { PerformanceObserver, constants } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { collectYoungGarbage } from './young-garbage';

/** The kinds of the collections V8 reports while `run` runs (and a moment after: entries come async). */
async function collectionsDuring(run: () => void): Promise<number[]> {
  const kinds: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) kinds.push((entry as unknown as { detail: { kind: number } }).detail.kind);
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    run();
    await sleep(50);
  } finally {
    observer.disconnect();
  }
  return kinds;
}

describe(collectYoungGarbage.name, () => {
  it('runs one minor collection per call, never a major one', async () => {
    const kinds = await collectionsDuring(() => {
      for (let i = 0; i < 5; i++) collectYoungGarbage();
    });
    // V8 may add collections of its own; ours are the five scavenges
    expect(kinds.filter((kind) => kind === constants.NODE_PERFORMANCE_GC_MINOR).length).toBeGreaterThanOrEqual(5);
    expect(kinds).not.toContain(constants.NODE_PERFORMANCE_GC_MAJOR);
  });
});
