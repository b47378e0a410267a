import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PredecessorFinder, versionlessName } from './predecessor-finder';

describe(PredecessorFinder.name, () => {
  let dir: string;
  let parent: string;
  let next: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'predecessor-'));
    parent = join(dir, 'parent');
    next = join(dir, 'new');
    for (const root of [parent, next]) await mkdir(join(root, 'usr/lib'), { recursive: true });
    await writeFile(join(parent, 'usr/lib/libzstd.so.1.5.4'), 'x'.repeat(1000));
    await writeFile(join(parent, 'usr/lib/libzstd.so.1.4.0'), 'x'.repeat(10));
    await writeFile(join(parent, 'usr/lib/libkept.so.2'), 'kept');
    await writeFile(join(next, 'usr/lib/libkept.so.2'), 'kept');
    await writeFile(join(parent, 'usr/lib/same'), 'old');
    await symlink('/etc/shadow', join(parent, 'usr/lib/link.so.1'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('masks digits, so versions of one file compare equal', () => {
    expect(versionlessName('libzstd.so.1.5.5')).toBe(versionlessName('libzstd.so.1.5.4'));
    expect(versionlessName('perl5.36.0')).toBe('perl#.#.#');
  });

  it('takes the same path, else the closest-sized versioned sibling the new release dropped', async () => {
    const finder = new PredecessorFinder(parent, next, 1 << 20);
    expect(await finder.find('usr/lib/same', 3)).toMatchObject({ path: 'usr/lib/same', size: 3 });
    expect(await finder.find('usr/lib/libzstd.so.1.5.5', 990)).toMatchObject({
      path: 'usr/lib/libzstd.so.1.5.4',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    // libkept.so.2 is still in the new release: not what libkept.so.3 replaced
    expect(await finder.find('usr/lib/libkept.so.3', 4)).toBeNull();
    // no symlinks, no orphan names, nothing above the cap
    expect(await finder.find('usr/lib/link.so.2', 4)).toBeNull();
    expect(await finder.find('o257-12-0', 4)).toBeNull();
    expect(await new PredecessorFinder(parent, next, 100).find('usr/lib/libzstd.so.1.5.5', 990)).toMatchObject({
      path: 'usr/lib/libzstd.so.1.4.0',
    });
  });
});
