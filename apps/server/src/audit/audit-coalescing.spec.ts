import { deviceActor } from '../auth/actor';
import { AuditCoalescing } from './audit-coalescing';
import type { AuditEntryInput } from './audit.service';
import { boundAuditEntry, MAX_DEVICE_AUDIT_REASON_CHARS, MAX_DEVICE_AUDIT_VALUE_CHARS } from './audit-entry-bounds';

const entry = (deviceId: string, action: string, online = true): AuditEntryInput => ({
  actor: deviceActor(deviceId),
  action,
  subjectType: 'device',
  subjectId: deviceId,
  before: { online: !online },
  after: { online },
});

describe(AuditCoalescing.name, () => {
  const policy = { windowMs: 60_000, burst: 3 };

  /** plans and commits one entry at a time, as the presence service does */
  const record = (model: AuditCoalescing, e: AuditEntryInput, at: number) => {
    const plan = model.plan([e], at);
    plan.apply();
    return plan.entries.length;
  };

  it('writes the first `burst` entries of a kind per window and counts the rest into one summary', () => {
    const model = new AuditCoalescing(() => policy);
    let written = 0;
    // one flap per second for two minutes
    for (let s = 0; s < 120; s++) written += record(model, entry('d1', 'device.state.online', s % 2 === 0), s * 1000);
    expect(written).toBe(6);
    const summaries = model.takeSummaries(180_000);
    expect(summaries).toEqual([
      expect.objectContaining({
        action: 'device.state.online.repeated',
        subjectId: 'd1',
        actor: deviceActor('d1'),
        after: {
          count: 57,
          from: new Date(3000).toISOString(),
          to: new Date(59_000).toISOString(),
          last: { online: false },
        },
      }),
      expect.objectContaining({
        action: 'device.state.online.repeated',
        after: expect.objectContaining({ count: 57 }),
      }),
    ]);
    expect(model.size).toBe(0);
  });

  it('keeps kinds and devices apart, and a rolled-back plan changes nothing', () => {
    const model = new AuditCoalescing(() => ({ windowMs: 60_000, burst: 1 }));
    expect(record(model, entry('d1', 'a'), 0)).toBe(1);
    expect(record(model, entry('d1', 'b'), 0)).toBe(1);
    expect(record(model, entry('d2', 'a'), 0)).toBe(1);
    // planned but never applied (the transaction rolled back): the next one still counts as suppressed once
    expect(model.plan([entry('d1', 'a')], 1000).entries).toEqual([]);
    expect(record(model, entry('d1', 'a'), 2000)).toBe(0);
    expect(model.takeSummaries(59_000)).toEqual([]);
    expect(
      model.takeSummaries(60_000).map((s) => [s.subjectId, s.action, (s.after as { count: number }).count]),
    ).toEqual([['d1', 'a.repeated', 1]]);
  });

  it('decides a batch with several entries of one key consistently', () => {
    const model = new AuditCoalescing(() => policy);
    const plan = model.plan(
      Array.from({ length: 10 }, () => entry('d1', 'device.state.snapshots-changed')),
      0,
    );
    expect(plan.entries).toHaveLength(3);
    plan.apply();
    expect((model.takeSummaries(Infinity)[0].after as { count: number }).count).toBe(7);
  });

  it('a new window after a busy one hands the old count to the next summaries', () => {
    const model = new AuditCoalescing(() => ({ windowMs: 1000, burst: 1 }));
    record(model, entry('d1', 'a'), 0);
    record(model, entry('d1', 'a'), 500);
    expect(record(model, entry('d1', 'a'), 1500)).toBe(1);
    expect(model.takeSummaries(1600).map((s) => (s.after as { count: number }).count)).toEqual([1]);
  });
});

describe(boundAuditEntry.name, () => {
  it('bounds what a device put into an audit entry, and leaves operator entries alone', () => {
    const huge = { outputTail: 'x'.repeat(100_000) };
    const bounded = boundAuditEntry({ ...entry('d1', 'device.command.failed'), after: huge, reason: 'r'.repeat(5000) });
    expect(JSON.stringify(bounded.after).length).toBeLessThan(MAX_DEVICE_AUDIT_VALUE_CHARS);
    expect(bounded.after).toMatchObject({ truncated: true, chars: JSON.stringify(huge).length });
    expect(bounded.reason).toHaveLength(MAX_DEVICE_AUDIT_REASON_CHARS);
    const small = { ...entry('d1', 'device.state.online'), reason: 'ok' };
    expect(boundAuditEntry(small)).toEqual(small);
    const operator = { ...small, actor: { type: 'operator' as const, id: 'o', name: 'o' }, after: huge };
    expect(boundAuditEntry(operator)).toBe(operator);
  });
});
