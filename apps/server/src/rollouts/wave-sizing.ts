/** How big a wave is: a device count, or a percentage of the rollout's targeted devices. */
export interface WaveSize {
  kind: 'count' | 'percent';
  value: number;
}

/**
 * Cumulative device counts per wave. Waves are cumulative, as operators write them ("1 device, 5%, 25%,
 * 100%"): wave i brings the number of devices reached so far up to its size, never below the previous
 * wave's. A percentage rounds up so that "1%" of 10 devices is one device, not none.
 */
export function cumulativeWaveBounds(sizes: readonly WaveSize[], total: number): number[] {
  const bounds: number[] = [];
  let previous = 0;
  for (const size of sizes) {
    const wanted = size.kind === 'count' ? Math.floor(size.value) : Math.ceil((size.value * total) / 100 - 1e-9);
    previous = Math.min(total, Math.max(previous, wanted));
    bounds.push(previous);
  }
  return bounds;
}

/** The wave a device at 1-based `position` in the randomised order falls into, or null beyond the last. */
export function waveOfPosition(bounds: readonly number[], position: number): number | null {
  const index = bounds.findIndex((bound) => position <= bound);
  return index === -1 ? null : index;
}
