import { deviceActor } from '../auth/actor';
import { TAKEOVER_ACTION } from '../audit/audit-coalescer.service';
import { AuditEntryInput } from '../audit/audit.service';
import { DeviceStatus } from './device.entity';

/** One presence write: an online/offline transition request, or a session takeover to audit. */
export type PresenceWrite =
  | {
      kind: 'set';
      deviceId: string;
      online: boolean;
      reason: string;
      at: Date;
      /** a new connection: last_connected_at becomes `at` */
      connected: boolean;
      /** markOffline: the start of the connection that ended (null: whichever) */
      connectedAt: Date | null;
    }
  | { kind: 'takeover'; deviceId: string; at: Date };

/** The presence columns of a locked devices row. */
export interface PresenceRow {
  id: string;
  status: DeviceStatus;
  online: boolean;
  session_broker: string | null;
  last_connected_at: Date | null;
}

/** What one batch writes: the final presence of each device it changed, and its audit entries in order. */
export interface PresencePlan {
  updates: Array<{
    id: string;
    online: boolean;
    session_broker: string | null;
    /** null: unchanged */
    last_connected_at: string | null;
    /** the latest `at` applied: last_seen_at moves to it if later */
    seen_at: string;
  }>;
  audits: AuditEntryInput[];
}

/**
 * Applies a batch of presence writes, in order, to the locked rows, with the rules each write had as its
 * own UPDATE: decommissioned and unknown devices stay as they are; only the instance holding the session
 * (or none) takes a device offline; an offline naming the connection it ended is ignored when a later
 * connect was already recorded; only real transitions are audited. Throws RangeError on an invalid date
 * (a data fault: the batch is split and that write refused alone).
 */
export function planPresence(rows: PresenceRow[], writes: PresenceWrite[], brokerId: string): PresencePlan {
  const current = new Map(rows.map((row) => [row.id, { ...row }]));
  const changed = new Map<string, { connected: string | null; seen: number }>();
  const audits: AuditEntryInput[] = [];
  for (const write of writes) {
    const iso = write.at.toISOString();
    if (write.kind === 'takeover') {
      audits.push({
        actor: deviceActor(write.deviceId),
        action: TAKEOVER_ACTION,
        subjectType: 'device',
        subjectId: write.deviceId,
        after: { at: iso },
        reason: 'a new MQTT connection with this client id replaced the live session',
      });
      continue;
    }
    const device = current.get(write.deviceId);
    if (!device || device.status !== DeviceStatus.Active) continue;
    if (!write.online) {
      if (device.session_broker !== null && device.session_broker !== brokerId) continue;
      const ended = write.connectedAt?.toISOString();
      if (ended && device.last_connected_at && device.last_connected_at.getTime() > Date.parse(ended)) continue;
    }
    const wasOnline = device.online;
    device.online = write.online;
    device.session_broker = write.online ? brokerId : null;
    const change = changed.get(device.id) ?? { connected: null, seen: -Infinity };
    if (write.connected) {
      device.last_connected_at = write.at;
      change.connected = iso;
    }
    change.seen = Math.max(change.seen, write.at.getTime());
    changed.set(device.id, change);
    if (wasOnline === write.online) continue;
    audits.push({
      actor: deviceActor(write.deviceId),
      action: write.online ? 'device.state.online' : 'device.state.offline',
      subjectType: 'device',
      subjectId: write.deviceId,
      before: { online: wasOnline },
      after: { online: write.online },
      reason: write.reason,
    });
  }
  const updates = [...changed].map(([id, change]) => {
    const device = current.get(id)!;
    return {
      id,
      online: device.online,
      session_broker: device.session_broker,
      last_connected_at: change.connected,
      seen_at: new Date(change.seen).toISOString(),
    };
  });
  return { updates, audits };
}
