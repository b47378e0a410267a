import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFreeBytes, parseReceivedName, parseSubvolumeList, parseSubvolumeShow } from './btrfs-output.parser';

// captured from btrfs-progs 6.2 on a loop-mounted test filesystem
const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name), 'utf8');

describe('btrfs output parsers', () => {
  describe(parseSubvolumeList.name, () => {
    it('reads ids, uuids and paths, with "-" as null and spaces kept in paths', () => {
      const entries = parseSubvolumeList(fixture('btrfs-subvolume-list.txt'));
      expect(entries).toHaveLength(6);
      expect(entries[0]).toEqual({
        id: 256,
        generation: 19,
        topLevel: 5,
        path: 'workspace',
        uuid: '84ff848f-3cc0-1343-b782-70fb20bbd85c',
        parentUuid: null,
        receivedUuid: null,
      });
      expect(entries[1]).toMatchObject({
        id: 260,
        path: 'staging/s2',
        parentUuid: '701e8c2e-aa58-d444-97d7-d24468fbf1b0',
        receivedUuid: 'b2cbde6d-7db4-0947-9a90-e4e6c55613ac',
        uuid: 'a9544b94-c63e-f74b-8fdd-cbb22e4b3520',
      });
      expect(entries[5].path).toBe('snapshots/with space/sub vol');
    });

    it('reads the read-only listing and an empty one', () => {
      expect(parseSubvolumeList(fixture('btrfs-subvolume-list-ro.txt')).map((e) => e.id)).toEqual([260, 262, 263]);
      expect(parseSubvolumeList('')).toEqual([]);
    });

    it('refuses output it does not understand instead of guessing', () => {
      expect(() => parseSubvolumeList('ID 5 something else\n')).toThrow(/unexpected line/);
    });
  });

  describe(parseSubvolumeShow.name, () => {
    it('reads a received read-only subvolume', () => {
      expect(parseSubvolumeShow(fixture('btrfs-subvolume-show-received.txt'))).toEqual({
        name: 's2',
        id: 260,
        uuid: 'a9544b94-c63e-f74b-8fdd-cbb22e4b3520',
        parentUuid: '701e8c2e-aa58-d444-97d7-d24468fbf1b0',
        receivedUuid: 'b2cbde6d-7db4-0947-9a90-e4e6c55613ac',
        readOnly: true,
        creationTime: '2026-11-26 00:43:19 +0000',
      });
    });

    it('reads a plain rw subvolume', () => {
      expect(parseSubvolumeShow(fixture('btrfs-subvolume-show-rw.txt'))).toMatchObject({
        name: 'workspace',
        id: 256,
        parentUuid: null,
        receivedUuid: null,
        readOnly: false,
      });
    });
  });

  it('reads the estimated free bytes', () => {
    expect(parseFreeBytes(fixture('btrfs-filesystem-usage.txt'))).toBe(452984832);
    expect(() => parseFreeBytes('Overall:\n')).toThrow(/Free/);
  });

  it('finds the name btrfs receive gave the new subvolume', () => {
    expect(parseReceivedName('At subvol s1\n')).toBe('s1');
    expect(parseReceivedName('At snapshot rel-2.0\n')).toBe('rel-2.0');
    expect(parseReceivedName('ERROR: unexpected EOF in stream\n')).toBeNull();
  });
});
