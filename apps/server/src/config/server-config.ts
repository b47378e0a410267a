import { isAbsolute, join, resolve } from 'node:path';
import { BROKER_KINDS, BrokerKind } from '../broker/device-broker';

/** Environment variables the server reads: the only place in apps/server that looks at process.env. */
export const SERVER_ENV_VARIABLES = {
  HTTP_HOST: 'address the REST API binds to (default 0.0.0.0)',
  HTTP_PORT: 'REST API port (default 3000)',
  HTTP_TLS_KEY_FILE: 'PEM private key: the REST API listens with HTTPS instead of HTTP',
  HTTP_TLS_CERT_FILE: 'PEM certificate chain for the HTTPS listener',
  MQTT_HOST: 'address the embedded MQTT broker binds to (default 0.0.0.0)',
  MQTT_PORT: 'plain MQTT port of the embedded broker (default 1883; 0 = any free port)',
  MQTTS_PORT: 'MQTT over TLS port, used when MQTT_TLS_KEY_FILE and MQTT_TLS_CERT_FILE are set (default 8883)',
  MQTT_TLS_KEY_FILE: 'PEM private key for the mqtts listener',
  MQTT_TLS_CERT_FILE: 'PEM certificate chain for the mqtts listener',
  DATABASE_URL: 'postgres://… connection string; unset = embedded PGlite database in DATA_DIR',
  DATABASE_MIGRATION_URL:
    'postgres://… of the schema owner role that runs migrations (default DATABASE_URL); the server then runs as DATABASE_URL',
  DATA_DIR: 'directory for the embedded database and default artifact storage (default ./data)',
  STORAGE_DIR: 'directory for release artifacts (default DATA_DIR/artifacts)',
  COWROOT_ADMIN_TOKEN: 'bootstrap admin API token; unset on first start = one is generated and printed once',
  COWROOT_CREDENTIAL_KEY:
    'key (≥ 32 characters) of the keyed hash of factory device credentials; unset = generated in DATA_DIR/credential.key',
  LOG_LEVEL: 'error | warn | log | debug | verbose (default log)',
  PUBLIC_URL: 'base URL devices use to download artifacts (default http://localhost:HTTP_PORT)',
  MAX_MQTT_MESSAGE_BYTES: 'largest MQTT packet the broker accepts (default 262144)',
  MAX_ARTIFACT_BYTES: 'largest release artifact an upload may declare (default 17179869184 = 16 GiB)',
  BROKER:
    'embedded (default: aedes in this process) | nats (devices speak MQTT to a NATS JetStream cluster; docs/scale-out.md)',
  NATS_URLS: 'BROKER=nats: comma-separated nats:// URLs of the cluster nodes the replica connects to',
  NATS_CREDS_FILE: "BROKER=nats: .creds file (user JWT + seed) of the replicas' user in the application account",
  NATS_SYSTEM_CREDS_FILE: 'BROKER=nats: .creds file of a system-account user (connect events, account JWT pushes)',
  NATS_ACCOUNT_SEED_FILE: "BROKER=nats: file with the application account's seed (SA…), which signs device JWTs",
  NATS_ACCOUNT_JWT_FILE:
    "BROKER=nats: file with the application account's JWT as deployed; revocations are added to it",
  NATS_OPERATOR_SEED_FILE: 'BROKER=nats: file with the operator seed (SO…) that re-signs the account JWT on revocation',
  NATS_DEVICE_TOKEN_TTL_SECONDS: 'BROKER=nats: lifetime of a device broker JWT (default 3600, at least 60)',
  WEB_DIR: 'directory of the built dashboard served at / (default dist/apps/web; npm run build:web)',
} as const;

export type ServerEnvName = keyof typeof SERVER_ENV_VARIABLES;

export const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Raised at boot with every bad variable listed, so an operator fixes them all in one go. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export class ServerConfig {
  readonly httpHost!: string;
  readonly httpPort!: number;
  readonly httpTlsKeyFile!: string | null;
  readonly httpTlsCertFile!: string | null;
  readonly mqttHost!: string;
  readonly mqttPort!: number;
  readonly mqttsPort!: number;
  readonly mqttTlsKeyFile!: string | null;
  readonly mqttTlsCertFile!: string | null;
  readonly databaseUrl!: string | null;
  readonly databaseMigrationUrl!: string | null;
  readonly dataDir!: string;
  readonly storageDir!: string;
  readonly adminToken!: string | null;
  readonly credentialKey!: string | null;
  readonly logLevel!: LogLevel;
  readonly publicUrl!: string;
  readonly maxMqttMessageBytes!: number;
  readonly maxArtifactBytes!: number;
  readonly broker!: BrokerKind;
  /** set when broker is `nats` */
  readonly nats!: NatsConfig | null;
  readonly webDir!: string;

  constructor(values: ServerConfig) {
    Object.assign(this, values);
  }

  get httpTlsEnabled(): boolean {
    return this.httpTlsKeyFile !== null && this.httpTlsCertFile !== null;
  }

  get mqttTlsEnabled(): boolean {
    return this.mqttTlsKeyFile !== null && this.mqttTlsCertFile !== null;
  }

  /** Reads and validates the environment; throws ConfigError listing every problem. */
  static fromEnv(env: Record<string, string | undefined>, cwd = process.cwd()): ServerConfig {
    const problems: string[] = [];
    const text = (name: ServerEnvName): string | null => {
      const value = env[name];
      return value === undefined || value.trim() === '' ? null : value.trim();
    };
    const port = (name: ServerEnvName, fallback: number, allowZero: boolean): number => {
      const value = text(name);
      if (value === null) return fallback;
      const n = Number(value);
      if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
        problems.push(`${name}=${JSON.stringify(value)} is not a port number (${allowZero ? 0 : 1}-65535)`);
        return fallback;
      }
      return n;
    };
    const dir = (value: string) => (isAbsolute(value) ? value : resolve(cwd, value));

    const httpPort = port('HTTP_PORT', 3000, true);
    const mqttPort = port('MQTT_PORT', 1883, true);
    const mqttsPort = port('MQTTS_PORT', 8883, true);

    const keyFile = text('MQTT_TLS_KEY_FILE');
    const certFile = text('MQTT_TLS_CERT_FILE');
    if ((keyFile === null) !== (certFile === null)) {
      problems.push('MQTT_TLS_KEY_FILE and MQTT_TLS_CERT_FILE must be set together');
    }

    const httpKeyFile = text('HTTP_TLS_KEY_FILE');
    const httpCertFile = text('HTTP_TLS_CERT_FILE');
    if ((httpKeyFile === null) !== (httpCertFile === null)) {
      problems.push('HTTP_TLS_KEY_FILE and HTTP_TLS_CERT_FILE must be set together');
    }

    const databaseUrl = text('DATABASE_URL');
    if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
      problems.push('DATABASE_URL must start with postgres:// or postgresql://');
    }
    const databaseMigrationUrl = text('DATABASE_MIGRATION_URL');
    if (databaseMigrationUrl !== null) {
      if (databaseUrl === null)
        problems.push('DATABASE_MIGRATION_URL needs DATABASE_URL (the role the server runs as)');
      if (!/^postgres(ql)?:\/\//.test(databaseMigrationUrl)) {
        problems.push('DATABASE_MIGRATION_URL must start with postgres:// or postgresql://');
      }
    }

    const logLevel = (text('LOG_LEVEL') ?? 'log') as LogLevel;
    if (!LOG_LEVELS.includes(logLevel)) {
      problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)} must be one of ${LOG_LEVELS.join(', ')}`);
    }

    const adminToken = text('COWROOT_ADMIN_TOKEN');
    if (adminToken !== null && adminToken.length < 16) {
      problems.push('COWROOT_ADMIN_TOKEN must be at least 16 characters');
    }

    const credentialKey = text('COWROOT_CREDENTIAL_KEY');
    if (credentialKey !== null && credentialKey.length < 32) {
      problems.push('COWROOT_CREDENTIAL_KEY must be at least 32 characters');
    }

    const publicUrl = text('PUBLIC_URL') ?? `${httpKeyFile ? 'https' : 'http'}://localhost:${httpPort}`;
    try {
      const url = new URL(publicUrl);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    } catch {
      problems.push(`PUBLIC_URL=${JSON.stringify(publicUrl)} must be an http(s) URL`);
    }

    let maxMqttMessageBytes = 262144;
    const maxText = text('MAX_MQTT_MESSAGE_BYTES');
    if (maxText !== null) {
      const n = Number(maxText);
      if (!Number.isInteger(n) || n < 1024) problems.push('MAX_MQTT_MESSAGE_BYTES must be an integer ≥ 1024');
      else maxMqttMessageBytes = n;
    }

    let maxArtifactBytes = 16 * 1024 ** 3;
    const maxArtifactText = text('MAX_ARTIFACT_BYTES');
    if (maxArtifactText !== null) {
      const n = Number(maxArtifactText);
      if (!Number.isSafeInteger(n) || n < 1) problems.push('MAX_ARTIFACT_BYTES must be a positive integer');
      else maxArtifactBytes = n;
    }

    const broker = (text('BROKER') ?? 'embedded') as BrokerKind;
    if (!BROKER_KINDS.includes(broker)) {
      problems.push(`BROKER=${JSON.stringify(broker)} must be one of ${BROKER_KINDS.join(', ')}`);
    }
    const nats = broker === 'nats' ? natsConfig(text, dir, problems) : null;

    if (problems.length > 0) throw new ConfigError(problems);

    const dataDir = dir(text('DATA_DIR') ?? './data');
    return new ServerConfig({
      httpHost: text('HTTP_HOST') ?? '0.0.0.0',
      httpPort,
      httpTlsKeyFile: httpKeyFile,
      httpTlsCertFile: httpCertFile,
      mqttHost: text('MQTT_HOST') ?? '0.0.0.0',
      mqttPort,
      mqttsPort,
      mqttTlsKeyFile: keyFile,
      mqttTlsCertFile: certFile,
      databaseUrl,
      databaseMigrationUrl,
      dataDir,
      storageDir: dir(text('STORAGE_DIR') ?? join(dataDir, 'artifacts')),
      adminToken,
      credentialKey,
      logLevel,
      publicUrl: publicUrl.replace(/\/+$/, ''),
      maxMqttMessageBytes,
      maxArtifactBytes,
      broker,
      nats,
      webDir: dir(text('WEB_DIR') ?? 'dist/apps/web'),
    } as ServerConfig);
  }
}

/** What a replica needs to run against a NATS cluster (BROKER=nats). */
export interface NatsConfig {
  urls: string[];
  credsFile: string;
  systemCredsFile: string;
  accountSeedFile: string;
  accountJwtFile: string;
  operatorSeedFile: string;
  deviceTokenTtlSeconds: number;
}

function natsConfig(
  text: (name: ServerEnvName) => string | null,
  dir: (value: string) => string,
  problems: string[],
): NatsConfig {
  const required = (name: ServerEnvName): string => {
    const value = text(name);
    if (value === null) problems.push(`${name} is required with BROKER=nats`);
    return value ?? '';
  };
  const urls = required('NATS_URLS')
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
  for (const url of urls) {
    if (!/^(nats|tls):\/\/[^/]+$/.test(url)) problems.push(`NATS_URLS: ${JSON.stringify(url)} is not a nats:// URL`);
  }
  let deviceTokenTtlSeconds = 3600;
  const ttl = text('NATS_DEVICE_TOKEN_TTL_SECONDS');
  if (ttl !== null) {
    const n = Number(ttl);
    if (!Number.isInteger(n) || n < 60) problems.push('NATS_DEVICE_TOKEN_TTL_SECONDS must be an integer ≥ 60');
    else deviceTokenTtlSeconds = n;
  }
  const file = (name: ServerEnvName) => {
    const value = required(name);
    return value === '' ? '' : dir(value);
  };
  return {
    urls,
    credsFile: file('NATS_CREDS_FILE'),
    systemCredsFile: file('NATS_SYSTEM_CREDS_FILE'),
    accountSeedFile: file('NATS_ACCOUNT_SEED_FILE'),
    accountJwtFile: file('NATS_ACCOUNT_JWT_FILE'),
    operatorSeedFile: file('NATS_OPERATOR_SEED_FILE'),
    deviceTokenTtlSeconds,
  };
}
