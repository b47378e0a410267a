import {
  DeviceStateMessage,
  HealthReport,
  LastTrialResult,
  PendingTrial,
  SnapshotInfo,
  TrialOutcome,
  TrialState,
} from '@cowroot/protocol';

/** The state columns of a device row, as the state writer reads and writes them. */
export interface ReportedState {
  agentVersion: string | null;
  bootedSnapshot: string | null;
  bootedRelease: string | null;
  trialBoot: boolean | null;
  fallbackSnapshot: string | null;
  pendingTrial: PendingTrial | null;
  lastTrialResult: LastTrialResult | null;
  snapshots: SnapshotInfo[];
  freeBytes: number | null;
  health: HealthReport | null;
  /** null: the agent never listed them (older than the field), not "reads none" */
  deltaFormats: number[] | null;
  stateSeq: number | null;
  stateSentAt: Date | null;
}

/**
 * What judgeReport and stateTransitions read of a device's state before a report: the stored row's (the
 * state writer reads only these columns under its lock: the snapshots' ids and the health's status, not
 * the whole lists), or the state a previous report of the same batch left (basisOf).
 */
export type StateBasis = Pick<
  ReportedState,
  | 'agentVersion'
  | 'bootedSnapshot'
  | 'bootedRelease'
  | 'trialBoot'
  | 'fallbackSnapshot'
  | 'pendingTrial'
  | 'lastTrialResult'
  | 'stateSeq'
  | 'stateSentAt'
> & {
  snapshotIds: string[];
  healthStatus: HealthReport['status'] | null;
};

/** The basis the next report of a device is judged against once `state` is applied. */
export function basisOf(state: ReportedState): StateBasis {
  return {
    agentVersion: state.agentVersion,
    bootedSnapshot: state.bootedSnapshot,
    bootedRelease: state.bootedRelease,
    trialBoot: state.trialBoot,
    fallbackSnapshot: state.fallbackSnapshot,
    pendingTrial: state.pendingTrial,
    lastTrialResult: state.lastTrialResult,
    snapshotIds: state.snapshots.map((snapshot) => snapshot.id),
    healthStatus: state.health?.status ?? null,
    stateSeq: state.stateSeq,
    stateSentAt: state.stateSentAt,
  };
}

export type ReportVerdict = 'newer' | 'new-agent-run' | 'stale';

/**
 * Orders state reports (docs/protocol.md §5.1). `seq` grows with every report of one agent run and starts
 * again at 0 when the agent restarts; the protocol carries no run id, so a restart is recognised by the
 * clock: a report whose seq is not higher than the stored one but whose sentAt is later comes from a new
 * run. A report with both a lower-or-equal seq and a sentAt no later than the stored one is a redelivery
 * or overtaken report and is dropped. Caveat: a device whose clock goes backwards across an agent restart
 * has its reports dropped until its seq passes the stored one (the agent needs a sane clock for TLS anyway).
 */
export function judgeReport(
  stored: { stateSeq: number | null; stateSentAt: Date | null },
  report: { seq: number; sentAt: string },
): ReportVerdict {
  if (stored.stateSeq === null || stored.stateSentAt === null) return 'newer';
  if (report.seq > stored.stateSeq) return 'newer';
  return Date.parse(report.sentAt) > stored.stateSentAt.getTime() ? 'new-agent-run' : 'stale';
}

/** `name@version` of the release the booted snapshot came from, null when unknown or committed locally. */
export function bootedReleaseOf(report: Pick<DeviceStateMessage, 'bootedSnapshot' | 'snapshots'>): string | null {
  const booted = report.snapshots.find((snapshot) => snapshot.id === report.bootedSnapshot);
  return booted?.release ? `${booted.release.name}@${booted.release.version}` : null;
}

/**
 * The state columns after applying an accepted report. The report's objects are taken as they are, not
 * copied: the writer only serialises them (JSON.stringify reads a validated message's instances as it
 * reads the plain objects of the validation plan) and compares them by their JSON (stateTransitions).
 */
export function stateFromReport(report: DeviceStateMessage): ReportedState {
  return {
    agentVersion: report.agentVersion,
    bootedSnapshot: report.bootedSnapshot,
    bootedRelease: bootedReleaseOf(report),
    trialBoot: report.trialBoot,
    fallbackSnapshot: report.fallbackSnapshot ?? null,
    pendingTrial: report.pendingTrial ?? null,
    lastTrialResult: report.lastTrialResult ?? null,
    snapshots: report.snapshots,
    freeBytes: report.freeBytes ?? null,
    health: report.health ?? null,
    deltaFormats: report.deltaFormats ? [...report.deltaFormats] : null,
    stateSeq: report.seq,
    stateSentAt: new Date(report.sentAt),
  };
}

/** One device state transition worth an audit row (action names: `device.state.<kind>`). */
export interface StateTransition {
  action: string;
  before: unknown;
  after: unknown;
  reason?: string;
}

const TRIAL_ACTION: Record<TrialOutcome, string> = {
  [TrialOutcome.Accepted]: 'device.state.trial-confirmed',
  [TrialOutcome.HealthRejected]: 'device.state.trial-rejected',
  [TrialOutcome.BootloaderFallback]: 'device.state.trial-fallback',
  [TrialOutcome.KernelLoadFailed]: 'device.state.trial-fallback',
};

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * What changed between two stored states, in the order an operator would tell the story. Reports that only
 * refresh free bytes or health timestamps produce nothing, so the audit log records transitions, not traffic.
 */
export function stateTransitions(before: StateBasis, after: ReportedState): StateTransition[] {
  const transitions: StateTransition[] = [];
  if (before.agentVersion !== after.agentVersion) {
    transitions.push({
      action: 'device.state.agent-version-changed',
      before: before.agentVersion,
      after: after.agentVersion,
    });
  }
  if (before.bootedSnapshot !== after.bootedSnapshot || before.bootedRelease !== after.bootedRelease) {
    transitions.push({
      action: 'device.state.booted-changed',
      before: { snapshot: before.bootedSnapshot, release: before.bootedRelease },
      after: { snapshot: after.bootedSnapshot, release: after.bootedRelease, trialBoot: after.trialBoot },
    });
  }
  const requested = after.pendingTrial;
  if (
    requested &&
    requested.state === TrialState.Requested &&
    !(before.pendingTrial?.snapshot === requested.snapshot && before.pendingTrial.state === TrialState.Requested)
  ) {
    transitions.push({ action: 'device.state.trial-requested', before: before.pendingTrial, after: requested });
  }
  if (after.trialBoot && !before.trialBoot) {
    transitions.push({
      action: 'device.state.trial-booted',
      before: { snapshot: before.bootedSnapshot },
      after: { snapshot: after.bootedSnapshot },
    });
  }
  const result = after.lastTrialResult;
  if (result && !sameJson(before.lastTrialResult, result)) {
    transitions.push({
      action: TRIAL_ACTION[result.outcome],
      before: before.lastTrialResult,
      after: result,
      reason: result.check
        ? `check ${result.check} failed`
        : result.outcome === TrialOutcome.Accepted
          ? undefined
          : result.outcome,
    });
  }
  if (before.fallbackSnapshot !== after.fallbackSnapshot) {
    transitions.push({
      action: 'device.state.fallback-changed',
      before: before.fallbackSnapshot,
      after: after.fallbackSnapshot,
    });
  }
  const beforeIds = [...before.snapshotIds].sort();
  const afterIds = after.snapshots.map((snapshot) => snapshot.id).sort();
  if (!sameJson(beforeIds, afterIds)) {
    transitions.push({ action: 'device.state.snapshots-changed', before: beforeIds, after: afterIds });
  }
  if (before.healthStatus !== (after.health?.status ?? null)) {
    transitions.push({
      action: 'device.state.health-changed',
      before: before.healthStatus,
      after: after.health
        ? { status: after.health.status, failed: after.health.checks.filter((c) => !c.passed).map((c) => c.name) }
        : null,
    });
  }
  return transitions;
}
