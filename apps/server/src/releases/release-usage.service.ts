import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { CommandStatus, isTerminal } from '../devices/command-status';
import { DeviceStatus } from '../devices/device.entity';
import { ReleaseArtifact } from './release-artifact.entity';
import { Release } from './release.entity';

/** Something that still needs a release, so it must not be deleted. */
export interface ReleaseUsage {
  /** what kind of user: 'device', 'command', 'rollout', … */
  kind: string;
  id: string;
  detail: string;
}

/** Runs inside the delete transaction (the release row is locked FOR UPDATE). */
export type ReleaseUsageCheck = (release: Release, manager: EntityManager) => Promise<ReleaseUsage[]>;

const TERMINAL_COMMAND_STATUSES = Object.values(CommandStatus).filter(isTerminal);

/** Enough examples for an operator to act on; the refusal does not need the full list. */
const EXAMPLES_PER_CHECK = 20;

/**
 * Decides whether a release is still in use. Devices and their unfinished install commands are checked
 * here; features that own other users register their check with `register()` from their onModuleInit
 * (RolloutsService registers 'rollouts': refused while an unfinished rollout offers the release), so this
 * module never queries tables it does not own the shape of beyond devices/device_commands.
 */
@Injectable()
export class ReleaseUsageService {
  private readonly checks = new Map<string, ReleaseUsageCheck>([
    ['devices', (release, manager) => this.devicesRunning(release, manager)],
    ['commands', (release, manager) => this.commandsPending(release, manager)],
  ]);

  register(name: string, check: ReleaseUsageCheck): void {
    this.checks.set(name, check);
  }

  async findUsages(release: Release, manager: EntityManager): Promise<ReleaseUsage[]> {
    const usages: ReleaseUsage[] = [];
    for (const check of this.checks.values()) usages.push(...(await check(release, manager)));
    return usages;
  }

  /**
   * An active device uses a release when the snapshot it booted, its fallback or its pending trial was
   * received from it (received_uuid = the release's snapshot uuid in its reported inventory). Snapshots
   * merely kept in the inventory do not count: switching to a held snapshot needs no download.
   */
  private async devicesRunning(release: Release, manager: EntityManager): Promise<ReleaseUsage[]> {
    if (release.snapshotUuid === null) return [];
    const rows = (await manager.query(
      `SELECT d.id AS device_id, s->>'id' AS snapshot_id
         FROM devices d
         CROSS JOIN LATERAL jsonb_array_elements(d.snapshots) AS s
        WHERE d.status = '${DeviceStatus.Active}'
          AND s->>'receivedUuid' = $1
          AND s->>'id' IN (d.booted_snapshot, d.fallback_snapshot, d.pending_trial->>'snapshot')
        ORDER BY d.id
        LIMIT ${EXAMPLES_PER_CHECK}`,
      [release.snapshotUuid],
    )) as { device_id: string; snapshot_id: string }[];
    return rows.map((row) => ({
      kind: 'device',
      id: row.device_id,
      detail: `runs or falls back to snapshot ${row.snapshot_id}`,
    }));
  }

  /**
   * An install command not finished yet carries one of the release's manifests verbatim
   * (ArtifactUrlService.offerFor), so the device may still download that artifact.
   */
  private async commandsPending(release: Release, manager: EntityManager): Promise<ReleaseUsage[]> {
    const manifests = (
      await manager.find(ReleaseArtifact, { where: { releaseId: release.id }, select: { id: true, manifest: true } })
    ).map((artifact) => artifact.manifest.toString('base64'));
    if (manifests.length === 0) return [];
    const rows = (await manager.query(
      `SELECT c.id, c.device_id, c.status
         FROM device_commands c
        WHERE c.type = 'install'
          AND c.status <> ALL ($1::text[])
          AND c.payload->'artifact'->>'manifest' = ANY ($2::text[])
        ORDER BY c.created_at
        LIMIT ${EXAMPLES_PER_CHECK}`,
      [TERMINAL_COMMAND_STATUSES, manifests],
    )) as { id: string; device_id: string; status: string }[];
    return rows.map((row) => ({
      kind: 'command',
      id: row.id,
      detail: `install on device ${row.device_id} is ${row.status}`,
    }));
  }
}
