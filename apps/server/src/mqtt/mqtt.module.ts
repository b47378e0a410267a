import { DynamicModule, Global, Module, Provider, Type } from '@nestjs/common';
import { BrokerKind, DEVICE_BROKER } from '../broker/device-broker';
import { BROKER_READINESS } from '../health/broker-readiness';
import { DeviceSessions } from './device-sessions';
import { EventsHandler } from './events.handler';
import { MqttBrokerService } from './mqtt-broker.service';
import { MqttMetrics } from './mqtt-metrics';
import { BrokerTokenController } from './nats/broker-token.controller';
import { BrokerTokenService } from './nats/broker-token.service';
import { NatsConnections } from './nats/nats-connections';
import { NatsDeviceBroker } from './nats/nats-device-broker.service';
import { NatsPresence } from './nats/nats-presence.service';
import { NatsReportConsumer } from './nats/nats-report-consumer.service';
import { PresenceHandler } from './presence.handler';
import { StateHandler } from './state.handler';

export interface MqttModuleOptions {
  broker: BrokerKind;
}

/**
 * The broker adapter behind the DEVICE_BROKER port, chosen by BROKER: `embedded` runs aedes in this
 * process; `nats` speaks NATS to a JetStream cluster that runs the devices' MQTT listener. The ingest
 * handlers (state, events) are the same for both.
 */
@Global()
@Module({})
export class MqttModule {
  static forRoot(options: MqttModuleOptions): DynamicModule {
    const common: Provider[] = [MqttMetrics, StateHandler, EventsHandler];
    const adapter: Type = options.broker === 'nats' ? NatsDeviceBroker : MqttBrokerService;
    const specific: Provider[] =
      options.broker === 'nats'
        ? [NatsConnections, BrokerTokenService, NatsDeviceBroker, NatsReportConsumer, NatsPresence]
        : [DeviceSessions, PresenceHandler, MqttBrokerService];
    return {
      module: MqttModule,
      // always mounted, so the API document is the same in both modes; embedded answers 422
      controllers: [BrokerTokenController],
      providers: [
        ...common,
        ...specific,
        { provide: DEVICE_BROKER, useExisting: adapter },
        { provide: BROKER_READINESS, useExisting: adapter },
      ],
      exports: [DEVICE_BROKER, BROKER_READINESS, adapter],
    };
  }
}
