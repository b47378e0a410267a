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
