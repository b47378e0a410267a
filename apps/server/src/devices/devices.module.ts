import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DEVICE_AUTHENTICATOR } from '../auth/device-authenticator';
import { BrokerRegistry } from '../broker/broker-registry.service';
import { CommandDispatcher } from './command-dispatcher.service';
import { DeviceCommand } from './device-command.entity';
import { DeviceCommandsController } from './device-commands.controller';
import { DeviceCredentialAuthenticator } from './device-credential.authenticator';
import { DeviceFeed } from './device-feed';
import { DeviceJobEvent } from './device-job-event.entity';
import { FactoryCredentialHasher } from './factory-credential-hasher';
import { DeviceLifecycleService } from './device-lifecycle.service';
import { DevicePresenceService } from './device-presence.service';
import { DeviceProvisioningService } from './device-provisioning.service';
import { DeviceQueryService } from './device-query.service';
import { DeviceStateWriter } from './device-state-writer.service';
import { Device } from './device.entity';
import { DevicesController } from './devices.controller';
import { JobEventRecorder } from './job-event-recorder.service';

/**
 * Devices: provisioning, state, presence, commands. The broker that carries MQTT is not imported here: the
 * commands go out through the DEVICE_BROKER port (apps/server/src/broker/device-broker.ts), which
 * MqttModule provides, and the broker adapters ingest into the services exported here. Global, because auth
 * (DEVICE_AUTHENTICATOR), the broker adapters, releases and rollouts use it; rollouts read the devices through DeviceFeed only.
 */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([Device, DeviceCommand, DeviceJobEvent])],
  controllers: [DevicesController, DeviceCommandsController],
  providers: [
    FactoryCredentialHasher,
    DeviceCredentialAuthenticator,
    { provide: DEVICE_AUTHENTICATOR, useExisting: DeviceCredentialAuthenticator },
    DeviceProvisioningService,
    DeviceQueryService,
    DeviceLifecycleService,
    CommandDispatcher,
    DeviceStateWriter,
    DevicePresenceService,
    JobEventRecorder,
    BrokerRegistry,
    DeviceFeed,
  ],
  exports: [
    DEVICE_AUTHENTICATOR,
    CommandDispatcher,
    DeviceQueryService,
    DeviceCredentialAuthenticator,
    DevicePresenceService,
    DeviceStateWriter,
    JobEventRecorder,
    BrokerRegistry,
    DeviceFeed,
  ],
})
export class DevicesModule {}
