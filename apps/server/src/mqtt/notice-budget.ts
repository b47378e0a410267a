/** Rejection notices sent to one device per second; the rest are counted in the next notice's `suppressed`. */
export const NOTICES_PER_SECOND = 5;

/**
 * Rate limit for rejection notices (docs/protocol.md §7.1): a device that floods malformed messages gets a
 * few notices per second, not one per message, so the server never queues unbounded output for it. Pure,
 * with the clock passed in; the map holds devices noticed within the last second only.
 */
export class NoticeBudget {
  private readonly windows = new Map<string, { start: number; sent: number; suppressed: number }>();

  constructor(private readonly perSecond = NOTICES_PER_SECOND) {}

  /** null: do not send; a number: send, with this many suppressed since the last notice sent. */
  take(deviceId: string, now: number): number | null {
    let window = this.windows.get(deviceId);
    if (!window || now - window.start >= 1000) {
      if (this.windows.size > 10_000) this.prune(now);
      window = { start: now, sent: 0, suppressed: window?.suppressed ?? 0 };
      this.windows.set(deviceId, window);
    }
    if (window.sent >= this.perSecond) {
      window.suppressed++;
      return null;
    }
    window.sent++;
    const suppressed = window.suppressed;
    window.suppressed = 0;
    return suppressed;
  }

  forget(deviceId: string): void {
    this.windows.delete(deviceId);
  }

  private prune(now: number): void {
    for (const [deviceId, window] of this.windows) if (now - window.start >= 1000) this.windows.delete(deviceId);
  }
}
