import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DEVICE_AUTHENTICATOR } from '../auth/device-authenticator';
import { BROKER_READINESS } from '../health/broker-readiness';
import { BrokerRegistry } from '../mqtt/broker-registry.service';
import { DeviceSessions } from '../mqtt/device-sessions';
import { EventsHandler } from '../mqtt/events.handler';
import { MqttBrokerService } from '../mqtt/mqtt-broker.service';
import { MqttMetrics } from '../mqtt/mqtt-metrics';
import { PresenceHandler } from '../mqtt/presence.handler';
import { StateHandler } from '../mqtt/state.handler';
import { CommandDispatcher } from './command-dispatcher.service';
import { DeviceCommand } from './device-command.entity';
import { DeviceCommandsController } from './device-commands.controller';
import { DeviceCredentialAuthenticator } from './device-credential.authenticator';
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
 * Devices and the MQTT broker they talk to, as one module: the broker authenticates against and ingests
 * into device storage, and device commands go out through the broker, so two modules would import each
 * other. Global, because auth (DEVICE_AUTHENTICATOR), health (BROKER_READINESS), releases and rollouts
 * (CommandDispatcher, DeviceQueryService) use it.
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
    MqttMetrics,
    DeviceSessions,
    StateHandler,
    EventsHandler,
    PresenceHandler,
    MqttBrokerService,
    { provide: BROKER_READINESS, useExisting: MqttBrokerService },
  ],
  exports: [DEVICE_AUTHENTICATOR, BROKER_READINESS, CommandDispatcher, DeviceQueryService, MqttBrokerService],
})
export class DevicesModule {}
