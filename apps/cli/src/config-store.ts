import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CliError } from './cli-error';

/** What `cowroot login` stores. */
export interface CliConfig {
  server: string;
  token: string;
}

/** Where the config lives and which environment overrides it (the only place the CLI reads env). */
export interface ConfigEnvironment {
  COWROOT_CONFIG?: string;
  COWROOT_SERVER?: string;
  COWROOT_TOKEN?: string;
  XDG_CONFIG_HOME?: string;
  HOME?: string;
}

/**
 * The login file: $COWROOT_CONFIG, else $XDG_CONFIG_HOME/cowroot/config.json, else ~/.config/cowroot/config.json.
 * It holds a bearer token, so it is written mode 0600 (directory 0700) through a temp file + rename: a crash
 * never leaves a half-written file and the secret is never readable by others, not even for a moment.
 */
export class ConfigStore {
  readonly path: string;

  constructor(private readonly env: ConfigEnvironment) {
    this.path = ConfigStore.pathFor(env);
  }

  static pathFor(env: ConfigEnvironment): string {
    if (env.COWROOT_CONFIG) return env.COWROOT_CONFIG;
    const base = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, '.config') : null);
    if (!base) throw CliError.usage('cannot locate the config file: set COWROOT_CONFIG or HOME');
    return join(base, 'cowroot', 'config.json');
  }

  /** The stored config, or null when there is none. A corrupt file is an error, not "logged out". */
  async read(): Promise<CliConfig | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new CliError(`cannot read ${this.path}: ${(error as Error).message}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new CliError(`${this.path} is not valid JSON: run \`cowroot login\` again or fix the file`);
    }
    if (!isConfig(value)) throw new CliError(`${this.path} lacks "server" and "token": run \`cowroot login\` again`);
    return { server: value.server, token: value.token };
  }

  /**
   * Server and token to use: COWROOT_SERVER + COWROOT_TOKEN (both, for CI) win over the file.
   * Null when neither is available.
   */
  async resolve(): Promise<CliConfig | null> {
    if (this.env.COWROOT_SERVER && this.env.COWROOT_TOKEN) {
      return { server: normaliseServerUrl(this.env.COWROOT_SERVER), token: this.env.COWROOT_TOKEN };
    }
    const stored = await this.read();
    if (!stored) return null;
    return {
      server: this.env.COWROOT_SERVER ? normaliseServerUrl(this.env.COWROOT_SERVER) : stored.server,
      token: this.env.COWROOT_TOKEN || stored.token,
    };
  }

  async write(config: CliConfig): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const temp = `${this.path}.${process.pid}.tmp`;
    try {
      await writeFile(temp, `${JSON.stringify({ server: config.server, token: config.token }, null, 2)}\n`, {
        mode: 0o600,
        flag: 'w',
      });
      await chmod(temp, 0o600); // writeFile's mode passes through the umask and is ignored for an existing file
      await rename(temp, this.path);
    } catch (error) {
      await rm(temp, { force: true });
      throw new CliError(`cannot write ${this.path}: ${(error as Error).message}`);
    }
  }

  /** True when the file exists and group or others may read it. */
  async isExposed(): Promise<boolean> {
    try {
      return ((await stat(this.path)).mode & 0o077) !== 0;
    } catch {
      return false;
    }
  }
}

function isConfig(value: unknown): value is CliConfig {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.server === 'string' &&
    record.server.length > 0 &&
    typeof record.token === 'string' &&
    record.token.length > 0
  );
}

/** `http(s)://host[:port][/prefix]` without a trailing slash; anything else is a usage error. */
export function normaliseServerUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw CliError.usage(`--server must be a URL like https://cowroot.example.com, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw CliError.usage(`--server must use http or https, got ${url.protocol}`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw CliError.usage('--server must not carry a query, fragment or credentials');
  }
  return url.toString().replace(/\/+$/, '');
}
