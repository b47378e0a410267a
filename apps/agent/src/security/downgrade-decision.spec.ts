import { downgradeDecision } from './downgrade-decision';

describe(downgradeDecision.name, () => {
  it('allows a release at or above the floor', () => {
    expect(downgradeDecision(0, { securityVersion: 0 })).toEqual({ allowed: true, by: 'not-below-floor' });
    expect(downgradeDecision(5, { securityVersion: 5 })).toEqual({ allowed: true, by: 'not-below-floor' });
    expect(downgradeDecision(5, { securityVersion: 9 })).toEqual({ allowed: true, by: 'not-below-floor' });
  });

  it('refuses a release below the floor without an allowance', () => {
    expect(downgradeDecision(5, { securityVersion: 4 })).toEqual({
      allowed: false,
      reason: "security version 4 is below the device's floor 5 and carries no rollback allowance",
    });
  });

  it('allows a rollback only to floors the signed allowance covers', () => {
    expect(downgradeDecision(5, { securityVersion: 3, allowRollbackFrom: 5 })).toEqual({
      allowed: true,
      by: 'rollback-allowance',
    });
    // a later security fix raised the floor past the allowance: the old allowance no longer opens the door
    expect(downgradeDecision(6, { securityVersion: 3, allowRollbackFrom: 5 })).toEqual({
      allowed: false,
      reason: "security version 3 is below the device's floor 6 and its rollback allowance only covers floors up to 5",
    });
  });
});
