import type { HealthReport, LastTrialResult, PendingTrial, SnapshotInfo } from '@cowroot/protocol';

// The server's response shapes the CLI reads (apps/server/src/*/dto). Type-only: nothing of the server
// is bundled into the CLI.

export interface DeviceView {
  id: string;
  tags: string[];
  status: string;
  online: boolean;
  lastSeenAt: string | null;
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
  provisionedBy: string;
  createdAt: string;
  decommissionedAt?: string | null;
  decommissionReason?: string | null;
}

export interface ProvisionedDeviceView {
  device: DeviceView;
  credential: string;
}

export interface BulkProvisionView {
  created: number;
  devices: { id: string; credential?: string }[];
}

export interface ReleaseView {
  id: string;
  name: string;
  version: string;
  description: string | null;
  snapshotUuid: string | null;
  createdByName: string;
  createdAt: string;
}

export interface ArtifactView {
  file: string;
  kind: string;
  size: number;
  sha256: string;
  compression: string;
  snapshotUuid: string;
  parent: { name: string; version: string; snapshotUuid: string } | null;
  signingKeyId: string;
  createdAt: string;
  url: string;
}

/** GET /api/v1/release-bases/{name}: the releases of a name the (tag-selected) devices hold */
export interface ReleaseBasesView {
  name: string;
  bases: { version: string; devices: number }[];
}

export interface ReleaseWithArtifactsView extends ReleaseView {
  artifacts: ArtifactView[];
}

export interface UploadStatusView {
  offset: number;
  size: number;
}

export interface AuditEntryView {
  id: string;
  at: string;
  actorType: string;
  actorId: string;
  actorName: string;
  action: string;
  subjectType: string;
  subjectId: string;
  before: unknown;
  after: unknown;
  reason: string | null;
  correlationId: string | null;
}
