import type { SimulatedDeviceOptions } from '../../../tools/fleet-sim/src/simulated-device';
import { tempDir } from '../../../tools/nats/nats-fixture';
import { brokerTokenFetcher, NatsDeployment, startNatsDeployment } from '../../../tools/nats/nats-deployment';
import { NATS_SERVER_BINARY } from '../../../tools/nats/nats-server-process';
import { describePrivileged, requireCommand } from '@cowroot/testing';

/**
 * issue 12, "the same scenario suites that run against the embedded broker run against the cluster": what a
 * scenario suite needs to know of the broker its devices speak to. `embedded` is the server's own aedes;
 * `nats cluster` is three real nats-server nodes with JetStream (the server in BROKER=nats), each device on
 * one node with the other two as failover, its MQTT password a broker JWT from the server.
 */
export interface FleetBroker {
  readonly name: 'embedded' | 'nats cluster';
  /** environment for startTestServer */
  readonly serverEnv: Record<string, string>;
  /** how a simulated device reaches the broker (merged into its options) */
  connection(server: { httpUrl: string; mqttPort: number }, id: string, credential: string): Partial<DeviceReach>;
  /** url and password for a hand-driven MQTT client of device `id` */
  login(server: { httpUrl: string; mqttPort: number }, id: string, credential: string): Promise<DeviceLogin>;
  stop(): Promise<void>;
}

type DeviceReach = Pick<SimulatedDeviceOptions, 'mqttUrl' | 'failoverMqttUrls' | 'mqttPassword' | 'reconnect'>;

export interface DeviceLogin {
  url: string;
  password: string;
}

const embedded: FleetBroker = {
  name: 'embedded',
  serverEnv: {},
  connection: (server) => ({ mqttUrl: `mqtt://127.0.0.1:${server.mqttPort}` }),
  login: async (server, _id, credential) => ({ url: `mqtt://127.0.0.1:${server.mqttPort}`, password: credential }),
  stop: async () => undefined,
};

async function natsCluster(): Promise<FleetBroker> {
  const tmp = tempDir('cowroot-fleet-nats-');
  let nats: NatsDeployment;
  try {
    nats = await startNatsDeployment(tmp.dir, 3);
  } catch (error) {
    tmp.remove();
    throw error;
  }
  // devices spread over the nodes by a stable hash of their id, the others as failover
  const nodeOf = (id: string) => [...id].reduce((sum, c) => sum + c.charCodeAt(0), 0) % nats.mqttUrls.length;
  const urlsFor = (id: string) => {
    const first = nodeOf(id);
    return [...nats.mqttUrls.slice(first), ...nats.mqttUrls.slice(0, first)];
  };
  return {
    name: 'nats cluster',
    serverEnv: nats.serverEnv,
    connection: (server, id, credential) => {
      const [mqttUrl, ...failoverMqttUrls] = urlsFor(id);
      return {
        mqttUrl,
        failoverMqttUrls,
        mqttPassword: brokerTokenFetcher(server.httpUrl, id, credential),
        reconnect: true,
      };
    },
    login: async (server, id, credential) => ({
      url: urlsFor(id)[0],
      password: await brokerTokenFetcher(server.httpUrl, id, credential)(),
    }),
    stop: async () => {
      await nats.stop();
      tmp.remove();
    },
  };
}

/**
 * `describe(title [embedded])` and `describe(title [nats cluster])` with the same body; the body reads the
 * broker in its own beforeAll (after the cluster started; it stops after the body's afterAll). The cluster
 * half needs nats-server (skipped without it, a failure under COWROOT_REQUIRE_PRIVILEGED=1).
 */
export function describeOnBrokers(title: string, body: (broker: () => FleetBroker) => void): void {
  describe(`${title} [embedded]`, () => body(() => embedded));
  describePrivileged(`${title} [nats cluster]`, [requireCommand(NATS_SERVER_BINARY)], () => {
    let broker: FleetBroker | null = null;
    beforeAll(async () => {
      broker = await natsCluster();
    });
    body(() => {
      if (!broker) throw new Error('the nats cluster did not start');
      return broker;
    });
    // declared after the body's hooks, so it runs after them (jest-circus runs after-hooks in order)
    afterAll(async () => {
      await broker?.stop();
    });
  });
}
