import { BoardProfile } from './board-profile';

/** The redundant-env flag byte follows the 4-byte CRC (u-boot env_t with CONFIG_SYS_REDUNDAND_ENVIRONMENT). */
export const ENV_FLAG_OFFSET = 4;

/**
 * The factory env as mkenvimage's input (`name=value` lines, sorted like u-boot's `env export`): the
 * board's default env (u-boot-initial-env text, when given), the profile's variables over it (null removes
 * one), and `cowroot_current` = the factory snapshot (docs/device.md §3.1: "Set at manufacturing"). u-boot
 * takes a valid env copy INSTEAD of its built-in default env, so everything the board needs must be here.
 */
export function renderFactoryEnv(
  boardDefaults: Record<string, string>,
  variables: Record<string, string | null>,
  factorySnapshot: string,
): string {
  const env: Record<string, string> = { ...boardDefaults };
  for (const [name, value] of Object.entries(variables)) {
    if (value === null) delete env[name];
    else env[name] = value;
  }
  env.cowroot_current = factorySnapshot;
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z0-9_.:-]+$/.test(name)) throw new Error(`invalid u-boot env variable name ${JSON.stringify(name)}`);
    if (/[\n\r\0]/.test(value)) throw new Error(`u-boot env variable ${name} holds a newline or NUL`);
  }
  return Object.keys(env)
    .sort()
    .map((name) => `${name}=${env[name]}\n`)
    .join('');
}

/**
 * u-boot's default env as `make u-boot-initial-env` writes it (`name=value` per line). A line without
 * `=` or with an invalid name is an error: the file is the board's, and a silent skip would drop a variable.
 */
export function parseInitialEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const match = /^([A-Za-z0-9_.:-]+)=(.*)$/.exec(line);
    if (!match) throw new Error(`line ${index + 1} is not name=value: ${JSON.stringify(line.slice(0, 60))}`);
    env[match[1]] = match[2];
  });
  return env;
}

/**
 * fw_env.config for the running system (libubootenv: `<device or file> <offset> <size>`, two lines = the
 * redundant env). FAT: the two files where Linux mounts the boot partition; raw: the disk and both offsets.
 */
export function renderFwEnvConfig(profile: BoardProfile): string {
  const env = profile.env;
  const size = `0x${env.sizeBytes.toString(16)}`;
  const lines =
    env.kind === 'fat'
      ? (env.files ?? []).map((file) => `${env.linuxMountPoint?.replace(/\/+$/, '')}/${file}\t0x0\t${size}`)
      : (env.offsets ?? []).map((offset) => `${env.linuxDevice}\t0x${offset.toString(16)}\t${size}`);
  return `# cowroot factory image for board ${profile.name}: the redundant u-boot env (docs/factory.md)\n${lines.join('\n')}\n`;
}
