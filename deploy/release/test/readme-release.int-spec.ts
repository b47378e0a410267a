import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(__dirname, '../../..');

/** The commands of the first ```sh block after `heading` in README.md, continuation lines joined. */
function readmeCommands(heading: string): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(`\n${heading}\n`));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error(`README.md: no sh block under ${heading}`);
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
}

const outOf = (command: string) => / --out (\S+)/.exec(command)?.[1];

/**
 * README "Building a release", as a new user runs it: `keygen --out keys/release` in a fresh checkout, where
 * keys/ does not exist (it failed with ENOENT), then builds that each need their own --out (the tool never
 * overwrites release.json). The keygen line runs exactly as written, in a fresh directory with the bundle
 * at dist/cowroot-release.js; the builds need root and a btrfs pool and run in cowroot-release.int-spec.ts.
 */
describe('README: Building a release', () => {
  const commands = readmeCommands('## Building a release');
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-readme-'));
    await run(process.execPath, [
      join(root, 'tools/bundle.mjs'),
      join(root, 'deploy/release/src/main.ts'),
      join(dir, 'dist/cowroot-release.js'),
      '--executable',
    ]);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs its keygen line in a fresh checkout (keys/ missing): a pair in keys/, the private key 0600', async () => {
    const keygen = commands.find((command) => command.includes(' keygen '));
    expect(keygen).toMatch(/^node dist\/cowroot-release\.js keygen --out keys\/release\b/);
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', keygen!], { cwd: dir });
    expect(stdout).toContain(join(dir, 'keys/release.key'));
    expect((await stat(join(dir, 'keys/release.key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'keys/release.pub'))).isFile()).toBe(true);
  });

  it('gives every build its own --out, and the API and CLI examples publish what the last one wrote', () => {
    const builds = commands.filter((command) => command.includes(' build '));
    expect(builds.length).toBeGreaterThanOrEqual(2);
    const outs = builds.map(outOf);
    expect(new Set(outs).size).toBe(builds.length);
    for (const build of builds) expect(build).toContain('--key keys/release.key');
    const last = outs[outs.length - 1]!.replace(/\/$/, '');
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme).toContain(`OUT=${last} `);
    expect(readme).toContain(`cowroot releases publish ${last}/`);
  });
});
