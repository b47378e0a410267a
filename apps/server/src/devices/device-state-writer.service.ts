import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DeviceStateMessage } from '@cowroot/protocol';
import { DataSource, EntityManager } from 'typeorm';
import { deviceActor } from '../auth/actor';
import { AuditCoalescer, CoalescePlan } from '../audit/audit-coalescer.service';
import { AuditEntryInput, AuditService } from '../audit/audit.service';
import { DeviceStatus } from './device.entity';
import {
  ReportedState,
  StateBasis,
  basisOf,
  judgeReport,
  stateFromReport,
  stateTransitions,
} from './device-state-rules';
import { GroupCommit } from './group-commit';

export type StateOutcome = 'applied' | 'stale' | 'unknown-device' | 'unstorable';

/** What happened to one report; `detail` says why the database refused an `unstorable` one. */
export interface StateWriteResult {
  outcome: StateOutcome;
  detail?: string;
}

interface PendingReport {
  deviceId: string;
  report: DeviceStateMessage;
  receivedAt: Date;
}

/** The columns read under the lock: what judgeReport and stateTransitions need (StateBasis), no more. */
interface StoredRow {
  id: string;
  status: DeviceStatus;
  agent_version: string | null;
  booted_snapshot: string | null;
  booted_release: string | null;
  trial_boot: boolean | null;
  fallback_snapshot: string | null;
  pending_trial: StateBasis['pendingTrial'];
  last_trial_result: StateBasis['lastTrialResult'];
  snapshot_ids: string[];
  health_status: StateBasis['healthStatus'];
  state_seq: number | null;
  state_sent_at: Date | null;
}

const toBasis = (row: StoredRow): StateBasis => ({
  agentVersion: row.agent_version,
  bootedSnapshot: row.booted_snapshot,
  bootedRelease: row.booted_release,
  trialBoot: row.trial_boot,
  fallbackSnapshot: row.fallback_snapshot,
  pendingTrial: row.pending_trial,
  lastTrialResult: row.last_trial_result,
  snapshotIds: row.snapshot_ids,
  healthStatus: row.health_status,
  stateSeq: row.state_seq,
  stateSentAt: row.state_sent_at,
});

/**
 * Writes state reports with group commit (GroupCommit): reports that arrive while a transaction is running
 * wait for the next one, so under load one transaction (one SELECT … FOR UPDATE, one UPDATE … FROM jsonb_to_recordset,
 * one audit INSERT) carries hundreds of reports, and when idle a report is written at once. submit()
 * resolves only after its transaction committed: the broker sends PUBACK after that, so a report the
 * device saw acknowledged is durable. One writer at a time keeps the reports of a device in arrival order.
 *
 * Isolation (docs/protocol.md §7.1): when a batch fails because of what a report contains, the batch is split
 * in halves and each half written again, down to the one report the database refuses on its own; that one
 * resolves `unstorable` (acknowledged and rejected), every other report of the batch is applied. A failure
 * that is not the data's fault (connection lost) fails the batch, and the devices resend.
 */
@Injectable()
export class DeviceStateWriter {
  private readonly batches = new GroupCommit<PendingReport, StateWriteResult>({
    logger: new Logger(DeviceStateWriter.name),
    noun: 'state report',
    label: (pending) => `deviceId=${pending.deviceId}`,
    write: async (batch) => {
      const { outcomes, plan } = await this.dataSource.transaction((manager) => this.write(manager, batch));
      plan.apply();
      return outcomes.map((outcome) => ({ outcome }));
    },
    refused: (_pending, error) => ({ outcome: 'unstorable', detail: `the database refused it: ${error.message}` }),
  });

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly coalescer: AuditCoalescer,
  ) {}

  submit(deviceId: string, report: DeviceStateMessage, receivedAt = new Date()): Promise<StateWriteResult> {
    return this.batches.submit({ deviceId, report, receivedAt });
  }

  /** Resolves when every submitted report has been written (or failed). */
  drain(): Promise<void> {
    return this.batches.drain();
  }

  private async write(
    manager: EntityManager,
    batch: PendingReport[],
  ): Promise<{ outcomes: StateOutcome[]; plan: CoalescePlan }> {
    const ids = [...new Set(batch.map((pending) => pending.deviceId))].sort();
    // ORDER BY id: every multi-row locker takes locks in the same order, so none deadlock
    const rows: StoredRow[] = await manager.query(
      `SELECT id, status, agent_version, booted_snapshot, booted_release, trial_boot, fallback_snapshot, pending_trial,
              last_trial_result, jsonb_path_query_array(snapshots, '$[*].id') AS snapshot_ids,
              health->>'status' AS health_status, state_seq, state_sent_at
         FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
      [ids],
    );
    const stored = new Map(rows.map((row) => [row.id, { status: row.status, basis: toBasis(row) }]));
    const updates = new Map<string, { state: ReportedState; receivedAt: Date }>();
    const audits: AuditEntryInput[] = [];
    const outcomes = batch.map((pending): StateOutcome => {
      const device = stored.get(pending.deviceId);
      if (!device || device.status !== DeviceStatus.Active) return 'unknown-device';
      // a later report of a device in the same batch is judged against the one before it
      const previous = updates.get(pending.deviceId);
      const current = previous ? basisOf(previous.state) : device.basis;
      const verdict = judgeReport(current, pending.report);
      if (verdict === 'stale') return 'stale';
      const next = stateFromReport(pending.report);
      const actor = deviceActor(pending.deviceId);
      for (const transition of stateTransitions(current, next)) {
        audits.push({ actor, subjectType: 'device', subjectId: pending.deviceId, ...transition });
      }
      updates.set(pending.deviceId, { state: next, receivedAt: pending.receivedAt });
      return 'applied';
    });
    if (updates.size > 0) {
      const values = [...updates].map(([id, { state, receivedAt }]) => ({
        id,
        agent_version: state.agentVersion,
        booted_snapshot: state.bootedSnapshot,
        booted_release: state.bootedRelease,
        trial_boot: state.trialBoot,
        fallback_snapshot: state.fallbackSnapshot,
        pending_trial: state.pendingTrial,
        last_trial_result: state.lastTrialResult,
        snapshots: state.snapshots,
        free_bytes: state.freeBytes,
        health: state.health,
        delta_formats: state.deltaFormats,
        state_seq: state.stateSeq,
        state_sent_at: state.stateSentAt,
        received_at: receivedAt,
      }));
      await manager.query(
        `UPDATE devices AS d SET
           agent_version = v.agent_version, booted_snapshot = v.booted_snapshot, booted_release = v.booted_release,
           trial_boot = v.trial_boot, fallback_snapshot = v.fallback_snapshot, pending_trial = v.pending_trial,
           last_trial_result = v.last_trial_result, snapshots = v.snapshots, free_bytes = v.free_bytes, health = v.health,
           delta_formats = v.delta_formats, state_seq = v.state_seq, state_sent_at = v.state_sent_at,
           state_received_at = v.received_at,
           last_seen_at = GREATEST(d.last_seen_at, v.received_at), updated_at = now()
         FROM jsonb_to_recordset($1::jsonb) AS v(
           id text, agent_version text, booted_snapshot text, booted_release text, trial_boot boolean,
           fallback_snapshot text, pending_trial jsonb, last_trial_result jsonb, snapshots jsonb, free_bytes bigint,
           health jsonb, delta_formats integer[], state_seq integer, state_sent_at timestamptz, received_at timestamptz)
         WHERE d.id = v.id`,
        [JSON.stringify(values)],
      );
    }
    // repeated transitions of one device are coalesced; the plan counts them once the batch commits
    const plan = this.coalescer.plan(audits);
    await this.audit.recordMany(plan.entries, manager);
    return { outcomes, plan };
  }
}
