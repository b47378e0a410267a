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
});
