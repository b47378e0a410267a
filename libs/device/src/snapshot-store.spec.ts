import { btrfsTimeToIso } from './snapshot-store';

describe(btrfsTimeToIso.name, () => {
  it('turns btrfs subvolume show times into ISO 8601 UTC', () => {
    expect(btrfsTimeToIso('2026-11-26 00:43:19 +0000')).toBe('2026-11-26T00:43:19.000Z');
    expect(btrfsTimeToIso('2026-11-26 02:43:19 +0200')).toBe('2026-11-26T00:43:19.000Z');
    expect(btrfsTimeToIso('-')).toBeNull();
    expect(btrfsTimeToIso('yesterday')).toBeNull();
  });
});
