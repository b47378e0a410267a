/**
 * When a simulated device tries its next broker URL after a failed or lost connection. Without a growing,
 * jittered delay, thousands of devices that NATS closed at the same moment (a node killed, a burst of
 * storage timeouts) come back at the same moment, every 500 ms, and make the storm that closed them again.
 *
 * Exponential backoff with "equal jitter": the n-th consecutive failure waits a uniformly drawn time in
 * [d/2, d] where d = min(maxMs, baseMs · 2^n), so the first retries stay quick (a fresh cluster placing its
 * MQTT streams refuses the first connects for a few seconds) while a fleet's retries spread out. A
 * successful connect resets it. Which URL comes next is DeviceLink's rotation, not this class's.
 */
export interface ReconnectBackoffOptions {
  /** delay ceiling of the first retry (ms) */
  baseMs?: number;
  /** delay ceiling however many failures (ms) */
  maxMs?: number;
  /** uniform in [0, 1); injectable so a test can pin the draw */
  random?: () => number;
}

export class ReconnectBackoff {
  private failures = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: ReconnectBackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 8000;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0) || !(this.maxMs >= this.baseMs)) {
      throw new Error(`ReconnectBackoff: need 0 < baseMs <= maxMs (got ${this.baseMs}, ${this.maxMs})`);
    }
  }

  /** consecutive failures since the last success */
  get attempts(): number {
    return this.failures;
  }

  /** A connect failed or a connection was lost: how long to wait before the next attempt. */
  failed(): number {
    // 2^failures overflows to Infinity long after it passed maxMs: min() keeps it finite
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.failures);
    this.failures++;
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  /** A connect succeeded: the next loss starts again from baseMs. */
  succeeded(): void {
    this.failures = 0;
  }
}
