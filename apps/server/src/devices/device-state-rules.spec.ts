import { parseDeviceState, PROTOCOL_VERSION, DeviceStateMessage } from '@cowroot/protocol';
import { ReportedState, basisOf, judgeReport, stateFromReport, stateTransitions } from './device-state-rules';

const uuidA = '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';
const uuidB = '1b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';

function report(overrides: Record<string, unknown> = {}): DeviceStateMessage {
  const result = parseDeviceState(
    JSON.stringify({
      v: PROTOCOL_VERSION,
      seq: 1,
      sentAt: '2026-11-25T10:00:00.000Z',
      agentVersion: '0.1.0',
      bootedSnapshot: 'base-1',
      trialBoot: false,
      fallbackSnapshot: 'base-1',
      pendingTrial: null,
      lastTrialResult: null,
      snapshots: [
        {
          id: 'base-1',
          uuid: uuidA,
          receivedUuid: uuidA,
          parentUuid: null,
          readOnly: true,
          origin: 'received',
          release: { name: 'base', version: '1' },
          createdAt: '2026-11-25T09:00:00Z',
        },
        {
          id: 'base-2',
          uuid: uuidB,
          receivedUuid: uuidB,
          parentUuid: uuidA,
          readOnly: true,
          origin: 'received',
          release: { name: 'base', version: '2' },
          createdAt: '2026-11-25T09:30:00Z',
        },
      ],
      health: null,
      freeBytes: 1000,
      ...overrides,
    }),
  );
  if (!result.ok) throw new Error(result.message);
  return result.value;
}

const EMPTY: ReportedState = {
  agentVersion: null,
  bootedSnapshot: null,
  bootedRelease: null,
  trialBoot: null,
  fallbackSnapshot: null,
  pendingTrial: null,
  lastTrialResult: null,
  snapshots: [],
  freeBytes: null,
  health: null,
  deltaFormats: null,
  stateSeq: null,
  stateSentAt: null,
};

describe('judgeReport', () => {
  const stored = { stateSeq: 5, stateSentAt: new Date('2026-11-25T10:00:00Z') };

  it('takes the first report and any higher seq', () => {
    expect(judgeReport(EMPTY, { seq: 0, sentAt: '2020-01-01T00:00:00Z' })).toBe('newer');
    expect(judgeReport(stored, { seq: 6, sentAt: '2026-11-25T10:00:01Z' })).toBe('newer');
  });

  it('drops a redelivered or overtaken report of the same agent run', () => {
    expect(judgeReport(stored, { seq: 5, sentAt: '2026-11-25T10:00:00Z' })).toBe('stale');
    expect(judgeReport(stored, { seq: 3, sentAt: '2026-11-25T09:59:00Z' })).toBe('stale');
  });

  it('recognises an agent restart: seq starts again but the clock moved on', () => {
    expect(judgeReport(stored, { seq: 0, sentAt: '2026-11-25T10:05:00Z' })).toBe('new-agent-run');
  });
});

describe('stateFromReport', () => {
  it('keeps the delta formats the agent listed, null when it listed none (an older agent)', () => {
    expect(stateFromReport(report({ deltaFormats: [1, 2, 3] })).deltaFormats).toEqual([1, 2, 3]);
    expect(stateFromReport(report({ deltaFormats: [] })).deltaFormats).toEqual([]);
    expect(stateFromReport(report()).deltaFormats).toBeNull();
  });

  it('derives the booted release from the inventory', () => {
    expect(stateFromReport(report()).bootedRelease).toBe('base@1');
    expect(stateFromReport(report({ bootedSnapshot: 'other' })).bootedRelease).toBeNull();
  });
});

describe('stateTransitions', () => {
  it('tells the first report as booted, snapshots and agent version changes', () => {
    const actions = stateTransitions(basisOf(EMPTY), stateFromReport(report())).map((t) => t.action);
    expect(actions).toEqual([
      'device.state.agent-version-changed',
      'device.state.booted-changed',
      'device.state.fallback-changed',
      'device.state.snapshots-changed',
    ]);
  });

  it('reports nothing for a refresh that changes no state', () => {
    const a = stateFromReport(report());
    const b = stateFromReport(report({ seq: 2, freeBytes: 5 }));
    expect(stateTransitions(basisOf(a), b)).toEqual([]);
  });

  it('follows a trial: requested, booted, confirmed', () => {
    const base = stateFromReport(report());
    const requested = stateFromReport(report({ seq: 2, pendingTrial: { snapshot: 'base-2', state: 'requested' } }));
    expect(stateTransitions(basisOf(base), requested).map((t) => t.action)).toEqual(['device.state.trial-requested']);

    const trying = stateFromReport(
      report({
        seq: 0,
        sentAt: '2026-11-25T10:10:00Z',
        bootedSnapshot: 'base-2',
        trialBoot: true,
        pendingTrial: { snapshot: 'base-2', state: 'trying' },
      }),
    );
    expect(stateTransitions(basisOf(requested), trying).map((t) => t.action)).toEqual([
      'device.state.booted-changed',
      'device.state.trial-booted',
    ]);

    const confirmed = stateFromReport(
      report({
        seq: 1,
        sentAt: '2026-11-25T10:11:00Z',
        bootedSnapshot: 'base-2',
        fallbackSnapshot: 'base-2',
        lastTrialResult: { snapshot: 'base-2', outcome: 'accepted' },
      }),
    );
    expect(stateTransitions(basisOf(trying), confirmed).map((t) => t.action)).toEqual([
      'device.state.trial-confirmed',
      'device.state.fallback-changed',
    ]);
  });

  it('names a rejection and a bootloader fallback with their cause', () => {
    const base = stateFromReport(report());
    const rejected = stateTransitions(
      basisOf(base),
      stateFromReport(
        report({ seq: 2, lastTrialResult: { snapshot: 'base-2', outcome: 'health-rejected', check: 'net' } }),
      ),
    );
    expect(rejected).toEqual([
      expect.objectContaining({ action: 'device.state.trial-rejected', reason: 'check net failed' }),
    ]);
    const fallback = stateTransitions(
      basisOf(base),
      stateFromReport(report({ seq: 2, lastTrialResult: { snapshot: 'base-2', outcome: 'bootloader-fallback' } })),
    );
    expect(fallback).toEqual([
      expect.objectContaining({ action: 'device.state.trial-fallback', reason: 'bootloader-fallback' }),
    ]);
  });
});
