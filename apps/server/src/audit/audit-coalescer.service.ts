import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AuditService, AuditEntryInput } from './audit.service';
import { AuditCoalescing, CoalescePlan, CoalescingPolicy, DEFAULT_COALESCING } from './audit-coalescing';

export type { CoalescePlan } from './audit-coalescing';

/** A session takeover is recorded once per window: two agents on one id would otherwise log every second. */
export const TAKEOVER_ACTION = 'device.session.takeover';
const POLICIES: Record<string, CoalescingPolicy> = {
  [TAKEOVER_ACTION]: { windowMs: DEFAULT_COALESCING.windowMs, burst: 1 },
};

/**
 * Device-caused audit entries go through here (presence, state transitions, takeovers): see AuditCoalescing.
 * Summaries of finished windows are written every few seconds and at shutdown, after the broker stopped.
 * A crash loses the count of the current window only, never an entry that was written.
 */
@Injectable()
export class AuditCoalescer implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(AuditCoalescer.name);
  private readonly model = new AuditCoalescing((action) => POLICIES[action] ?? DEFAULT_COALESCING);
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly audit: AuditService) {}

  plan(entries: AuditEntryInput[], now = Date.now()): CoalescePlan {
    return this.model.plan(entries, now);
  }

  /** Writes the summaries of every window over by `now`. */
  async flush(now = Date.now()): Promise<number> {
    const summaries = this.model.takeSummaries(now);
    if (summaries.length > 0) await this.audit.recordMany(summaries);
    return summaries.length;
  }

  onModuleInit(): void {
    this.timer = setInterval(() => {
      this.flush().catch((error: Error) =>
        this.logger.error(`writing coalesced audit entries failed: ${error.message}`),
      );
    }, 5000);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush(Infinity).catch((error: Error) =>
      this.logger.error(`writing coalesced audit entries at shutdown failed: ${error.message}`),
    );
  }
}
