import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseBoardProfile, placePartitions } from './board-profile';
import { renderSfdiskScript } from './disk-layout';
import type { BoardProfileJson } from '../../test/image-inspection';

const boards = resolve(__dirname, '../../boards');
const MiB = 1024 * 1024;

function shipped(name: string): BoardProfileJson {
  return JSON.parse(readFileSync(join(boards, name), 'utf8')) as BoardProfileJson;
}

function problemsOf(plain: unknown): string {
  try {
    parseBoardProfile(plain, '/boards/test.json');
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the profile was accepted');
}

describe('parseBoardProfile', () => {
  it('accepts the shipped profiles and places the pool up to the end of the disk', () => {
    const x86 = parseBoardProfile(shipped('qemu-x86-vdev.json'), join(boards, 'qemu-x86-vdev.json'));
    expect(x86.arch).toBe('x86');
    expect(x86.boot).toMatchObject({ number: 1, offset: 1 * MiB, size: 32 * MiB });
    expect(x86.pool).toMatchObject({ number: 2, offset: 33 * MiB, size: 991 * MiB });
    expect(x86.bootScript).toBe(resolve(boards, '../../../uboot/boot.cmd'));
    const arm64 = parseBoardProfile(shipped('qemu-arm64-virt.json'), join(boards, 'qemu-arm64-virt.json'));
    expect(arm64.arch).toBe('arm64');
    expect(arm64.env.variables.cowroot_boot).toMatch(/^bootm /);
  });

  it('lists every problem of a broken profile in one message', () => {
    const profile = shipped('qemu-x86-vdev.json');
    profile.arch = 'sparc';
    profile.env.variables = { cowroot_current: 'x' };
    profile.extra = true;
    const message = problemsOf(profile);
    expect(message).toMatch(/arch must be one of/);
    expect(message).toMatch(/property extra should not exist/);
  });

  it('refuses partitions past the disk, a missing pool, and the factory snapshot set by the profile', () => {
    const profile = shipped('qemu-x86-vdev.json');
    profile.partitions = [
      { role: 'boot', type: 'c', sizeMiB: 2000 },
      { role: 'raw', type: 'da' },
    ];
    profile.env.variables.cowroot_current = 'base-1.0';
    const message = problemsOf(profile);
    expect(message).toMatch(/partitions\[0\] \(boot\) ends at 2001 MiB, past the 1024 MiB disk/);
    expect(message).toMatch(/exactly one pool partition is needed \(found 0\)/);
    expect(message).toMatch(/cowroot_current: set by the image/);
  });

  it('refuses a raw env that overlaps a partition or whose copies overlap', () => {
    const profile = shipped('qemu-x86-vdev.json');
    profile.env = {
      kind: 'raw',
      sizeBytes: 0x4000,
      offsets: [1 * MiB, 1 * MiB + 0x2000],
      linuxDevice: '/dev/mmcblk0',
      variables: profile.env.variables,
    };
    const message = problemsOf(profile);
    expect(message).toMatch(/env\.offsets\[0\]: 0x100000 overlaps partition 1/);
    expect(message).toMatch(/the two copies overlap/);
  });

  it('needs the FAT file names and where Linux mounts them', () => {
    const profile = shipped('qemu-x86-vdev.json');
    delete profile.env.files;
    delete profile.env.linuxMountPoint;
    const message = problemsOf(profile);
    expect(message).toMatch(/env\.files: a FAT env needs its two file names/);
    expect(message).toMatch(/env\.linuxMountPoint/);
  });
});

describe('renderSfdiskScript', () => {
  it('writes the placed partitions in sectors, the boot partition bootable on MBR', () => {
    const profile = parseBoardProfile(shipped('qemu-x86-vdev.json'), join(boards, 'qemu-x86-vdev.json'));
    expect(renderSfdiskScript(profile)).toBe(
      'label: dos\nunit: sectors\nstart=2048, size=65536, type=c, bootable\nstart=67584, size=2029568, type=83\n',
    );
  });

  it('leaves the GPT backup header room at the end of the disk', () => {
    const profile = shipped('qemu-x86-vdev.json');
    profile.disk.table = 'gpt';
    const problems: string[] = [];
    const placed = placePartitions(profile as never, problems);
    expect(problems).toEqual([]);
    const last = placed[placed.length - 1];
    expect(last.offset + last.size).toBeLessThanOrEqual(1024 * MiB - 33 * 512);
  });
});
