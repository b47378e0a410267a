import { PROTOCOL_VERSION } from '../index';

export const SNAPSHOT_UUID = '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';

/** A schema-valid state report (docs/protocol.md §5.1) for the protocol's own specs. */
export function deviceState(overrides: Record<string, unknown> = {}) {
  return {
    v: PROTOCOL_VERSION,
    seq: 3,
    sentAt: '2026-11-25T10:00:00.000Z',
    agentVersion: '0.1.0',
    bootedSnapshot: 'r-1.0.0',
    trialBoot: false,
    fallbackSnapshot: null,
    pendingTrial: null,
    lastTrialResult: null,
    snapshots: [
      {
        id: 'r-1.0.0',
        uuid: SNAPSHOT_UUID,
        receivedUuid: SNAPSHOT_UUID,
        parentUuid: null,
        readOnly: true,
        origin: 'received',
        release: { name: 'base', version: '1.0.0' },
        createdAt: '2026-11-25T09:00:00Z',
      },
    ],
    health: null,
    ...overrides,
  };
}
