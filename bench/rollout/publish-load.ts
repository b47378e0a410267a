import mqtt, { MqttClient } from 'mqtt';

export interface LoadClient {
  id: string;
  username?: string;
  password?: string;
  topic: string;
  payload: (seq: number) => Buffer;
}

export interface LoadResult {
  messages: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function connectClients(url: string, clients: LoadClient[], concurrency = 100): Promise<MqttClient[]> {
  const connected: MqttClient[] = new Array(clients.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < clients.length) {
        const index = next++;
        const spec = clients[index];
        connected[index] = await mqtt.connectAsync(url, {
          clientId: spec.id,
          username: spec.username,
          password: spec.password,
          reconnectPeriod: 0,
          protocolVersion: 4,
          clean: true,
        });
      }
    }),
  );
  return connected;
}

/**
 * Every client publishes `perClient` QoS 1 messages, keeping at most `inFlight` unacknowledged each. A
 * message counts when its PUBACK arrives (for the cowroot server: after it is committed to PostgreSQL).
 */
export async function publishLoad(
  mqttClients: MqttClient[],
  specs: LoadClient[],
  perClient: number,
  inFlight = 1,
): Promise<LoadResult> {
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  await Promise.all(
    mqttClients.map(async (client, index) => {
      const spec = specs[index];
      let seq = 0;
      const lane = async () => {
        while (seq < perClient) {
          const mine = seq++;
          const t0 = process.hrtime.bigint();
          await client.publishAsync(spec.topic, spec.payload(mine), { qos: 1 });
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      };
      await Promise.all(Array.from({ length: inFlight }, lane));
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return {
    messages: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}
