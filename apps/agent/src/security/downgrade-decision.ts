/** What the device knows of a snapshot's release for downgrade protection (from its signed manifest). */
export interface SecurityRecord {
  securityVersion: number;
  /** the signed rollback allowance: devices with a floor up to this value may take the release */
  allowRollbackFrom?: number;
}

export type DowngradeDecision =
  { allowed: true; by: 'not-below-floor' | 'rollback-allowance' } | { allowed: false; reason: string };

/**
 * Whether a release may become the device's trial (docs/agent.md §4.3), as a pure function: at or above the
 * floor (the highest security version the device has accepted), or below it with a signed allowance that
 * covers this floor. A compromised server can replay old signed releases; it cannot sign an allowance.
 */
export function downgradeDecision(floor: number, release: SecurityRecord): DowngradeDecision {
  if (release.securityVersion >= floor) return { allowed: true, by: 'not-below-floor' };
  if (release.allowRollbackFrom !== undefined && floor <= release.allowRollbackFrom) {
    return { allowed: true, by: 'rollback-allowance' };
  }
  const allowance =
    release.allowRollbackFrom === undefined
      ? 'and carries no rollback allowance'
      : `and its rollback allowance only covers floors up to ${release.allowRollbackFrom}`;
  return {
    allowed: false,
    reason: `security version ${release.securityVersion} is below the device's floor ${floor} ${allowance}`,
  };
}
