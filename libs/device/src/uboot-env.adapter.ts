import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@cowroot/protocol';
import { CommandRunner } from './command-runner';
import { DeviceError } from './device-error';
import { EnvUpdate } from './switch-protocol';

/** libubootenv reads script lines into a fixed buffer (1024 bytes in 0.3.x, 2048 later). */
const MAX_SCRIPT_LINE = 1000;
const ENV_NAME = /^[A-Za-z0-9_.:-]+$/;

/**
 * Parses `fw_printenv` output (`name=value` per line) into a map. A line without `name=` continues the
 * previous value (u-boot values may hold newlines); libubootenv 0.3.2 prints `name=` for an unset name,
 * which reads as '' — the switch protocol treats '' and unset alike.
 */
export function parsePrintenv(output: string): Record<string, string> {
  const vars: Record<string, string> = {};
  let last: string | null = null;
  for (const line of output.split('\n')) {
    const match = /^([^=\s]+)=(.*)$/.exec(line);
    if (match) {
      last = match[1];
      vars[last] = match[2];
    } else if (last !== null && line !== '') {
      vars[last] += `\n${line}`;
    }
  }
  return vars;
}

/**
 * The `fw_setenv -s` script for one update: `name=value` lines, `name=` deletes (libubootenv's format;
 * the old u-boot-tools `name value` form is NOT understood by libubootenv and would be silently ignored).
 */
export function renderSetenvScript(update: EnvUpdate | Record<string, string>): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(update)) {
    if (value === undefined) continue;
    if (!ENV_NAME.test(name)) throw new Error(`invalid u-boot env variable name ${JSON.stringify(name)}`);
    if (/[\n\r\0]/.test(value)) throw new Error(`value of ${name} contains a newline or NUL`);
    const line = `${name}=${value}`;
    if (line.length > MAX_SCRIPT_LINE) throw new Error(`value of ${name} is too long for fw_setenv -s`);
    lines.push(line);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * The u-boot environment through libubootenv's fw_printenv / fw_setenv and a fw_env.config (one line per
 * copy; two lines = redundant env, where every write goes to the inactive copy and then makes it the
 * active one, so a power cut leaves the previous env intact).
 */
export class UbootEnv {
  constructor(
    readonly configPath: string,
    private readonly runner: CommandRunner = new CommandRunner(),
  ) {}

  /** All variables; an unreadable env (both copies bad) is an error, not an empty env. */
  async readAll(): Promise<Record<string, string>> {
    try {
      const { stdout } = await this.runner.run('fw_printenv', ['-c', this.configPath]);
      return parsePrintenv(stdout);
    } catch (error) {
      throw new DeviceError(ErrorCode.Internal, `reading the u-boot env: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** The named variables; unset ones are '' (read through the full listing, so unset is never an error). */
  async read<Name extends string>(names: readonly Name[]): Promise<Record<Name, string>> {
    const all = await this.readAll();
    const picked = {} as Record<Name, string>;
    for (const name of names) picked[name] = all[name] ?? '';
    return picked;
  }

  /**
   * Writes every variable of `update` in ONE `fw_setenv -s` call ('' deletes), then reads the env back
   * and fails with ENV_WRITE_FAILED unless every variable has its new value.
   */
  async write(update: EnvUpdate | Record<string, string>): Promise<void> {
    let script: string;
    try {
      script = renderSetenvScript(update);
    } catch (error) {
      throw new DeviceError(ErrorCode.EnvWriteFailed, (error as Error).message);
    }
    if (!script) return;
    const dir = await mkdtemp(join(tmpdir(), 'cowroot-env-'));
    try {
      const file = join(dir, 'update.env');
      await writeFile(file, script, { mode: 0o600 });
      await this.runner.run('fw_setenv', ['-c', this.configPath, '-s', file]);
    } catch (error) {
      throw new DeviceError(ErrorCode.EnvWriteFailed, `writing the u-boot env: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const after = await this.readAll();
    const wrong = Object.entries(update).filter(
      ([name, value]) => value !== undefined && (after[name] ?? '') !== value,
    );
    if (wrong.length) {
      throw new DeviceError(
        ErrorCode.EnvWriteFailed,
        `u-boot env did not take the update: ${wrong.map(([name, value]) => `${name} is ${JSON.stringify(after[name] ?? '')}, wanted ${JSON.stringify(value)}`).join('; ')}`,
      );
    }
  }
}
