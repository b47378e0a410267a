import { ATTR, CMD, command, fullStream, u64, uuidBytes } from '../../test/send-stream-builder';
import { CloneSourceScanner, checkReceiveDump, pathProblem } from './send-stream-check';

const OWN = '8e44ef7b-25e8-3f40-9b2f-6205404740b1';
const OTHER = '11111111-2222-3333-4444-555555555555';

// captured from btrfs-progs 6.2 `btrfs receive --dump` (columns as it pads them)
const DUMP = [
  'subvol          ./s                             uuid=8e44ef7b-25e8-3f40-9b2f-6205404740b1 transid=8',
  'chown           ./s/                            gid=0 uid=0',
  'mkfile          ./s/o257-7-0',
  'rename          ./s/o257-7-0                    dest=./s/a',
  'write           ./s/a                           offset=0 len=3',
  'clone           ./s/big2                        offset=0 len=100000 from=./s/big clone_offset=0',
  'symlink         ./s/o260-7-0                    dest=/etc/x',
  'utimes          ./s/                            atime=2026-12-01T22:45:11+0000 mtime=2026-12-01T22:45:11+0000',
].join('\n');

describe('checkReceiveDump', () => {
  it('accepts a btrfs send stream and names its subvolume and uuid; absolute symlink targets are fine', () => {
    expect(checkReceiveDump(DUMP)).toEqual({
      subvolume: { kind: 'full', name: 's', uuid: OWN, parentUuid: null },
      commands: 8,
    });
  });

  it('reads an incremental stream with its parent uuid', () => {
    const dump = `snapshot        ./s2                            uuid=${OWN} transid=9 parent_uuid=${OTHER} parent_transid=8\nunlink          ./s2/a\n`;
    expect(checkReceiveDump(dump).subvolume).toEqual({ kind: 'incremental', name: 's2', uuid: OWN, parentUuid: OTHER });
  });

  it.each([
    ['mkfile          ./s/../../etc/shadow', /climbs out with \.\./],
    ['mkfile          ./s//etc/shadow', /is an absolute path/],
    ['rename          ./s/x                           dest=./s/../y', /climbs out/],
    ['clone           ./s/x                           offset=0 len=1 from=./t/y clone_offset=0', /outside \.\/s/],
    [`subvol          ./t                             uuid=${OTHER} transid=1`, /more than one subvolume/],
  ])('refuses %s', (line, pattern) => {
    expect(() => checkReceiveDump(`${DUMP}\n${line}\n`)).toThrow(pattern);
  });

  it('refuses a dump that does not start with the subvolume', () => {
    expect(() => checkReceiveDump('mkfile ./s/a\n')).toThrow(/does not start with its subvolume/);
    expect(() => checkReceiveDump('')).toThrow(/no subvolume/);
  });
});

describe('pathProblem', () => {
  it('allows the subvolume itself and anything below it', () => {
    expect(pathProblem('./s', 's')).toBeNull();
    expect(pathProblem('./s/', 's')).toBeNull();
    expect(pathProblem('./s/usr/bin/x', 's')).toBeNull();
    expect(pathProblem('./so/x', 's')).toMatch(/outside/);
  });
});

describe(CloneSourceScanner.name, () => {
  const clone = (uuid: string) =>
    command(CMD.clone, [
      [ATTR.path, 'f'],
      [ATTR.fileOffset, u64(0)],
      [ATTR.cloneLen, u64(4096)],
      [ATTR.cloneUuid, uuidBytes(uuid)],
      [ATTR.cloneCtransid, u64(1)],
      [ATTR.clonePath, 'g'],
      [ATTR.cloneOffset, u64(0)],
    ]);

  it('collects the clone sources, whatever the chunking, and skips data commands by their length', () => {
    const stream = fullStream('s', OWN, [
      command(CMD.mkfile, [[ATTR.path, 'f']]),
      command(CMD.write, [
        [ATTR.path, 'g'],
        [ATTR.fileOffset, u64(0)],
        [ATTR.data, Buffer.alloc(3000, 0x14)], // bytes that look like CLONE command numbers
      ]),
      clone(OWN),
      clone(OTHER),
    ]);
    for (const size of [1, 7, 4096, stream.length]) {
      const scanner = new CloneSourceScanner();
      for (let at = 0; at < stream.length; at += size) scanner.push(stream.subarray(at, at + size));
      scanner.finish();
      expect([...scanner.cloneSources].sort()).toEqual([OTHER, OWN].sort());
    }
  });

  it('refuses what is not a send stream and a truncated one', () => {
    expect(() => new CloneSourceScanner().push(Buffer.from('not a btrfs stream at all'))).toThrow(
      /not a btrfs send stream/,
    );
    const stream = fullStream('s', OWN, [clone(OTHER)]);
    const scanner = new CloneSourceScanner();
    scanner.push(stream.subarray(0, stream.length - 20));
    expect(() => scanner.finish()).toThrow(/truncated/);
  });
});
