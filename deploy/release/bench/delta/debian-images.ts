import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where the Debian images are kept between runs (docs/release-tool.md "Benchmark"). */
export const CACHE_ROOT = process.env.COWROOT_DELTA_CACHE ?? '/var/cache/cowroot/delta';
const MIRROR = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const SECURITY = process.env.DEBIAN_SECURITY_MIRROR ?? 'http://deb.debian.org/debian-security';
/** mmdebstrap honours it: the same packages give the same tar, so the two images differ by their packages. */
const SOURCE_DATE_EPOCH = '1700000000';

export interface DebianImages {
  base: string;
  updated: string;
  /** packages whose version differs: name old → new */
  upgrades: string[];
  cached: boolean;
}

function mmdebstrap(out: string, sources: string[]): void {
  execFileSync('mmdebstrap', ['--quiet', '--variant=minbase', '--format=tar', 'bookworm', out, ...sources], {
    env: { ...process.env, SOURCE_DATE_EPOCH },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** `name version` of every package in an image tar (its dpkg status). */
function versions(tar: string): Map<string, string> {
  const status = execFileSync('tar', ['-xOf', tar, './var/lib/dpkg/status'], {
    maxBuffer: 64 * 1024 * 1024,
  }).toString();
  const map = new Map<string, string>();
  for (const block of status.split('\n\n')) {
    const name = /^Package: (.+)$/m.exec(block)?.[1];
    const version = /^Version: (.+)$/m.exec(block)?.[1];
    if (name && version) map.set(name, version);
  }
  return map;
}

/**
 * bookworm minbase from the Debian archive (bookworm main only), and the same with the upgrades
 * bookworm-updates and bookworm-security hold today, as tars. Cached under CACHE_ROOT/<UTC date>: the
 * upgrades of a day do not change within it; the package versions are written next to the tars.
 */
export async function debianImages(log: (line: string) => void): Promise<DebianImages> {
  const day = new Date().toISOString().slice(0, 10);
  const dir = join(CACHE_ROOT, `bookworm-minbase-${day}`);
  const base = join(dir, 'base.tar');
  const updated = join(dir, 'updated.tar');
  const cached = existsSync(base) && existsSync(updated);
  if (!cached) {
    await mkdir(dir, { recursive: true });
    log(`building bookworm minbase from ${MIRROR} into ${dir} (cached for the day)`);
    if (!existsSync(base)) {
      mmdebstrap(`${base}.part`, [`deb ${MIRROR} bookworm main`]);
      await rename(`${base}.part`, base);
    }
    mmdebstrap(`${updated}.part`, [
      `deb ${MIRROR} bookworm main`,
      `deb ${MIRROR} bookworm-updates main`,
      `deb ${SECURITY} bookworm-security main`,
    ]);
    await rename(`${updated}.part`, updated);
  }
  const before = versions(base);
  const after = versions(updated);
  const upgrades = [...after]
    .filter(([name, version]) => before.get(name) !== version)
    .map(([name, version]) => `${name} ${before.get(name) ?? '(new)'} → ${version}`);
  await writeFile(join(dir, 'upgrades.txt'), `${upgrades.join('\n')}\n`);
  return {
    base,
    updated,
    upgrades: (await readFile(join(dir, 'upgrades.txt'), 'utf8')).trim().split('\n').filter(Boolean),
    cached,
  };
}
