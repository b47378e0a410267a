import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's chromium (deploy/scripts/install-system-deps.sh), driven over CDP by playwright-core. */
export const CHROMIUM = '/usr/bin/chromium';
export const ROOT = resolve(__dirname, '../../../../..');
export const WEB_DIST = join(ROOT, 'dist/apps/web');

/** `npm run build:web` exactly as the server build runs it, so the test serves what `npm start` serves. */
export async function buildWeb(): Promise<void> {
  await promisify(execFile)('npm', ['run', 'build:web'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  if (!existsSync(join(WEB_DIST, 'index.html'))) throw new Error(`npm run build:web wrote no ${WEB_DIST}/index.html`);
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A headless chromium with a fresh profile (so no state leaks between runs), removed again on close. */
export async function launchChromium(viewport = { width: 1280, height: 800 }): Promise<Browser> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'cowroot-chromium-'));
  // playwright passes the profile as --user-data-dir itself (launchPersistentContext); headless: --headless
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    acceptDownloads: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
