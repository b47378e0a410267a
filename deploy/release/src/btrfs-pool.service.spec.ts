import { BtrfsPool, parseSubvolumeList, parseSubvolumeShow } from './btrfs-pool.service';

// Output of btrfs-progs v6.2 on this project's build host
const SHOW = `releases/demo-1.1
\tName: \t\t\tdemo-1.1
\tUUID: \t\t\tb5cb5515-595e-af4c-96aa-40251a400c45
\tParent UUID: \t\t631081ec-8165-e744-8311-5d7e75d2b05d
\tReceived UUID: \t\t-
\tCreation time: \t\t2026-11-26 00:44:57 +0000
\tSubvolume ID: \t\t257
\tFlags: \t\t\treadonly
\tSnapshot(s):
`;

const LIST = `ID 256 gen 7 top level 5 parent_uuid -                                    uuid 631081ec-8165-e744-8311-5d7e75d2b05d path releases/demo-1.0
ID 257 gen 7 top level 5 parent_uuid 631081ec-8165-e744-8311-5d7e75d2b05d uuid b5cb5515-595e-af4c-96aa-40251a400c45 path releases/demo-1.1
`;

describe(BtrfsPool.name, () => {
  describe('parseSubvolumeShow', () => {
    it('reads uuid, parent, received uuid and the read-only flag', () => {
      expect(parseSubvolumeShow('/pool/releases/demo-1.1', SHOW)).toEqual({
        path: '/pool/releases/demo-1.1',
        uuid: 'b5cb5515-595e-af4c-96aa-40251a400c45',
        parentUuid: '631081ec-8165-e744-8311-5d7e75d2b05d',
        receivedUuid: null,
        readOnly: true,
      });
    });

    it('sees a writable subvolume and a received one', () => {
      const received = SHOW.replace(
        /Received UUID: \t\t-/,
        'Received UUID: \t\t11111111-2222-3333-4444-555555555555',
      ).replace('readonly', '-');
      expect(parseSubvolumeShow('p', received)).toMatchObject({
        receivedUuid: '11111111-2222-3333-4444-555555555555',
        readOnly: false,
      });
    });

    it('refuses output without a UUID', () => {
      expect(() => parseSubvolumeShow('p', 'ERROR: not a subvolume')).toThrow(/printed no UUID/);
    });
  });

  describe('parseSubvolumeList', () => {
    it('links every subvolume to its parent, not confusing parent_uuid with uuid', () => {
      expect(parseSubvolumeList(LIST)).toEqual([
        { uuid: '631081ec-8165-e744-8311-5d7e75d2b05d', parentUuid: null },
        { uuid: 'b5cb5515-595e-af4c-96aa-40251a400c45', parentUuid: '631081ec-8165-e744-8311-5d7e75d2b05d' },
      ]);
    });

    it('also reads the -R form with received_uuid between them', () => {
      const line =
        'ID 258 gen 9 top level 5 parent_uuid - received_uuid 631081ec-8165-e744-8311-5d7e75d2b05d uuid aaaaaaaa-8165-e744-8311-5d7e75d2b05d path x';
      expect(parseSubvolumeList(line)).toEqual([{ uuid: 'aaaaaaaa-8165-e744-8311-5d7e75d2b05d', parentUuid: null }]);
    });
  });
});
