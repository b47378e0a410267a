import { DynamicModule, Module } from '@nestjs/common';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import { ConfigModule } from './config/config.module';
import { ServerConfig } from './config/server-config';
import { DatabaseModule } from './database/database.module';
import { DevicesModule } from './devices/devices.module';
import { EventsModule } from './events/events.module';
import { FleetModule } from './fleet/fleet.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';
import { MqttModule } from './mqtt/mqtt.module';
import { ReleasesModule } from './releases/releases.module';
import { RollbacksModule } from './rollbacks/rollbacks.module';
import { RolloutsModule } from './rollouts/rollouts.module';

@Module({})
export class AppModule {
  static forRoot(config: ServerConfig, databaseUrl: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule.forRoot(databaseUrl, config.databaseUrl === null, config.databaseMigrationUrl),
        MetricsModule,
        AuditModule,
        AuthModule,
        HealthModule,
        ReleasesModule,
        DevicesModule,
        MqttModule.forRoot({ broker: config.broker }),
        RolloutsModule,
        RollbacksModule,
        FleetModule,
        EventsModule.forRoot({ databaseUrl, embedded: config.databaseUrl === null }),
      ],
    };
  }
}
