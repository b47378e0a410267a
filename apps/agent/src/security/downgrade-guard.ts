import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ArtifactManifest, ErrorCode } from '@cowroot/protocol';
import { DeviceError, writeFileAtomic } from '@cowroot/device';
import { AgentLogger } from '../logger';
import { SecurityRecord, downgradeDecision } from './downgrade-decision';

interface SecurityData {
  version: 1;
  /** the highest security version of a snapshot this device has booted as confirmed (never lowered) */
  floor: number;
  /** per snapshot id, from the signed manifest it was installed with (committed: from its origin) */
  snapshots: Record<string, SecurityRecord>;
}

const FILE_NAME = 'security.json';
const NONE: SecurityRecord = { securityVersion: 0 };

/** The security fields of a verified manifest. */
export function securityRecordOf(manifest: ArtifactManifest): SecurityRecord {
  return {
    securityVersion: manifest.securityVersion ?? 0,
    ...(manifest.allowRollbackFrom !== undefined ? { allowRollbackFrom: manifest.allowRollbackFrom } : {}),
  };
}

/**
 * Downgrade protection on the device (docs/agent.md §4.3): `<stateDir>/security.json` keeps the floor and
 * what each snapshot's signed manifest said. install and switch ask it before a trial is requested; the
 * floor rises when a snapshot boots as the confirmed one. A snapshot the device has no record of (factory,
 * installed before this existed) counts as security version 0.
 */
export class DowngradeGuard {
  private data: SecurityData = { version: 1, floor: 0, snapshots: {} };

  constructor(
    private readonly stateDir: string,
    private readonly logger: AgentLogger,
  ) {}

  private get path(): string {
    return join(this.stateDir, FILE_NAME);
  }

  get floor(): number {
    return this.data.floor;
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    try {
      const parsed = JSON.parse(text) as SecurityData;
      if (parsed.version !== 1 || !Number.isInteger(parsed.floor) || typeof parsed.snapshots !== 'object') {
        throw new Error('bad shape');
      }
      this.data = parsed;
    } catch {
      // written atomically, so only a human or a broken disk gets here; keep it for them
      const aside = `${this.path}.corrupt-${Date.now()}`;
      await rename(this.path, aside);
      this.logger.error('the downgrade floor was unreadable; kept aside, starting from floor 0', { file: aside });
    }
  }

  recordOf(snapshotId: string): SecurityRecord {
    return this.data.snapshots[snapshotId] ?? NONE;
  }

  /** Throws DOWNGRADE_REFUSED when `release` may not become the trial. */
  assertAllowed(what: string, release: SecurityRecord): void {
    const decision = downgradeDecision(this.data.floor, release);
    if (!decision.allowed) throw new DeviceError(ErrorCode.DowngradeRefused, `${what} refused: ${decision.reason}`);
    if (decision.by === 'rollback-allowance') {
      this.logger.warn('rollback below the floor permitted by a signed allowance', {
        target: what,
        floor: this.data.floor,
        securityVersion: release.securityVersion,
        allowRollbackFrom: release.allowRollbackFrom,
      });
    }
  }

  async remember(snapshotId: string, record: SecurityRecord): Promise<void> {
    this.data.snapshots[snapshotId] = record;
    await this.persist();
  }

  /** The booted, confirmed snapshot's security version becomes the floor when it is higher; records of gone snapshots go. */
  async settle(bootedConfirmed: string | null, existing: ReadonlySet<string>): Promise<void> {
    let changed = false;
    for (const id of Object.keys(this.data.snapshots)) {
      if (!existing.has(id)) {
        delete this.data.snapshots[id];
        changed = true;
      }
    }
    const version = bootedConfirmed ? this.recordOf(bootedConfirmed).securityVersion : 0;
    if (version > this.data.floor) {
      this.logger.info('downgrade floor raised', { from: this.data.floor, to: version, snapshot: bootedConfirmed });
      this.data.floor = version;
      changed = true;
    }
    if (changed) await this.persist();
  }

  private async persist(): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(this.data, null, 2)}\n`);
  }
}
