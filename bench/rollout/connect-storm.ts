import mqtt, { MqttClient } from 'mqtt';
import { DeviceChannel, PROTOCOL_VERSION, PresenceStatus, deviceTopic, encodeMessage } from '@cowroot/protocol';

/**
 * The bare-aedes side of the connect measurement: each client does what a fleet-sim device does in
 * connect() (tools/fleet-sim/src/device-link.ts open() + publishState): CONNECT with a persistent session
 * and a last will, SUBSCRIBE to its commands topic, the online presence and one state report, both QoS 1
 * and waited for their PUBACK. Retain is off because the cowroot broker clears it on device messages.
 * At most `concurrency` clients are between CONNECT and their last PUBACK at once, as FleetSimulator.forAll.
 * Returns the clients (still connected) and the seconds the whole fleet took.
 */
export async function connectBareFleet(
  url: string,
  count: number,
  concurrency: number,
  statePayload: (id: string) => Buffer,
): Promise<{ clients: MqttClient[]; seconds: number }> {
  const clients: MqttClient[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const id = `bare-${String(next++).padStart(5, '0')}`;
      const client = await mqtt.connectAsync(url, {
        clientId: id,
        username: id,
        password: 'bare',
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 30_000,
        clean: false,
        will: {
          topic: deviceTopic(id, DeviceChannel.Presence),
          payload: encodeMessage({ v: PROTOCOL_VERSION, status: PresenceStatus.Offline }),
          qos: 1,
          retain: false,
        },
      });
      clients.push(client);
      await client.subscribeAsync(deviceTopic(id, DeviceChannel.Commands), { qos: 1 });
      const presence = { v: PROTOCOL_VERSION, status: PresenceStatus.Online, at: new Date().toISOString() };
      await client.publishAsync(deviceTopic(id, DeviceChannel.Presence), encodeMessage(presence), { qos: 1 });
      await client.publishAsync(deviceTopic(id, DeviceChannel.State), statePayload(id), { qos: 1 });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { clients, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
