import { createPublicKey, KeyObject } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { plainToInstance, Type } from 'class-transformer';
import {
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateNested,
  validateSync,
} from 'class-validator';
import { DEVICE_ID_PATTERN, describeValidationErrors, isDeviceId } from '@cowroot/protocol';

/** docs/agent.md §2: health checks run in a trial boot. */
export class HealthConfigSection {
  /** executables that must all pass for a trial to be confirmed */
  @IsString()
  requiredDir!: string;

  /** executables whose failure is reported but does not reject the trial */
  @IsString()
  wantedDir!: string;

  @IsInt()
  @Min(100)
  @Max(3_600_000)
  checkTimeoutMs = 60_000;

  /** how long the trial boot may take to reach the server over MQTT before the check fails */
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  mqttConfirmTimeoutMs = 120_000;

  /** the rootfs whose writability is checked (the mounted workspace; "/" on a device) */
  @IsString()
  rootfsPath = '/';
}

export class DownloadConfigSection {
  /** consecutive attempts without progress before the download fails */
  @IsInt()
  @Min(0)
  @Max(100)
  retries = 5;

  @IsInt()
  @Min(10)
  @Max(600_000)
  initialBackoffMs = 1000;

  @IsInt()
  @Min(10)
  @Max(3_600_000)
  maxBackoffMs = 30_000;

  /** a connection that delivers nothing for this long counts as dropped */
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  idleTimeoutMs = 30_000;
}

export class ServerConfigSection {
  @Matches(/^mqtts?:\/\/[^\s/]+(:\d+)?\/?$/, { message: 'mqttUrl must be mqtt://host[:port] or mqtts://host[:port]' })
  mqttUrl!: string;

  /**
   * the server's HTTP(S) URL (its PUBLIC_URL): artifact downloads are pinned to its origin (scheme, host,
   * port); an install naming any other URL is refused and the credential never leaves for it
   */
  @Matches(/^https?:\/\/[^\s/?#@]+(\/\S*)?$/, { message: 'httpUrl must be http://host[:port] or https://host[:port]' })
  httpUrl!: string;

  /**
   * `credential` (default): the MQTT password is the device credential (the embedded broker). `token`: before
   * each connect the agent fetches a short-lived broker JWT from httpUrl with the credential and uses it as
   * the password (BROKER=nats, docs/scale-out.md)
   */
  @IsOptional()
  @IsIn(['credential', 'token'], { message: 'mqttAuth must be "credential" or "token"' })
  mqttAuth?: 'credential' | 'token';

  /** further MQTT brokers (the other nodes of a NATS cluster), tried in turn after mqttUrl when a connect fails */
  @IsOptional()
  @IsArray()
  @Matches(/^mqtts?:\/\/[^\s/]+(:\d+)?\/?$/, {
    each: true,
    message: 'failoverMqttUrls must be mqtt://host[:port] or mqtts://host[:port] each',
  })
  failoverMqttUrls?: string[];

  /** PEM CA bundle for mqtts:// and https:// artifact URLs (optional: system CAs otherwise) */
  @IsOptional()
  @IsString()
  caFile?: string;
}

/** The JSON file given with --config (docs/agent.md §2). Every path is absolute. */
export class AgentConfigFile {
  @Matches(DEVICE_ID_PATTERN, { message: 'deviceId must match the protocol device id pattern' })
  deviceId!: string;

  @IsOptional()
  @IsString()
  @MinLength(8)
  credential?: string;

  @IsOptional()
  @IsString()
  credentialFile?: string;

  @ValidateNested()
  @Type(() => ServerConfigSection)
  server!: ServerConfigSection;

  /** the btrfs top level (subvolid=5) */
  @IsString()
  poolPath!: string;

  @IsString()
  fwEnvConfig!: string;

  /** PEM ed25519 public key of the release signer, pinned on the device */
  @IsString()
  releasePublicKeyFile!: string;

  /** the command journal lives here */
  @IsString()
  stateDir!: string;

  @ValidateNested()
  @Type(() => HealthConfigSection)
  health!: HealthConfigSection;

  @IsOptional()
  @ValidateNested()
  @Type(() => DownloadConfigSection)
  download: DownloadConfigSection = new DownloadConfigSection();

  /** snapshots kept besides the booted, fallback and referenced ones */
  @IsInt()
  @Min(1)
  @Max(1000)
  retention = 3;

  @IsString()
  kernelCmdlinePath = '/proc/cmdline';

  @IsArray()
  @ArrayMinSize(1)
  @IsString({ each: true })
  rebootCommand: string[] = ['systemctl', 'reboot'];

  /** "local" (the device's zone) or an IANA zone name for maintenance windows */
  @IsString()
  maintenanceTimezone = 'local';

  /**
   * false refuses `commit` (COMMAND_DISABLED): a commit turns whatever changed at run time into a bootable
   * rootfs, which a device that must only run signed releases does not want (docs/agent.md §4)
   */
  @IsBoolean()
  allowCommit = true;

  /** snapshot files that must exist before a trial is requested (e.g. boot/uImage) */
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  requiredBootFiles: string[] = [];
}

/** The validated config with the secrets and keys loaded. */
export interface AgentConfig {
  deviceId: string;
  credential: string;
  mqttUrl: string;
  /** server.failoverMqttUrls: tried in turn after mqttUrl */
  failoverMqttUrls: string[];
  /** server.mqttAuth */
  mqttAuth: 'credential' | 'token';
  /** server.httpUrl as configured (the broker-token request goes there) */
  httpUrl: string;
  /** scheme://host[:port] that artifact downloads must come from */
  artifactOrigin: string;
  ca: Buffer | null;
  poolPath: string;
  fwEnvConfig: string;
  releasePublicKey: KeyObject;
  stateDir: string;
  health: HealthConfigSection;
  download: DownloadConfigSection;
  retention: number;
  kernelCmdlinePath: string;
  rebootCommand: string[];
  maintenanceTimezone: string;
  allowCommit: boolean;
  requiredBootFiles: string[];
}

export class AgentConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid agent config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'AgentConfigError';
  }
}

function checkPath(
  problems: string[],
  field: string,
  path: string | undefined,
  kind: 'file' | 'dir' | 'dir-or-missing',
): void {
  if (path === undefined) return;
  if (!isAbsolute(path)) {
    problems.push(`${field}: must be an absolute path (got ${JSON.stringify(path)})`);
    return;
  }
  if (kind === 'dir-or-missing' && !existsSync(path)) return;
  try {
    const stats = statSync(path);
    if (kind !== 'file' && !stats.isDirectory()) problems.push(`${field}: ${path} is not a directory`);
    if (kind === 'file' && !stats.isFile()) problems.push(`${field}: ${path} is not a file`);
    accessSync(path, constants.R_OK);
  } catch (error) {
    problems.push(`${field}: ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function isKnownTimezone(zone: string): boolean {
  if (zone === 'local') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * Validates a parsed config object; throws AgentConfigError listing EVERY problem (schema, paths that do not
 * exist, an unreadable credential, a public key that is not ed25519), so one run shows all that is wrong.
 */
export function validateAgentConfig(plain: unknown): AgentConfig {
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
    throw new AgentConfigError(['the config must be a JSON object']);
  }
  const file = plainToInstance(AgentConfigFile, plain, { exposeDefaultValues: true });
  const problems = describeValidationErrors(validateSync(file, { whitelist: true, forbidNonWhitelisted: true }));

  if (typeof file.deviceId === 'string' && DEVICE_ID_PATTERN.test(file.deviceId) && !isDeviceId(file.deviceId)) {
    problems.push('deviceId: must not contain ".."');
  }
  if ((file.credential === undefined) === (file.credentialFile === undefined)) {
    problems.push('credential: give exactly one of credential and credentialFile');
  }
  const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  checkPath(problems, 'credentialFile', str(file.credentialFile), 'file');
  checkPath(problems, 'server.caFile', str(file.server?.caFile), 'file');
  checkPath(problems, 'poolPath', str(file.poolPath), 'dir');
  checkPath(problems, 'fwEnvConfig', str(file.fwEnvConfig), 'file');
  checkPath(problems, 'releasePublicKeyFile', str(file.releasePublicKeyFile), 'file');
  // created at start when missing (it lives in the pool, docs/agent.md §3)
  checkPath(problems, 'stateDir', str(file.stateDir), 'dir-or-missing');
  checkPath(problems, 'health.requiredDir', str(file.health?.requiredDir), 'dir');
  checkPath(problems, 'health.wantedDir', str(file.health?.wantedDir), 'dir');
  checkPath(problems, 'health.rootfsPath', str(file.health?.rootfsPath), 'dir');
  checkPath(problems, 'kernelCmdlinePath', str(file.kernelCmdlinePath), 'file');
  if (typeof file.maintenanceTimezone === 'string' && !isKnownTimezone(file.maintenanceTimezone)) {
    problems.push(`maintenanceTimezone: unknown time zone ${JSON.stringify(file.maintenanceTimezone)}`);
  }
  if (typeof file.server?.httpUrl === 'string' && !URL.canParse(file.server.httpUrl)) {
    problems.push(`server.httpUrl: ${JSON.stringify(file.server.httpUrl)} is not a URL`);
  }
  if (file.download && file.download.initialBackoffMs > file.download.maxBackoffMs) {
    problems.push('download.initialBackoffMs: must not exceed download.maxBackoffMs');
  }

  let credential = typeof file.credential === 'string' ? file.credential : '';
  if (typeof file.credentialFile === 'string' && !problems.some((p) => p.startsWith('credentialFile'))) {
    credential = readFileSync(file.credentialFile, 'utf8').trim();
    if (credential.length < 8) problems.push('credentialFile: the credential must have at least 8 characters');
  }

  let releasePublicKey: KeyObject | null = null;
  if (typeof file.releasePublicKeyFile === 'string' && !problems.some((p) => p.startsWith('releasePublicKeyFile'))) {
    try {
      releasePublicKey = createPublicKey(readFileSync(file.releasePublicKeyFile));
      if (releasePublicKey.asymmetricKeyType !== 'ed25519') {
        problems.push(`releasePublicKeyFile: key type is ${releasePublicKey.asymmetricKeyType}, must be ed25519`);
      }
    } catch (error) {
      problems.push(`releasePublicKeyFile: not a PEM public key (${(error as Error).message})`);
    }
  }

  if (problems.length > 0 || !releasePublicKey) {
    throw new AgentConfigError(problems.length ? problems : ['releasePublicKeyFile: missing']);
  }
  return {
    deviceId: file.deviceId,
    credential,
    mqttUrl: file.server.mqttUrl,
    failoverMqttUrls: file.server.failoverMqttUrls ?? [],
    mqttAuth: file.server.mqttAuth ?? 'credential',
    httpUrl: file.server.httpUrl,
    artifactOrigin: new URL(file.server.httpUrl).origin,
    ca: file.server.caFile ? readFileSync(file.server.caFile) : null,
    poolPath: file.poolPath,
    fwEnvConfig: file.fwEnvConfig,
    releasePublicKey,
    stateDir: file.stateDir,
    health: file.health,
    download: file.download ?? new DownloadConfigSection(),
    retention: file.retention,
    kernelCmdlinePath: file.kernelCmdlinePath,
    rebootCommand: file.rebootCommand,
    maintenanceTimezone: file.maintenanceTimezone,
    allowCommit: file.allowCommit,
    requiredBootFiles: file.requiredBootFiles ?? [],
  };
}

/** Reads and validates the config file at `path`. */
export function loadAgentConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new AgentConfigError([`${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
  }
  let plain: unknown;
  try {
    plain = JSON.parse(text);
  } catch (error) {
    throw new AgentConfigError([`${path}: not JSON (${(error as Error).message})`]);
  }
  return validateAgentConfig(plain);
}
