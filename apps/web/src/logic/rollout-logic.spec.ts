import type { Schemas } from '@cowroot/api-client';
import { abortCloseness } from './abort-closeness';
import { barSegments, barSummary } from './execution-states';
import { availableActions, waveStatusText } from './rollout-actions';

function rollout(patch: Partial<Schemas['RolloutDto']>): Schemas['RolloutDto'] {
  return {
    id: 'r1',
    name: 'r',
    release: { name: 'os', version: '2' },
    selector: { all: true },
    status: 'running',
    statusReason: null,
    currentWave: 0,
    continuous: false,
    randomize: true,
    dispatchPerMinute: null,
    rebootMode: 'now',
    abortRules: [],
    createdBy: 'admin',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    finishedAt: null,
    total: 10,
    counts: {},
    waves: [],
    ...patch,
  };
}

function wave(patch: Partial<Schemas['RolloutWaveDto']>): Schemas['RolloutWaveDto'] {
  return {
    index: 0,
    size: { kind: 'count', value: 1 },
    successPercent: 100,
    timeoutSeconds: 60,
    soakSeconds: 0,
    requiresApproval: false,
    status: 'running',
    approvedBy: null,
    approvedAt: null,
    startedAt: null,
    soakUntil: null,
    finishedAt: null,
    verdict: null,
    total: 1,
    counts: {},
    ...patch,
  };
}

describe('barSegments', () => {
  it('orders states waiting → moving → confirmed → failures and sums to the total', () => {
    const segments = barSegments({ failed: 1, confirmed: 3, queued: 4, downloading: 2 }, 10);
    expect(segments.map((s) => [s.state, s.percent])).toEqual([
      ['queued', 40],
      ['downloading', 20],
      ['confirmed', 30],
      ['failed', 10],
    ]);
    expect(barSummary({ failed: 1, confirmed: 3, queued: 4, downloading: 2 }, 10)).toBe(
      '3 confirmed, 2 in flight, 1 failed, 4 queued of 10',
    );
  });

  it('never overflows when counts exceed a stale total, and shows nothing for an empty wave', () => {
    expect(barSegments({ confirmed: 3 }, 2)[0].percent).toBe(100);
    expect(barSegments({}, 0)).toEqual([]);
  });
});

describe('abortCloseness', () => {
  const rules = [
    { kind: 'health-check' as const, thresholdPercent: 20, minExecuted: 5, action: 'pause' as const },
    { kind: 'any' as const, thresholdPercent: 50, minExecuted: 1, action: 'revert' as const },
  ];

  it("uses the server's arithmetic: executed = confirmed + every failure kind", () => {
    const [health, any] = abortCloseness(rules, {
      confirmed: 6,
      'rejected-by-health-check': 1,
      'timed-out': 1,
      queued: 50,
    });
    expect(health).toMatchObject({ failures: 1, executed: 8, sharePercent: 12.5, armed: true });
    expect(health.closeness).toBeCloseTo(0.625);
    expect(any).toMatchObject({ failures: 2, executed: 8, sharePercent: 25, closeness: 0.5 });
  });

  it('says a rule is not armed before minExecuted outcomes', () => {
    const [health] = abortCloseness(rules, { 'rejected-by-health-check': 1, confirmed: 1 });
    expect(health.armed).toBe(false);
    expect(health.closeness).toBe(2.5);
    expect(health.text).toMatch(/waits for 5 outcomes \(2 so far\)/);
  });
});

describe('availableActions', () => {
  it('offers a viewer nothing at all', () => {
    expect(availableActions(rollout({ counts: { confirmed: 1, failed: 1 } }), 'viewer')).toEqual([]);
    expect(availableActions(rollout({}), undefined)).toEqual([]);
  });

  it('follows the rollout state for an operator', () => {
    expect(availableActions(rollout({}), 'operator')).toEqual(['pause', 'cancel']);
    expect(availableActions(rollout({ status: 'paused', counts: { failed: 2, confirmed: 1 } }), 'operator')).toEqual([
      'resume',
      'retry-failed',
      'cancel',
      'revert',
    ]);
    expect(availableActions(rollout({ waves: [wave({ status: 'awaiting-approval' })] }), 'admin')).toEqual([
      'pause',
      'approve',
      'cancel',
    ]);
  });

  it('offers only revert once the rollout is finished (the server answers ROLLOUT_FINISHED otherwise)', () => {
    expect(availableActions(rollout({ status: 'aborted', counts: { confirmed: 2, failed: 1 } }), 'operator')).toEqual([
      'revert',
    ]);
    expect(availableActions(rollout({ status: 'completed' }), 'operator')).toEqual([]);
  });
});

describe('waveStatusText', () => {
  it('counts the soak down and explains a verdict', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(waveStatusText(wave({ status: 'soaking', soakUntil: '2026-01-01T00:00:42Z' }), now)).toBe(
      'soaking, 42 s left',
    );
    expect(waveStatusText(wave({ status: 'succeeded', verdict: { confirmed: 3, considered: 4 } }), now)).toBe(
      'succeeded (3 of 4 confirmed)',
    );
    expect(waveStatusText(wave({ status: 'failed', verdict: { acceptedBy: 'ops' } }), now)).toBe(
      'failed (accepted by ops)',
    );
    expect(waveStatusText(wave({ status: 'awaiting-approval' }), now)).toBe('awaiting approval');
  });
});
