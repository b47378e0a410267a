import { countColumns, renderRollout, RolloutStatusView } from './rollout-view';

const rollout: RolloutStatusView = {
  id: '7d0c5c8e-0000-4000-8000-000000000001',
  name: 'base@1.1 to tags canary',
  release: { name: 'base', version: '1.1' },
  selector: { tags: ['canary'] },
  status: 'paused',
  statusReason: 'abort rule 1: 2 of 4 executed devices failed (any), 50% >= 25%: pause',
  currentWave: 1,
  continuous: false,
  randomize: true,
  dispatchPerMinute: 100,
  rebootMode: 'now',
  abortRules: [{ kind: 'any', thresholdPercent: 25, minExecuted: 2, action: 'pause' }],
  createdBy: 'admin',
  createdAt: '2026-11-26T01:00:00.000Z',
  updatedAt: '2026-11-26T01:02:00.000Z',
  finishedAt: null,
  total: 10,
  counts: { confirmed: 2, 'rejected-by-health-check': 1, 'rolled-back-by-bootloader': 1, downloading: 1, queued: 5 },
  waves: [
    {
      index: 0,
      size: { kind: 'count', value: 1 },
      successPercent: 100,
      timeoutSeconds: 3600,
      soakSeconds: 0,
      requiresApproval: false,
      status: 'succeeded',
      approvedBy: null,
      approvedAt: null,
      startedAt: '2026-11-26T01:00:00.000Z',
      soakUntil: null,
      verdict: null,
      finishedAt: '2026-11-26T01:01:00.000Z',
      total: 1,
      counts: { confirmed: 1 },
    },
    {
      index: 1,
      size: { kind: 'percent', value: 50 },
      successPercent: 90,
      timeoutSeconds: 1800,
      soakSeconds: 3600,
      requiresApproval: false,
      status: 'running',
      approvedBy: null,
      approvedAt: null,
      startedAt: '2026-11-26T01:01:00.000Z',
      soakUntil: null,
      verdict: null,
      finishedAt: null,
      total: 4,
      counts: { confirmed: 1, 'rejected-by-health-check': 1, 'rolled-back-by-bootloader': 1, downloading: 1 },
    },
    {
      index: 2,
      size: { kind: 'percent', value: 100 },
      successPercent: 100,
      timeoutSeconds: 3600,
      soakSeconds: 0,
      requiresApproval: true,
      status: 'pending',
      approvedBy: null,
      approvedAt: null,
      startedAt: null,
      soakUntil: null,
      verdict: null,
      finishedAt: null,
      total: 5,
      counts: { queued: 5 },
    },
  ],
};

describe('renderRollout', () => {
  const lines = renderRollout(rollout).split('\n');

  it('heads with status, reason, target and totals', () => {
    expect(lines).toContain(`status:      PAUSED (${rollout.statusReason})`);
    expect(lines).toContain('target:      tags canary');
    expect(lines).toContain('devices:     10 planned, 2 confirmed, 2 failed, 1 in flight, 5 queued, 0 canceled');
    expect(lines).toContain('abort rules: any >= 25% (after 2) -> pause');
  });

  it('has one aligned row per wave, marking the current one and pending approvals', () => {
    const header = lines.find((line) => line.startsWith('WAVE'))!;
    expect(header).toMatch(
      /^WAVE\s+SIZE\s+STATUS\s+DEVICES\s+QUEUED\s+IN FLIGHT\s+CONFIRMED\s+FAILED\s+CANCELED\s+NEEDS\s+TIMEOUT\s+SOAK\s+NOTE$/,
    );
    const rows = lines.slice(lines.indexOf(header) + 1, lines.indexOf(header) + 4);
    expect(rows[0]).toMatch(/^\s*1\s+1 device\s+succeeded\s+1\s+0\s+0\s+1\s+0\s+0\s+100%\s+1h\s+0s\s+-$/);
    expect(rows[1]).toMatch(/^\s*2\*\s+50%\s+running\s+4\s+0\s+1\s+1\s+2\s+0\s+90%\s+30m\s+1h\s+-$/);
    expect(rows[2]).toMatch(/approval required$/);
    // right-aligned counts end in the same column as their header
    const confirmedEnd = header.indexOf('CONFIRMED') + 'CONFIRMED'.length;
    expect(rows.map((row) => row[confirmedEnd - 1])).toEqual(['1', '1', '0']);
  });

  it('breaks failures down by kind', () => {
    expect(lines[lines.length - 1]).toBe('failures: 1 health-check, 1 bootloader');
  });
});

describe('countColumns', () => {
  it('groups execution states: only confirmed is success, staged and rebooting are in flight', () => {
    expect(
      countColumns({
        queued: 1,
        notified: 1,
        downloading: 1,
        installed: 1,
        rebooting: 1,
        confirmed: 2,
        failed: 1,
        'timed-out': 1,
        canceled: 3,
      }),
    ).toEqual({
      queued: 1,
      inFlight: 4,
      confirmed: 2,
      failed: 2,
      canceled: 3,
    });
  });
});
