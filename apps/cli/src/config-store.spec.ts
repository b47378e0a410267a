import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './cli-error';
import { ConfigStore, normaliseServerUrl } from './config-store';
import { ExitCode } from './exit-codes';

describe(ConfigStore.name, () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cowroot-cli-config-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds the file through COWROOT_CONFIG, XDG_CONFIG_HOME, then HOME', () => {
    expect(ConfigStore.pathFor({ COWROOT_CONFIG: '/x/c.json', HOME: '/home/a' })).toBe('/x/c.json');
    expect(ConfigStore.pathFor({ XDG_CONFIG_HOME: '/xdg', HOME: '/home/a' })).toBe('/xdg/cowroot/config.json');
    expect(ConfigStore.pathFor({ HOME: '/home/a' })).toBe('/home/a/.config/cowroot/config.json');
    expect(() => ConfigStore.pathFor({})).toThrow(CliError);
  });

  it('writes the token mode 0600 in a 0700 directory, and reads it back', async () => {
    const store = new ConfigStore({ XDG_CONFIG_HOME: join(dir, 'xdg') });
    await store.write({ server: 'http://127.0.0.1:3000', token: 'secret-token' });
    expect((await stat(store.path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'xdg', 'cowroot'))).mode & 0o777).toBe(0o700);
    expect(await store.read()).toEqual({ server: 'http://127.0.0.1:3000', token: 'secret-token' });
    expect(await store.isExposed()).toBe(false);
  });

  it('tightens an existing file that others could read when it is rewritten', async () => {
    const path = join(dir, 'config.json');
    await writeFile(path, '{}');
    await chmod(path, 0o644);
    const store = new ConfigStore({ COWROOT_CONFIG: path });
    expect(await store.isExposed()).toBe(true);
    await store.write({ server: 'https://cowroot.example', token: 't' });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ server: 'https://cowroot.example', token: 't' });
  });

  it('reads a missing file as "not logged in"', async () => {
    const store = new ConfigStore({ COWROOT_CONFIG: join(dir, 'none.json') });
    expect(await store.read()).toBeNull();
    expect(await store.resolve()).toBeNull();
  });

  it('reports a corrupt or incomplete file instead of treating it as logged out', async () => {
    const path = join(dir, 'config.json');
    await writeFile(path, '{not json');
    await expect(new ConfigStore({ COWROOT_CONFIG: path }).read()).rejects.toThrow(/not valid JSON/);
    await writeFile(path, JSON.stringify({ server: 'http://x' }));
    await expect(new ConfigStore({ COWROOT_CONFIG: path }).read()).rejects.toThrow(/lacks/);
  });

  it('lets COWROOT_SERVER and COWROOT_TOKEN override the file (CI)', async () => {
    const path = join(dir, 'config.json');
    const stored = new ConfigStore({ COWROOT_CONFIG: path });
    await stored.write({ server: 'http://stored', token: 'stored-token' });
    expect(await new ConfigStore({ COWROOT_CONFIG: path, COWROOT_TOKEN: 'env-token' }).resolve()).toEqual({
      server: 'http://stored',
      token: 'env-token',
    });
    expect(
      await new ConfigStore({
        COWROOT_CONFIG: join(dir, 'none'),
        COWROOT_SERVER: 'http://env/',
        COWROOT_TOKEN: 't',
      }).resolve(),
    ).toEqual({
      server: 'http://env',
      token: 't',
    });
  });
});

describe('normaliseServerUrl', () => {
  it('drops trailing slashes and keeps a path prefix', () => {
    expect(normaliseServerUrl('http://127.0.0.1:3000/')).toBe('http://127.0.0.1:3000');
    expect(normaliseServerUrl('https://example.com/cowroot/')).toBe('https://example.com/cowroot');
  });

  it.each(['not a url', 'ftp://x', 'http://u:p@x', 'http://x/?a=1'])('refuses %j as a usage error', (raw) => {
    try {
      normaliseServerUrl(raw);
      throw new Error('accepted');
    } catch (error) {
      expect((error as CliError).exitCode).toBe(ExitCode.Usage);
    }
  });
});
