import type { AuditEntryInput } from './audit.service';

/** How much of one kind of device-caused audit entry is recorded one by one. */
export interface CoalescingPolicy {
  /** length of a window */
  windowMs: number;
  /** entries of one kind per subject recorded one by one per window; the rest are counted */
  burst: number;
}

export const DEFAULT_COALESCING: CoalescingPolicy = { windowMs: 60_000, burst: 3 };

interface Window {
  start: number;
  written: number;
  suppressed: number;
  firstSuppressedAt: number;
  lastSuppressedAt: number;
  last: AuditEntryInput | null;
}

type Decision =
  | { key: string; kind: 'open'; at: number }
  | { key: string; kind: 'write'; at: number }
  | { key: string; kind: 'suppress'; at: number; entry: AuditEntryInput };

/** The entries a transaction writes, and the counts to take over once it committed. */
export interface CoalescePlan {
  entries: AuditEntryInput[];
  /** call after the transaction committed; a rolled-back plan is simply dropped */
  apply(): void;
}

const keyOf = (entry: AuditEntryInput) => `${entry.subjectType}\u0000${entry.subjectId}\u0000${entry.action}`;

/**
 * Coalesces repeated audit entries of one kind about one subject (docs/protocol.md §7.1): per window, the
 * first `burst` entries are written as they come; the others are counted, and one summary entry
 * `<action>.repeated` (`after: { count, from, to, last }`) is written when the window is over. A device
 * that flaps its connection or its state every second thus adds at most burst + 1 rows per kind per window
 * instead of 60. Pure model (the clock is passed in); AuditCoalescer writes the summaries.
 */
export class AuditCoalescing {
  private readonly windows = new Map<string, Window>();
  private readonly closed: Window[] = [];

  constructor(private readonly policyOf: (action: string) => CoalescingPolicy) {}

  /** Decides which of `entries` to write now; nothing changes until the plan is applied. */
  plan(entries: AuditEntryInput[], now: number): CoalescePlan {
    const decisions: Decision[] = [];
    const tally = new Map<string, { start: number; written: number }>();
    const written: AuditEntryInput[] = [];
    for (const entry of entries) {
      const key = keyOf(entry);
      const policy = this.policyOf(entry.action);
      const current = tally.get(key) ?? this.windows.get(key);
      if (!current || now - current.start >= policy.windowMs) {
        tally.set(key, { start: now, written: 1 });
        decisions.push({ key, kind: 'open', at: now });
        written.push(entry);
      } else if (current.written < policy.burst) {
        tally.set(key, { start: current.start, written: current.written + 1 });
        decisions.push({ key, kind: 'write', at: now });
        written.push(entry);
      } else {
        tally.set(key, { start: current.start, written: current.written });
        decisions.push({ key, kind: 'suppress', at: now, entry });
      }
    }
    return { entries: written, apply: () => this.apply(decisions) };
  }

  /** Summary entries of every window over by `now` (all windows when `now` is Infinity), forgotten after. */
  takeSummaries(now: number): AuditEntryInput[] {
    for (const [key, window] of this.windows) {
      const action = key.slice(key.lastIndexOf('\u0000') + 1);
      if (now - window.start < this.policyOf(action).windowMs) continue;
      this.windows.delete(key);
      if (window.suppressed > 0) this.closed.push(window);
    }
    return this.closed.splice(0).map((window) => summaryOf(window));
  }

  /** Windows held (for the memory bound: at most one per subject and kind seen within a window). */
  get size(): number {
    return this.windows.size;
  }

  private apply(decisions: Decision[]): void {
    for (const decision of decisions) {
      const window = this.windows.get(decision.key);
      if (decision.kind === 'open') {
        if (window && window.suppressed > 0) this.closed.push(window);
        this.windows.set(decision.key, {
          start: decision.at,
          written: 1,
          suppressed: 0,
          firstSuppressedAt: 0,
          lastSuppressedAt: 0,
          last: null,
        });
      } else if (decision.kind === 'write') {
        if (window) window.written++;
      } else {
        const target = window ?? {
          start: decision.at,
          written: Number.MAX_SAFE_INTEGER,
          suppressed: 0,
          firstSuppressedAt: 0,
          lastSuppressedAt: 0,
          last: null,
        };
        if (!window) this.windows.set(decision.key, target);
        if (target.suppressed === 0) target.firstSuppressedAt = decision.at;
        target.suppressed++;
        target.lastSuppressedAt = decision.at;
        target.last = decision.entry;
      }
    }
  }
}

function summaryOf(window: Window): AuditEntryInput {
  const last = window.last as AuditEntryInput;
  return {
    actor: last.actor,
    action: `${last.action}.repeated`,
    subjectType: last.subjectType,
    subjectId: last.subjectId,
    before: null,
    after: {
      count: window.suppressed,
      from: new Date(window.firstSuppressedAt).toISOString(),
      to: new Date(window.lastSuppressedAt).toISOString(),
      last: last.after ?? null,
    },
    reason: `${window.suppressed} more ${last.action} in the window, counted instead of recorded one by one`,
  };
}
