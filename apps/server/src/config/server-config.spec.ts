import { ConfigError, ServerConfig } from './server-config';

describe(ServerConfig.name, () => {
  it('has embedded defaults for a fresh machine', () => {
    const config = ServerConfig.fromEnv({}, '/srv');
    expect(config).toMatchObject({
      httpPort: 3000,
      mqttPort: 1883,
      databaseUrl: null,
      dataDir: '/srv/data',
      storageDir: '/srv/data/artifacts',
      adminToken: null,
      publicUrl: 'http://localhost:3000',
    });
    expect(config.mqttTlsEnabled).toBe(false);
  });

  it('BROKER: embedded by default; nats needs its URLs and files, each problem named', () => {
    expect(ServerConfig.fromEnv({}, '/srv')).toMatchObject({ broker: 'embedded', nats: null });
    expect(() => ServerConfig.fromEnv({ BROKER: 'kafka' })).toThrow(/BROKER="kafka" must be one of embedded, nats/);
    let error: unknown;
    try {
      ServerConfig.fromEnv({ BROKER: 'nats', NATS_URLS: 'http://n1:4222', NATS_DEVICE_TOKEN_TTL_SECONDS: '5' });
    } catch (e) {
      error = e;
    }
    const problems = (error as ConfigError).problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        'NATS_URLS: "http://n1:4222" is not a nats:// URL',
        'NATS_DEVICE_TOKEN_TTL_SECONDS must be an integer ≥ 60',
        'NATS_CREDS_FILE is required with BROKER=nats',
        'NATS_SYSTEM_CREDS_FILE is required with BROKER=nats',
        'NATS_ACCOUNT_SEED_FILE is required with BROKER=nats',
        'NATS_ACCOUNT_JWT_FILE is required with BROKER=nats',
        'NATS_OPERATOR_SEED_FILE is required with BROKER=nats',
      ]),
    );
    const config = ServerConfig.fromEnv(
      {
        BROKER: 'nats',
        NATS_URLS: 'nats://n1:4222, nats://n2:4222',
        NATS_CREDS_FILE: 'secrets/server.creds',
        NATS_SYSTEM_CREDS_FILE: '/s/system.creds',
        NATS_ACCOUNT_SEED_FILE: '/s/account.seed',
        NATS_ACCOUNT_JWT_FILE: '/s/account.jwt',
        NATS_OPERATOR_SEED_FILE: '/s/operator.seed',
      },
      '/srv',
    );
    expect(config.nats).toMatchObject({
      urls: ['nats://n1:4222', 'nats://n2:4222'],
      credsFile: '/srv/secrets/server.creds',
      deviceTokenTtlSeconds: 3600,
    });
  });

  it('lists every bad variable at once', () => {
    let error: unknown;
    try {
      ServerConfig.fromEnv({
        HTTP_PORT: 'eighty',
        MQTT_PORT: '70000',
        MQTT_TLS_KEY_FILE: '/k.pem',
        DATABASE_URL: 'mysql://x',
        LOG_LEVEL: 'loud',
        COWROOT_ADMIN_TOKEN: 'short',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of [
      'HTTP_PORT',
      'MQTT_PORT',
      'MQTT_TLS_CERT_FILE',
      'DATABASE_URL',
      'LOG_LEVEL',
      'COWROOT_ADMIN_TOKEN',
    ]) {
      expect(problems).toContain(name);
    }
  });

  it('validates the HTTPS, migration-role and credential-key variables', () => {
    let error: unknown;
    try {
      ServerConfig.fromEnv({
        HTTP_TLS_CERT_FILE: '/c.pem',
        DATABASE_MIGRATION_URL: 'mysql://owner',
        COWROOT_CREDENTIAL_KEY: 'too-short',
      });
    } catch (e) {
      error = e;
    }
    expect((error as ConfigError).problems).toEqual(
      expect.arrayContaining([
        'HTTP_TLS_KEY_FILE and HTTP_TLS_CERT_FILE must be set together',
        'DATABASE_MIGRATION_URL needs DATABASE_URL (the role the server runs as)',
        'DATABASE_MIGRATION_URL must start with postgres:// or postgresql://',
        'COWROOT_CREDENTIAL_KEY must be at least 32 characters',
      ]),
    );
    const config = ServerConfig.fromEnv({
      HTTP_TLS_KEY_FILE: '/k.pem',
      HTTP_TLS_CERT_FILE: '/c.pem',
      DATABASE_URL: 'postgres://cowroot_app@db/cowroot',
      DATABASE_MIGRATION_URL: 'postgres://cowroot_owner@db/cowroot',
    });
    expect(config).toMatchObject({
      httpTlsEnabled: true,
      publicUrl: 'https://localhost:3000',
      databaseMigrationUrl: 'postgres://cowroot_owner@db/cowroot',
    });
  });
});
