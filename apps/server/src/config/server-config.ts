import { isAbsolute, join, resolve } from 'node:path';

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
      webDir: dir(text('WEB_DIR') ?? 'dist/apps/web'),
    } as ServerConfig);
  }
}
